from decimal import Decimal

from django.db import migrations

CMS = (
    'CMS "CPI-U Updates" page (42 CFR 411.357(k), (m)(5), (z)): the figure CMS published for the calendar year.'
)

# year, non-monetary compensation, incidental benefit per occurrence (less than), limited remuneration (z),
# source, note
LIMITS = [
    (2019, "416", "35", None, "cms", CMS + " Limited remuneration (z) did not exist yet."),
    (2020, "423", "36", None, "cms", CMS + " Limited remuneration (z) did not exist yet."),
    (2021, "429", "37", "5000", "cms", CMS),
    (2022, "452", "39", "5270", "cms", CMS),
    (2023, "489", "42", "5702", "cms", CMS),
    (2024, "507", "44", "5913", "cms", CMS),
    (
        2025,
        None,
        None,
        None,
        "missing",
        "Not found in a primary source. CPI-U +2.4% applied to 2024's $507 would give $519, consistent with "
        "2026's $535, but that is an estimate and is not used: an administrator must enter the figure CMS "
        "published, with its source, before 2025 items can be checked.",
    ),
    (
        2026,
        "535",
        None,
        None,
        "secondary",
        "$535 as reported by health-law firms citing CMS; not yet confirmed on the CMS CPI-U Updates page. "
        "Incidental benefit and limited remuneration figures for 2026 were not found.",
    ),
]


def seed_limits(apps, schema_editor):
    StarkLimit = apps.get_model("outreach", "StarkLimit")
    for year, amount, incidental, limited, source, note in LIMITS:
        StarkLimit.objects.get_or_create(
            year=year,
            defaults={
                "amount": Decimal(amount) if amount else None,
                "incidental_per_occurrence": Decimal(incidental) if incidental else None,
                "limited_remuneration": Decimal(limited) if limited else None,
                "source": source,
                "source_note": note,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("outreach", "0001_activities_ledger_concerns")]
    operations = [migrations.RunPython(seed_limits, migrations.RunPython.noop)]
