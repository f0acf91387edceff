from __future__ import annotations

import csv
import datetime as dt

from django.core.management import BaseCommand, CommandError

from refloop.accounts.audit import audit_verify
from refloop.accounts.selectors import EXPORT_HEADER, audit_events, export_rows
from refloop.lib.csvsafe import neutralize


def _anchor(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise CommandError(f"--anchor must be SEQ:HASH as printed by `refloop audit verify`; got {text!r}")
    return int(seq), digest.lower()


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"dates are YYYY-MM-DD; got {text!r}") from None


class Command(BaseCommand):
    help = "The audit trail: `verify` checks the hash chain; `export` writes events as CSV for an auditor."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True)
        verify = sub.add_parser("verify", help="walk the chain; exit 1 naming the first broken record")
        verify.add_argument("--anchor", help="SEQ:HASH printed by an earlier verify, to catch events cut off the end")
        export = sub.add_parser("export", help="events as CSV on standard output (oldest first)")
        export.add_argument("--from", dest="date_from", help="first day, YYYY-MM-DD (practice time zone)")
        export.add_argument("--to", dest="date_to", help="last day, YYYY-MM-DD")
        export.add_argument("--user", default="", help="username (or API key / process label)")
        export.add_argument("--action", default="", help="action, or a prefix ending in * (e.g. auth.*)")

    def handle(self, *args, verb: str, **options):
        if verb == "verify":
            self._verify(options.get("anchor"))
        else:
            self._export(options)

    def _verify(self, anchor: str | None) -> None:
        report = audit_verify(anchor=_anchor(anchor) if anchor else None)
        if not report.ok:
            raise CommandError(
                f"audit trail broken at {report.problem} ({report.checked} records before it are intact)"
            )
        self.stdout.write(
            f"audit trail intact: {report.checked} records; head {report.head_seq}:{report.head_hash} "
            "(keep this line off the machine and pass it as --anchor next time)"
        )

    def _export(self, options) -> None:
        events = audit_events(
            user=options["user"],
            action=options["action"],
            date_from=_date(options["date_from"]) if options["date_from"] else None,
            date_to=_date(options["date_to"]) if options["date_to"] else None,
        )
        writer = csv.writer(self.stdout, lineterminator="\r\n")
        writer.writerow(EXPORT_HEADER)
        for row in export_rows(events):
            writer.writerow([neutralize(cell) for cell in row])
