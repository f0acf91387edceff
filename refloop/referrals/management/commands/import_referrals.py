"""`refloop import-referrals FILE`: referrals from an EHR or practice-management export (CSV or XLSX)."""

from __future__ import annotations

import gc
from argparse import RawDescriptionHelpFormatter
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, CommandError
from django.core.management.base import DjangoHelpFormatter

from refloop.referrals.importer import (
    CANONICAL_FIELDS,
    IMPORT_STATES,
    ImportRefused,
    ImportReport,
    referral_import,
)

_FIELDS = "\n".join(f"  {name:<20} {text}" for name, text in CANONICAL_FIELDS.items())

HELP = f"""\
Import referrals from a CSV or XLSX file exported by an EHR or practice-management system.

A column named like a field needs no --map; map the others with --map "Column name=field" (repeat it), or
--map "Column name=" to ignore one. Fields:
{_FIELDS}

Dates are YYYY-MM-DD unless --date-format gives another (strftime codes: --date-format %m/%d/%Y).
Referring providers are matched by NPI, then by name and address; ones not in the directory are listed for
review and never created. A status column imports each referral in its state:
{", ".join(IMPORT_STATES)}.

One transaction per file: any row error imports nothing, unless --accept-valid, which imports the valid rows
and writes the rejected ones (row number and errors added) to a CSV. Importing a file again creates nothing
(each row's key: "import:" + external_id, else a hash of its identifying fields). No size limit: the file is
streamed. The full rules are in refloop/referrals/importer.py."""

MAX_ERRORS_PRINTED = 50


class _Formatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    pass


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("file", help="the CSV or XLSX file")
        parser.add_argument(
            "--map", action="append", default=[], metavar="COLUMN=FIELD", dest="maps",
            help="read the file's COLUMN as FIELD (repeatable); an empty FIELD ignores the column",
        )  # fmt: skip
        parser.add_argument("--date-format", metavar="FORMAT", help="strftime format of dates, e.g. %%m/%%d/%%Y")
        parser.add_argument("--dry-run", action="store_true", help="check and count everything, write nothing")
        parser.add_argument(
            "--accept-valid", action="store_true",
            help="import the valid rows even when others have errors, and write the rejected rows to a CSV",
        )  # fmt: skip
        parser.add_argument(
            "--rejected",
            metavar="PATH",
            help="where --accept-valid writes the rejected rows (default: FILE-rejected.csv)",
        )
        parser.add_argument("--by", metavar="USERNAME", help="the staff user recorded as importing the referrals")

    def handle(self, *args, file, maps, date_format, dry_run, accept_valid, rejected, by, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file")
        mapping = {}
        for item in maps:
            column, sep, field = item.rpartition("=")
            if not sep or not column.strip():
                raise CommandError(f'--map {item!r}: write it as "Column name=field"')
            mapping[column.strip()] = field.strip()
        user = None
        if by:
            user = get_user_model().objects.filter(username=by, is_active=True).first()
            if user is None:
                raise CommandError(f"--by {by}: there is no active user with that name")
        rejected_path = None
        if accept_valid or rejected:
            rejected_path = Path(rejected) if rejected else path.with_name(f"{path.stem}-rejected.csv")
        verbose = self.verbose = options["verbosity"] >= 2
        # The cyclic garbage collector rests while the file is imported (and in the reading child, which inherits
        # that at the fork). The import makes no garbage cycles of any size: its rows, tuples and lists are freed
        # by reference counting. But every chunk allocates tens of thousands of them, so the collector kept
        # running full passes over all that was alive: a seventh of a 1M-row import's CPU. The command owns its
        # process, so it can decide this; the import page runs in a shared worker and leaves the collector be.
        collecting = gc.isenabled()
        gc.disable()
        try:
            report = referral_import(
                path=path, mapping=mapping, date_format=date_format, dry_run=dry_run, accept_valid=accept_valid,
                rejected_path=rejected_path, by=user, by_label="" if user else "import-referrals",
                progress=self._progress if verbose else None, reader_process=True,
            )  # fmt: skip
        except ImportRefused as exc:
            raise CommandError(f"{path.name}: {exc} Nothing was imported.") from None
        finally:
            if collecting:
                gc.enable()
        self._print(report)
        if report.error_count and not report.committed and not accept_valid:
            raise CommandError(
                f"Nothing was imported: {report.rejected:,} row{'s' if report.rejected != 1 else ''} "
                "have errors (fix them, or import the valid rows with --accept-valid)."
            )

    def _progress(self, report: ImportReport) -> None:
        self.stderr.write(f"  {report.rows:,} rows read, {report.created:,} referrals so far")

    def _print(self, report: ImportReport) -> None:
        out = self.stdout.write
        mode = " (dry run: nothing written)" if report.dry_run else ""
        out(f"{report.file_name} ({report.kind.upper()}): {report.rows:,} rows in {report.seconds:.1f} s{mode}")
        verb = "would create" if not report.committed else "created"
        out(f"  {verb}: {report.created:,} referrals ({report.states_text or 'none'})")
        out(f"  patients: {report.patients_created:,} new, {report.patients_matched:,} rows for patients on file")
        out(f"  already imported (skipped): {report.skipped:,}")
        out(f"  rejected: {report.rejected:,}")
        if report.ignored_columns:
            out(f"  columns ignored: {', '.join(report.ignored_columns)}")
        if report.rejected_path and report.rejected:
            out(f"  rejected rows written to {report.rejected_path}")
        for message in report.errors[:MAX_ERRORS_PRINTED]:
            self.stderr.write(message)
        if report.error_count > MAX_ERRORS_PRINTED:
            self.stderr.write(f"... and {report.error_count - MAX_ERRORS_PRINTED:,} more errors")
        if report.providers_to_review:
            self.stderr.write("Referring providers to review (not found in the directory; none was created):")
            for entry in report.providers_to_review:
                who = ", ".join(p for p in (f"NPI {entry.npi}" if entry.npi else "", entry.name, entry.address) if p)
                self.stderr.write(f"  {who}: {entry.rows} row(s), first row {entry.first_row}")
        if self.verbose and report.phases:
            out(f"  time: {report.phases_text}")
        if report.committed:
            out("Imported in one transaction.")
