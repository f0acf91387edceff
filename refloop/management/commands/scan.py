from __future__ import annotations

import argparse
import datetime as dt
import json

from django.core.management import BaseCommand, CommandError
from django.utils import timezone

from refloop.insights.scan import alert_scan


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in the form YYYY-MM-DD") from None


class Command(BaseCommand):
    help = (
        "Early warning: find slipping, dormant and rising referral sources. Saves alerts when it evaluates today; "
        "--as-of evaluates a past day with only the referrals received up to it (a back-test, nothing saved)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=_day, default=None, help="evaluate as if this day (YYYY-MM-DD) were today")
        parser.add_argument("--format", choices=["text", "json"], default="text", help="json: one object per alert")
        parser.add_argument("--dry-run", action="store_true", help="evaluate today without saving alerts")

    def handle(self, *args, as_of: dt.date | None, format: str, dry_run: bool, **options):
        today = timezone.localdate()
        if as_of is not None and as_of > today:
            raise CommandError(f"--as-of: {as_of} is in the future; the scan can only look at days that have passed")
        save = not dry_run and (as_of is None or as_of == today)
        outcome = alert_scan(as_of=as_of or today, save=save)
        order = {"slipping": 0, "dormant": 1, "rising": 2}
        findings = sorted(outcome.findings, key=lambda f: (order[f.kind], -f.confidence, f.name))
        if format == "json":
            for finding in findings:
                self.stdout.write(json.dumps(finding.as_json()))
        else:
            for f in findings:
                who = f"NPI {f.npi}" if f.level == "provider" and f.npi else f"{f.level} {f.source_id}"
                self.stdout.write(
                    f"{f.kind:<8} {f.name} ({who}) since {f.since}: usual {f.usual_per_month:.1f}/month, "
                    f"recent {f.recent_per_month:.1f}/month ({f.drop:+.0%}), {f.confidence:.0%} sure"
                )
        saved = (
            f"alerts opened {outcome.opened}, refreshed {outcome.refreshed}, resolved {outcome.resolved}"
            if save
            else "nothing saved"
        )
        self.stderr.write(
            f"scan as of {outcome.as_of}: {outcome.sources_read} sources read, {outcome.sources_judged} judged, "
            f"{len(findings)} alerts ({saved}) in {outcome.seconds:.1f} s"
        )
