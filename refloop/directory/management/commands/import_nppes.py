from __future__ import annotations

import textwrap
from argparse import RawDescriptionHelpFormatter

from django.core.management import BaseCommand, CommandError
from django.core.management.base import DjangoHelpFormatter

from refloop.directory.npi_api import npi_api_import
from refloop.directory.nppes import (
    LOCATION_IMPORTED_FIELDS,
    LOCATION_MANUAL_KEY,
    MAX_REJECTS_SHOWN,
    ImportProgress,
    ImportRefused,
    ImportReport,
    nppes_import,
)
from refloop.directory.services import PRACTICE_IMPORTED_FIELDS, PROVIDER_IMPORTED_FIELDS


def _owned(label: str, names: list[str]) -> str:
    return textwrap.fill(
        ", ".join(names), width=105, initial_indent=f"  {label}: ", subsequent_indent=" " * 12
    )


_TAXONOMIES = "and its taxonomy rows (code, description, primary, license)"
_LOCATION = f"and its primary location ({', '.join(LOCATION_IMPORTED_FIELDS)})"

HELP = f"""\
Import referring providers and practices from the CMS NPPES monthly data file (npidata_pfile_*.csv,
ISO-8859-1, 330 quoted columns; streamed, so the 10 GB national file fits in bounded memory), or from an
NPI Registry API answer saved as JSON (--api-json).

Individuals (entity type 1) become referring providers with their taxonomies; organizations (entity type 2)
become referring practices with one primary location from the practice-location address. Existing records
are matched by NPI and updated; running the same file twice changes nothing. Deactivated NPIs are marked
inactive (the monthly file keeps only their number and date, so only records already in the directory are
touched). All writes happen in one transaction: a failure leaves the directory as it was.

Fields the import owns and keeps up to date:
{_owned("provider", [*PROVIDER_IMPORTED_FIELDS, _TAXONOMIES])}
{_owned("practice", [*PRACTICE_IMPORTED_FIELDS, _LOCATION])}
A field a person edited (listed in the record's manual_fields) is never overwritten; a practice
whose manual_fields holds "{LOCATION_MANUAL_KEY}" keeps its primary location as staff left it. Everything
else (tier, territory, liaison, email, notes, report channel, affiliations, staff) belongs to staff.

Filters combine with AND; repeat a filter (or give several values) for OR. A row that cannot be imported is
reported with its line number (the header is line 1) and the rest is imported."""


class _Formatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    pass


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="the NPPES data file (npidata_pfile_*.csv)")
        parser.add_argument("--api-json", metavar="FILE", help="import an NPI Registry API answer instead")
        parser.add_argument(
            "--state", action="extend", nargs="+", default=[], metavar="XX",
            help="practice-location state, e.g. OH",
        )  # fmt: skip
        parser.add_argument(
            "--zip-prefix", action="extend", nargs="+", default=[], metavar="NNN",
            help="first digits of the practice-location ZIP code, e.g. 432",
        )  # fmt: skip
        parser.add_argument(
            "--taxonomy", action="extend", nargs="+", default=[], metavar="CODE",
            help="NUCC taxonomy code, or its first characters (207X: all orthopaedic surgery), in any slot",
        )  # fmt: skip

    def handle(self, *args, file, api_json, state, zip_prefix, taxonomy, **options):
        if bool(file) == bool(api_json):
            raise CommandError("give either an NPPES data file or --api-json FILE (one of them)")
        if api_json and (state or zip_prefix or taxonomy):
            raise CommandError(
                "--state, --zip-prefix and --taxonomy apply to the NPPES file, not to --api-json"
            )
        progress = _ProgressLine(self.stderr) if options.get("verbosity", 1) >= 1 else None
        try:
            if api_json:
                report = npi_api_import(path=api_json)
                title = f"NPI Registry API answer {api_json}"
            else:
                report = nppes_import(
                    path=file, states=state, zip_prefixes=zip_prefix, taxonomies=taxonomy, progress=progress
                )
                title = f"NPPES file {file}" + _filters(state, zip_prefix, taxonomy)
        except ImportRefused as refused:
            raise CommandError(str(refused)) from None
        finally:
            if progress is not None:
                progress.done()
        self.stdout.write(_report_text(title, report))


def _filters(states: list[str], zips: list[str], codes: list[str]) -> str:
    given = (("--state", states), ("--zip-prefix", zips), ("--taxonomy", codes))
    shown = ", ".join(f"{flag} {' '.join(values)}" for flag, values in given if values)
    return f" ({shown})" if shown else ""


def _report_text(title: str, report: ImportReport) -> str:
    lines = [f"Imported {title}:"]
    lines += [f"  {name:<12}{count:>12,}" for name, count in report.counts().items()]
    if report.rejected:
        lines.append("Rejected rows:")
        lines += [f"  {row}" for row in report.rejects]
        more = report.rejected - len(report.rejects)
        if more > 0:
            lines.append(f"  ... and {more:,} more (the first {MAX_REJECTS_SHOWN} are shown)")
    return "\n".join(lines)


class _ProgressLine:
    """Rows read and rows per second on stderr: one line rewritten on a terminal, a line a tick otherwise."""

    def __init__(self, stream):
        self.stream = stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.shown = False

    def __call__(self, progress: ImportProgress) -> None:
        rate = progress.rows_read / progress.seconds if progress.seconds > 0 else 0
        text = (
            f"import-nppes: {progress.fraction:6.1%} of the file, ~{progress.rows_read:,} rows read, "
            f"{rate:,.0f} rows/s, {progress.matched:,} matched"
        )
        self.stream.write(
            "\r" + text if self.tty else text, style_func=_plain, ending="" if self.tty else "\n"
        )
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown and self.tty:
            self.stream.write("", style_func=_plain)
        self.stream.flush()


def _plain(text: str) -> str:
    return text
