from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0007_source_rollup_years"),
    ]

    operations = [
        migrations.CreateModel(
            name="RollupPending",
            fields=[
                ("referral_id", models.BigIntegerField(primary_key=True, serialize=False)),
            ],
        ),
    ]
