from __future__ import annotations

import threading

from django.core.management import BaseCommand, call_command


class Command(BaseCommand):
    help = "Run background work (letters, delivery, retries, nightly scans) from the database task queue."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls when idle")
        parser.add_argument("--max-tasks", type=int, default=None, help="exit after this many tasks")
        parser.add_argument("--batch", action="store_true", help="exit when the queue is empty")

    def handle(self, *args, interval: float, max_tasks: int | None, batch: bool, **options):
        from refloop.insights.rollups import rollup_catch_up, rollup_catch_up_every
        from refloop.insights.scan import alert_scan_schedule
        from refloop.interop.hl7.inbound import inbound_kick_if_waiting

        alert_scan_schedule()  # the nightly early-warning scan; each run queues the next
        inbound_kick_if_waiting()  # HL7 messages the listener queued while no drain was waiting
        # The dashboard's sums: intakes and steps queue their referrals; fold them in every few seconds (a thread
        # of its own, so a long task does not hold them back). A batch run folds them once, first.
        stop = threading.Event()
        if batch:
            rollup_catch_up()
        else:
            threading.Thread(target=rollup_catch_up_every, kwargs={"stop": stop}, daemon=True).start()
        try:
            call_command(
                "db_worker",
                interval=interval,
                max_tasks=max_tasks,
                batch=batch,
                reload=False,
                startup_delay=False,
                verbosity=options["verbosity"],
            )
        finally:
            stop.set()
