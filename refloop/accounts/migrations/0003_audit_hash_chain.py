"""The audit trail becomes a hash chain: sequence numbers, previous/own hashes, the patient each event is about.

Existing events are chained in the order they were written (by id). On PostgreSQL a trigger also refuses
UPDATE and DELETE on the table, so the append-only rule holds for raw SQL too (TRUNCATE stays possible: the
test suite and `flush` need it; `refloop audit verify` finds the gap it leaves against a noted anchor).
"""

import django.utils.timezone
from django.db import migrations, models

from refloop.accounts.chain import GENESIS, event_hash

TRIGGER_SQL = [
    """
    CREATE OR REPLACE FUNCTION accounts_auditevent_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION USING MESSAGE = 'accounts_auditevent is append-only: ' || TG_OP || ' refused';
    END;
    $$ LANGUAGE plpgsql
    """,
    "DROP TRIGGER IF EXISTS accounts_auditevent_append_only ON accounts_auditevent",
    """
    CREATE TRIGGER accounts_auditevent_append_only
        BEFORE UPDATE OR DELETE ON accounts_auditevent
        FOR EACH ROW EXECUTE FUNCTION accounts_auditevent_append_only()
    """,
]
DROP_TRIGGER_SQL = [
    "DROP TRIGGER IF EXISTS accounts_auditevent_append_only ON accounts_auditevent",
    "DROP FUNCTION IF EXISTS accounts_auditevent_append_only()",
]


def chain_existing(apps, schema_editor):
    AuditEvent = apps.get_model("accounts", "AuditEvent")
    prev, seq = GENESIS, 0
    for event in AuditEvent.objects.order_by("pk").iterator(chunk_size=2000):
        seq += 1
        digest = event_hash(
            seq=seq,
            at=event.at,
            actor_id=event.actor_id,
            actor_label=event.actor_label,
            action=event.action,
            target_type=event.target_type,
            target_id=event.target_id,
            patient_id=event.patient_id,
            detail=event.detail,
            prev_hash=prev,
        )
        AuditEvent.objects.filter(pk=event.pk).update(seq=seq, prev_hash=prev, hash=digest)
        prev = digest


def add_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in TRIGGER_SQL:
            schema_editor.execute(sql, None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in DROP_TRIGGER_SQL:
            schema_editor.execute(sql, None)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_audit_trail"),
    ]

    operations = [
        migrations.AlterModelOptions(name="auditevent", options={"ordering": ["-seq"]}),
        migrations.AlterField(
            model_name="auditevent",
            name="at",
            field=models.DateTimeField(db_index=True, default=django.utils.timezone.now, editable=False),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="seq",
            field=models.PositiveBigIntegerField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="patient_id",
            field=models.CharField(
                blank=True,
                db_index=True,
                default="",
                help_text="The patient whose data was read or written, if any.",
                max_length=40,
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(chain_existing, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="auditevent",
            name="seq",
            field=models.PositiveBigIntegerField(editable=False, unique=True),
        ),
        migrations.RunPython(add_trigger, drop_trigger),
    ]
