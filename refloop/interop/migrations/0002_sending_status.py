"""Outbound HL7 messages being sent get a status and a lease of their own.

Until now a claimed message stayed "queued", its claim written at the start of `detail` ("Sending: attempt N by
host:pid") with `updated_at` as the lease's start. Such a message becomes "sending", its lease ending where it
did (updated_at + REFLOOP_HL7_LEASE_SECONDS). `status` only gains a choice: no change to the column.
"""

import datetime as dt

from django.conf import settings
from django.db import migrations, models


def claims_to_status(apps, schema_editor):
    message_model = apps.get_model("interop", "InterfaceMessage")
    lease = dt.timedelta(seconds=settings.HL7_LEASE_SECONDS)
    claimed = message_model.objects.filter(direction="out", status="queued", detail__startswith="Sending: attempt")
    for message in claimed.only("pk", "updated_at"):
        claimed.filter(pk=message.pk).update(status="sending", lease_until=message.updated_at + lease)


def status_to_claims(apps, schema_editor):
    message_model = apps.get_model("interop", "InterfaceMessage")
    message_model.objects.filter(status="sending").update(status="queued", lease_until=None)


class Migration(migrations.Migration):
    dependencies = [
        ("interop", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="interfacemessage",
            name="lease_until",
            field=models.DateTimeField(
                blank=True, help_text="Outbound, while sending: when the attempt is taken to have died.", null=True
            ),
        ),
        migrations.AlterField(
            model_name="interfacemessage",
            name="status",
            field=models.CharField(
                choices=[
                    ("received", "Received"),
                    ("accepted", "Accepted"),
                    ("rejected", "Rejected"),
                    ("error", "Error"),
                    ("review", "Needs review"),
                    ("queued", "Queued"),
                    ("sending", "Sending"),
                    ("sent", "Sent"),
                    ("failed", "Failed"),
                ],
                default="received",
                max_length=10,
            ),
        ),
        migrations.RunPython(claims_to_status, status_to_claims),
    ]
