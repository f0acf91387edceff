"""`refloop rollups rebuild` recomputes the dashboard's rollups from the referrals (after a bulk load, a restore or
a change of the practice's holidays); `refloop rollups sync` adds referrals not counted yet and resyncs those
whose provider was changed in bulk (the NPPES import's updates save no model); `refloop rollups catch-up` folds in
the referrals that intakes and steps queued (the worker does it every few seconds; `--every N` keeps doing it)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from refloop.insights.rollups import (
    rollup_catch_up,
    rollup_catch_up_every,
    rollup_rebuild,
    rollup_sync_missing,
    rollup_sync_stale,
)


class Command(BaseCommand):
    help = "Rebuild the dashboard rollups from the referrals, or add the referrals they do not count yet."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "action",
            choices=["rebuild", "sync", "catch-up"],
            help="rebuild: all from scratch; sync: missing only; catch-up: the referrals queued by intakes and steps",
        )
        parser.add_argument("--every", type=float, default=None, help="catch-up: again every this many seconds")

    def handle(self, *args, action: str, every: float | None, **options) -> None:
        started = time.perf_counter()
        if action == "catch-up" and every:
            rollup_catch_up_every(every)
        elif action == "catch-up":
            count = rollup_catch_up()
            self.stdout.write(
                f"Folded {count:,} queued referrals into the rollups in {time.perf_counter() - started:.1f} s."
            )
        elif action == "rebuild":
            count = rollup_rebuild()
            self.stdout.write(f"Rebuilt the rollups from {count:,} referrals in {time.perf_counter() - started:.1f} s.")
        else:
            rollup_catch_up()  # the queue first: what it holds is not "missing"
            count = rollup_sync_missing()
            stale = rollup_sync_stale()
            self.stdout.write(
                f"Added {count:,} referrals to the rollups and resynced {stale:,} whose provider changed "
                f"in {time.perf_counter() - started:.1f} s."
            )
