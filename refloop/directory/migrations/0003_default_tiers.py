from django.db import migrations

DEFAULT_TIERS = [
    ("A", "Top source", 30, 1),
    ("B", "Steady source", 91, 2),
    ("C", "Occasional source", 182, 3),
]


def add_default_tiers(apps, schema_editor):
    Tier = apps.get_model("directory", "Tier")
    for code, label, days, rank in DEFAULT_TIERS:
        Tier.objects.get_or_create(code=code, defaults={"label": label, "target_visit_days": days, "rank": rank})


class Migration(migrations.Migration):
    dependencies = [("directory", "0002_referral_sources")]
    operations = [migrations.RunPython(add_default_tiers, migrations.RunPython.noop)]
