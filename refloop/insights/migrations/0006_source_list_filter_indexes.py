# Source lists (issue 7): SourceRollup keeps urgency; member rows get indexes led by location, clinician and payer.

from django.db import migrations, models

OTHER_COLUMNS = ("month", "territory_id", "liaison_id", "specialty", "urgency")
SOURCE_COLUMNS = {"provider": "provider_id", "practice": "practice_id", "other": "other_source_id"}


def forget_source_sums(apps, schema_editor):
    apps.get_model("insights", "SourceRollup").objects.all().delete()


def recount_source_sums(apps, schema_editor):
    """The per-source sums again, now by urgency too, from the member rows (what rollups._apply adds up)."""
    q = schema_editor.quote_name
    member = q(apps.get_model("insights", "RollupMember")._meta.db_table)
    sources = q(apps.get_model("insights", "SourceRollup")._meta.db_table)
    others = ", ".join(q(c) for c in OTHER_COLUMNS)
    for kind, column in SOURCE_COLUMNS.items():
        schema_editor.execute(
            f"INSERT INTO {sources} ({q('kind')}, {q('source_id')}, {others}, {q('received')}, {q('scheduled')}, "  # noqa: S608
            f"{q('seen')}) SELECT %s, {q(column)}, {others}, COUNT(*), "
            f"SUM(CASE WHEN {q('scheduled')} THEN 1 ELSE 0 END), SUM(CASE WHEN {q('seen')} THEN 1 ELSE 0 END) "
            f"FROM {member} WHERE {q(column)} <> 0 GROUP BY {q(column)}, {others}",
            [kind],
        )


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0005_rollup_cuboid_pairs"),
    ]

    operations = [
        migrations.RunPython(forget_source_sums, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="sourcerollup",
            name="sourcerollup_key",
        ),
        migrations.RemoveIndex(
            model_name="sourcerollup",
            name="sourcerollup_month",
        ),
        migrations.AddField(
            model_name="sourcerollup",
            name="urgency",
            field=models.CharField(default="", max_length=10),
            preserve_default=False,
        ),
        migrations.AddConstraint(
            model_name="sourcerollup",
            constraint=models.UniqueConstraint(
                fields=("kind", "source_id", "month", "territory_id", "liaison_id", "specialty", "urgency"),
                name="sourcerollup_key",
            ),
        ),
        migrations.AddIndex(
            model_name="sourcerollup",
            index=models.Index(
                fields=[
                    "kind", "month", "territory_id", "liaison_id", "specialty", "urgency", "source_id", "received"
                ],
                name="sourcerollup_period",
            ),
        ),
        migrations.AddIndex(
            model_name="rollupmember",
            index=models.Index(
                fields=[
                    "location_id", "month", "clinician_id", "payer", "urgency", "territory_id", "liaison_id",
                    "specialty", "provider_id", "practice_id",
                ],
                name="rollupmember_sources_loca",
            ),
        ),
        migrations.AddIndex(
            model_name="rollupmember",
            index=models.Index(
                fields=[
                    "clinician_id", "month", "location_id", "payer", "urgency", "territory_id", "liaison_id",
                    "specialty", "provider_id", "practice_id",
                ],
                name="rollupmember_sources_clin",
            ),
        ),
        migrations.AddIndex(
            model_name="rollupmember",
            index=models.Index(
                fields=[
                    "payer", "month", "location_id", "clinician_id", "urgency", "territory_id", "liaison_id",
                    "specialty", "provider_id", "practice_id",
                ],
                name="rollupmember_sources_paye",
            ),
        ),
        migrations.RunPython(recount_source_sums, migrations.RunPython.noop),
    ]
