"""`refloop rollups rebuild` recomputes the dashboard's rollups from the referrals (after a bulk load, a restore or
a change of the practice's holidays); `refloop rollups sync` adds referrals not counted yet and resyncs those
whose provider was changed in bulk (the NPPES import's updates save no model)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from refloop.insights.rollups import rollup_rebuild, rollup_sync_missing, rollup_sync_stale


class Command(BaseCommand):
    help = "Rebuild the dashboard rollups from the referrals, or add the referrals they do not count yet."

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["rebuild", "sync"], help="rebuild: all from scratch; sync: missing only")

    def handle(self, *args, action: str, **options) -> None:
        started = time.perf_counter()
        if action == "rebuild":
            count = rollup_rebuild()
            self.stdout.write(f"Rebuilt the rollups from {count:,} referrals in {time.perf_counter() - started:.1f} s.")
        else:
            count = rollup_sync_missing()
            stale = rollup_sync_stale()
            self.stdout.write(
                f"Added {count:,} referrals to the rollups and resynced {stale:,} whose provider changed "
                f"in {time.perf_counter() - started:.1f} s."
            )
