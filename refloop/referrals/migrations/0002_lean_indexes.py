"""Fewer indexes on the referral and its events: each one is updated for every row of a million-row import.

Dropped: the single-column indexes on referring_provider, referring_practice and owner (the composite indexes
that lead with those keys serve every query and every foreign-key check), the one on referralevent.referral
(served by (referral, at)), and PostgreSQL's "_like" copies of the idempotency key and external id indexes
(for LIKE 'prefix%', which nothing asks of them).

Written as SQL rather than AlterField: on SQLite an AlterField copies the whole table (a million referrals, five
million events) where dropping an index is instant. SQLite keeps its UNIQUE of the idempotency key as it was
created (a column constraint, which only a table copy could rename); it is the same rule.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

DROPPED = [
    "referrals_referral_referring_provider_id_2f46c58c",
    "referrals_referral_referring_practice_id_1792e863",
    "referrals_referral_owner_id_cb58a858",
    "referrals_referralevent_referral_id_e2ad0427",
    "referrals_referral_external_id_eb7b9662",
]
POSTGRESQL_ONLY = [
    "referrals_referral_external_id_eb7b9662_like",
    "referrals_referral_idempotency_key_2b7b7fad_like",
]


def forward(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    for name in DROPPED + (POSTGRESQL_ONLY if postgresql else []):
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"', None)
    schema_editor.execute('CREATE INDEX "referral_external_id" ON "referrals_referral" ("external_id")', None)
    if postgresql:
        schema_editor.execute(
            'ALTER TABLE "referrals_referral" DROP CONSTRAINT IF EXISTS "referrals_referral_idempotency_key_key"', None
        )
        schema_editor.execute(
            'ALTER TABLE "referrals_referral" ADD CONSTRAINT "referral_unique_idempotency_key" '
            'UNIQUE ("idempotency_key")',
            None,
        )


def backward(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    columns = {
        "referrals_referral_referring_provider_id_2f46c58c": ("referrals_referral", "referring_provider_id"),
        "referrals_referral_referring_practice_id_1792e863": ("referrals_referral", "referring_practice_id"),
        "referrals_referral_owner_id_cb58a858": ("referrals_referral", "owner_id"),
        "referrals_referralevent_referral_id_e2ad0427": ("referrals_referralevent", "referral_id"),
        "referrals_referral_external_id_eb7b9662": ("referrals_referral", "external_id"),
    }
    schema_editor.execute('DROP INDEX IF EXISTS "referral_external_id"', None)
    for name, (table, column) in columns.items():
        schema_editor.execute(f'CREATE INDEX "{name}" ON "{table}" ("{column}")', None)
    if postgresql:
        schema_editor.execute(
            'CREATE INDEX "referrals_referral_external_id_eb7b9662_like" ON "referrals_referral" '
            '("external_id" varchar_pattern_ops)',
            None,
        )
        schema_editor.execute(
            'ALTER TABLE "referrals_referral" DROP CONSTRAINT "referral_unique_idempotency_key"', None
        )
        schema_editor.execute(
            'ALTER TABLE "referrals_referral" ADD CONSTRAINT "referrals_referral_idempotency_key_key" '
            'UNIQUE ("idempotency_key")',
            None,
        )
        schema_editor.execute(
            'CREATE INDEX "referrals_referral_idempotency_key_2b7b7fad_like" ON "referrals_referral" '
            '("idempotency_key" varchar_pattern_ops)',
            None,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("referrals", "0001_closed_loop"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="referral",
                    name="external_id",
                    field=models.CharField(blank=True, max_length=100),
                ),
                migrations.AlterField(
                    model_name="referral",
                    name="idempotency_key",
                    field=models.CharField(blank=True, max_length=200, null=True),
                ),
                migrations.AlterField(
                    model_name="referral",
                    name="owner",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="owned_referrals",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="referral",
                    name="referring_practice",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="referrals",
                        to="directory.referringpractice",
                    ),
                ),
                migrations.AlterField(
                    model_name="referral",
                    name="referring_provider",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="referrals",
                        to="directory.referringprovider",
                    ),
                ),
                migrations.AlterField(
                    model_name="referralevent",
                    name="referral",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="referrals.referral",
                    ),
                ),
                migrations.AddIndex(
                    model_name="referral",
                    index=models.Index(fields=["external_id"], name="referral_external_id"),
                ),
                migrations.AddConstraint(
                    model_name="referral",
                    constraint=models.UniqueConstraint(
                        fields=("idempotency_key",), name="referral_unique_idempotency_key"
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
    ]
