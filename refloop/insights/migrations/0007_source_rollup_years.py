# Source lists (issue 7): SourceRollup holds one row per source and calendar year with running totals by month (in
# all, and by one of urgency, location, clinician or payer), instead of one per source-month and urgency, so a long
# period reads a few rows per source, in source order.

from django.db import migrations, models

RUNNING = tuple(f"to_{m:02d}" for m in range(1, 13))
KEY = (
    "kind", "source_id", "year", "territory_id", "liaison_id", "specialty", "urgency", "location_id", "clinician_id",
    "payer",
)  # fmt: skip


def forget_source_sums(apps, schema_editor):
    apps.get_model("insights", "SourceRollup").objects.all().delete()


def recount_source_sums(apps, schema_editor):
    """The per-source sums again from the member rows, by the rollups' own upsert (the table is in the shape this
    migration leaves it in, which is the shape that SQL writes)."""
    from refloop.insights.rollups import sources_upsert_sql

    sql, constants = sources_upsert_sql("1 = 1", 1, "m")
    schema_editor.execute(sql, [value for branch in constants for value in branch])


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0006_source_list_filter_indexes"),
    ]

    operations = [
        migrations.RunPython(forget_source_sums, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="sourcerollup", name="sourcerollup_key"),
        migrations.RemoveIndex(model_name="sourcerollup", name="sourcerollup_period"),
        migrations.RemoveIndex(model_name="sourcerollup", name="sourcerollup_empty"),
        migrations.RemoveField(model_name="sourcerollup", name="month"),
        migrations.RemoveField(model_name="sourcerollup", name="scheduled"),
        migrations.RemoveField(model_name="sourcerollup", name="seen"),
        migrations.AddField(
            model_name="sourcerollup",
            name="year",
            field=models.PositiveSmallIntegerField(default=0),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="sourcerollup", name="location_id", field=models.BigIntegerField(default=-1)
        ),
        migrations.AddField(
            model_name="sourcerollup", name="clinician_id", field=models.BigIntegerField(default=-1)
        ),
        migrations.AddField(
            model_name="sourcerollup", name="payer", field=models.CharField(default="*", max_length=120)
        ),
        *(
            migrations.AddField(model_name="sourcerollup", name=name, field=models.IntegerField(default=0))
            for name in RUNNING
        ),
        migrations.AddConstraint(
            model_name="sourcerollup",
            constraint=models.UniqueConstraint(fields=KEY, name="sourcerollup_key"),
        ),
        migrations.AddIndex(
            model_name="sourcerollup",
            index=models.Index(
                fields=[
                    "kind", "urgency", "location_id", "clinician_id", "payer", "source_id", "year", "territory_id",
                    "liaison_id", "specialty", *RUNNING,
                ],  # fmt: skip
                name="sourcerollup_sources",
            ),
        ),
        migrations.AddIndex(
            model_name="sourcerollup",
            index=models.Index(condition=models.Q(received=0), fields=["year"], name="sourcerollup_empty"),
        ),
        migrations.RunPython(recount_source_sums, forget_source_sums),
    ]
