"""Bulk referral import: a CSV or XLSX export from an EHR or practice-management system, one file at a time.

`refloop import-referrals FILE` and the import pages (/referrals/import/) both call `referral_import`. It applies
the rules of `services.referral_receive` to every row, but writes in chunks (one query per chunk to match
providers, patients and earlier imports; bulk inserts of patients, referrals and events), because one service
call per row cannot bring in a five-year history of a million referrals in minutes.

The file
- CSV (UTF-8 with or without BOM, bytes that are not UTF-8 read as Windows-1252, or UTF-16 with BOM; comma,
  semicolon, tab or pipe separated) or XLSX (its first sheet). The kind is read from the content, never from
  the name: an image, a PDF, a ZIP that is not a workbook or any other binary file is refused.
- The first non-empty row is the header. A column named like a field (CANONICAL_FIELDS; case, spaces and
  hyphens ignored) needs no mapping; others are mapped ("DOB" -> patient_dob); other columns are ignored.
- Dates are ISO (2026-11-20; received_date may carry a time, 2026-11-20T10:15) unless a date format is given
  (strftime codes, e.g. %m/%d/%Y); spreadsheet date cells are read as dates.
- Cells are data, never formulas: a cell beginning with = + - @ is stored as the text it holds (XLSX formulas
  are read as their text, never evaluated), and csvsafe neutralizes it on every export, the rejected-rows file
  included. The apostrophe csvsafe puts in front of such a cell is dropped on import, so a corrected
  rejected-rows file imports the text as it was.
- Size: the page refuses uploads above UPLOAD_MAX_BYTES (25 MB). The command takes any size: it streams the file
  CHUNK_ROWS rows at a time, so memory stays flat however long the file is.

Matching
- Referring provider: by NPI (a merged record leads to the record it was merged into); when the row has no NPI,
  or one the directory does not hold, by name and address: the same first and last name, and the same ZIP and
  street line (those the row gives) as the provider's address or a location of a practice they work at. A
  provider found neither way is never created: the row fails and the provider is listed for review.
- Patient: as `services.patient_resolve`: the patient with the same MRN; else the one patient with the same
  name and date of birth whose MRN does not conflict (the file's MRN is then filled in); else a new patient.
  Patients are never merged.
- location: a practice location by name; clinician: by NPI or by name ("Ana Ortega", "Ortega, Ana").

Idempotency: a row's key is "import:" + external_id when it has one, else "import:sha256:" + the SHA-256 of its
identifying fields (referring NPI and name, patient last and first name, date of birth, MRN, date received and
reason, normalized). A row whose key is already in the database, or earlier in the same file, is skipped and
counted as already imported: importing a file again creates nothing.

Status (history imports): received, accepted, scheduled, seen, report_sent, closed, declined or lost (blank is
received). The referral lands in that state with one "import" event; owner and due time come from sla (the file
carries no appointment, so an imported scheduled referral has no due time until it is rescheduled, and the
dates of steps the file does not carry stay empty; a declined or lost one is marked as such from the import).
Imports send nothing to referring offices: no referral_event_committed signal is sent for imported rows.

All or nothing: one transaction per file. Any row error rolls the whole file back, unless the user chooses to
accept the valid rows: then they are imported and the rejected ones (with row number and errors) are written to
a CSV. A dry run does the whole import and rolls it back. Each committed run writes one audit event, with counts
only (no patient data).

The dashboard's rollups (insights/rollups.py) are kept in the same transaction, without the model saves that keep
them for a single referral: each referral's member row is written with it, and a committed run adds exactly the
rows it wrote to the sums, set-based (insights/rollup_bulk.py), so the cost follows the rows imported.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import hashlib
import itertools
import json
import multiprocessing
import operator
import os
import re
import sqlite3
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from refloop.accounts.audit import audit_record
from refloop.directory.models import ProviderPractice, ReferringPractice, ReferringProvider
from refloop.insights import rollup_bulk
from refloop.insights.models import RollupMember, SourceRollup
from refloop.lib.csvsafe import _TRIGGERS as FORMULA_TRIGGERS
from refloop.lib.csvsafe import neutralize
from refloop.lib.icd10 import parse_icd10_list
from refloop.lib.npi import npi_problem
from refloop.lib.pg_copy import column_types
from refloop.lib.sqlite_pragma import parallel_sorts, release_freed_memory, sqlite_pragma
from refloop.lib.sqlite_rows import RowsPerStatement
from refloop.practice.models import Clinician, Location, ServiceLevels
from refloop.referrals import sla
from refloop.referrals.models import Channel, Patient, Referral, ReferralEvent, Sex, Urgency
from refloop.referrals.workflow import LostReason, State

CANONICAL_FIELDS: dict[str, str] = {
    "patient_first_name": "Patient first name (required)",
    "patient_last_name": "Patient last name (required)",
    "patient_dob": "Patient date of birth (required)",
    "patient_sex": "F, M, O or U (or female, male, other, unknown)",
    "patient_phone": "Patient phone",
    "mrn": "The patient's number in the practice's EHR",
    "payer": "Insurance payer",
    "member_id": "Insurance member ID",
    "referring_npi": "Referring provider NPI (this or referring_name is required)",
    "referring_name": "Referring provider name, e.g. Ana Silvestri or Silvestri, Ana",
    "referring_address": "Referring provider street address (to match by name and address)",
    "referring_zip": "Referring provider ZIP code (to match by name and address)",
    "received_date": "Date the referral was received (required)",
    "reason": "Reason for the referral (required)",
    "diagnosis_codes": "ICD-10-CM codes, separated by commas, semicolons or spaces",
    "urgency": "routine, urgent or stat (blank is routine)",
    "location": "Practice location, by name",
    "clinician": "Practice clinician, by NPI or name",
    "status": "Current state for history imports (blank is received)",
    "external_id": "The referral's ID in the exporting system",
}
REQUIRED_FIELDS = ("patient_first_name", "patient_last_name", "patient_dob", "received_date", "reason")
IMPORT_STATES = (
    State.RECEIVED,
    State.ACCEPTED,
    State.SCHEDULED,
    State.SEEN,
    State.REPORT_SENT,
    State.CLOSED,
    State.DECLINED,
    State.LOST,
)
CHUNK_ROWS = 5_000
UPLOAD_MAX_BYTES = 25 * 1024 * 1024
MAX_ERRORS_KEPT = 200
MAX_REVIEW_KEPT = 500
PREVIEW_ROWS = 10
SQLITE_CACHE_KB = 256 * 1024
BULK_INDEX_MIN_ROWS = 50_000
BULK_INDEX_SHARE = 0.5
POSTGRES_LOCK_WAIT = "5s"  # how long a bulk import waits for the tables whose indexes it drops (_DeferredIndexes)
READER_PROCESS_MIN_ROWS = 20_000
SQLITE_ROWS_PER_INSERT = 500
DECLINED_NOTE = "Declined before import (state from the import file)."

_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\xd0\xcf\x11\xe0", "an old-format Excel workbook (.xls) or a password-protected one"),
)
_SEX = {"f": Sex.FEMALE, "female": Sex.FEMALE, "m": Sex.MALE, "male": Sex.MALE, "o": Sex.OTHER,
        "other": Sex.OTHER, "u": Sex.UNKNOWN, "unknown": Sex.UNKNOWN, "": Sex.UNKNOWN}  # fmt: skip
_CREDENTIALS = frozenset({"md", "do", "np", "pa", "pac", "dds", "dmd", "od", "dpm", "aprn", "fnp", "fnpc", "npc",
                          "crnp", "rn", "phd", "mbbs", "dc", "pt", "dnp", "facs", "facp", "jr", "sr", "ii",
                          "iii"})  # fmt: skip
_STREET_WORDS = {"street": "st", "avenue": "ave", "av": "ave", "drive": "dr", "road": "rd", "boulevard": "blvd",
                 "lane": "ln", "court": "ct", "place": "pl", "parkway": "pkwy", "highway": "hwy", "circle": "cir",
                 "terrace": "ter", "square": "sq", "north": "n", "south": "s", "east": "e", "west": "w",
                 "trail": "trl", "way": "wy", "pike": "pk", "turnpike": "tpke"}  # fmt: skip
_UNIT_WORDS = frozenset({"ste", "suite", "unit", "apt", "fl", "floor", "bldg", "building", "room", "rm"})
_ZIP_AT_END = re.compile(r"\b(\d{5})(?:-\d{4})?\s*$")
_TRIGGER_SET = frozenset(FORMULA_TRIGGERS)
_URGENCIES = frozenset(Urgency.values)
_STATES = frozenset(IMPORT_STATES)


def _limit(model, name: str) -> int:
    return model._meta.get_field(name).max_length


# The fields read as plain text: (field, required, maximum length). _Checker.check unpacks them in this order.
_TEXT_FIELDS = (
    ("patient_first_name", True, _limit(Patient, "first_name")),
    ("patient_last_name", True, _limit(Patient, "last_name")),
    ("patient_phone", False, _limit(Patient, "phone")),
    ("mrn", False, _limit(Patient, "mrn")),
    ("payer", False, _limit(Patient, "payer")),
    ("member_id", False, _limit(Patient, "member_id")),
    ("referring_npi", False, None),
    ("referring_name", False, 200),
    ("referring_address", False, None),
    ("referring_zip", False, None),
    ("reason", True, None),
    ("external_id", False, _limit(Referral, "external_id")),
)


def _cp1252_fallback(error: UnicodeDecodeError) -> tuple[str, int]:
    """Bytes that are not UTF-8 in a mostly UTF-8 export are nearly always Windows-1252 (Excel's "CSV")."""
    return error.object[error.start : error.end].decode("cp1252", errors="replace"), error.end


codecs.register_error("refloop_cp1252", _cp1252_fallback)


class ImportRefused(Exception):
    """The file as a whole cannot be imported (not a spreadsheet, too large, columns missing): nothing was written."""


@dataclass
class ProviderToReview:
    """A referring provider named in the file but not found in the directory (never created by an import)."""

    npi: str
    name: str
    address: str
    rows: int
    first_row: int


@dataclass
class ImportReport:
    file_name: str
    kind: str
    dry_run: bool
    accept_valid: bool
    rows: int = 0
    created: int = 0
    patients_created: int = 0
    patients_matched: int = 0
    already_imported: int = 0
    repeated_in_file: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    providers_to_review: list[ProviderToReview] = field(default_factory=list)
    states: Counter = field(default_factory=Counter)
    ignored_columns: list[str] = field(default_factory=list)
    committed: bool = False
    rejected_path: str = ""
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds of each part of the run, in order

    @property
    def phases_text(self) -> str:
        """E.g. "rows read, checked and written 80.1 s; indexes built 18.2 s; ..." (what took the time)."""
        return "; ".join(f"{name} {seconds:.1f} s" for name, seconds in self.phases.items())

    def error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(message)

    @property
    def states_text(self) -> str:
        """The referrals created (or to be created) by state, e.g. "closed 980, received 20"."""
        return ", ".join(f"{state} {count:,}" for state, count in sorted(self.states.items()))

    @property
    def skipped(self) -> int:
        return self.already_imported + self.repeated_in_file

    def audit_detail(self) -> dict[str, Any]:
        """Counts only: no names, dates or identifiers of patients."""
        return {
            "kind": self.kind,
            "rows": self.rows,
            "created": self.created,
            "patients_created": self.patients_created,
            "patients_matched": self.patients_matched,
            "already_imported": self.skipped,
            "rejected": self.rejected,
            "accept_valid": self.accept_valid,
            "states": dict(self.states),
        }


# Reading files ---------------------------------------------------------------------------------------------


def file_kind(path: Path, *, max_bytes: int | None = None) -> str:
    """'csv' or 'xlsx', read from the content; ImportRefused saying what the file is when it is neither."""
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise ImportRefused(too_large(size, max_bytes))
    if size == 0:
        raise ImportRefused("The file is empty.")
    with path.open("rb") as handle:
        head = handle.read(64 * 1024)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            raise ImportRefused("The file is a damaged ZIP archive, not a CSV or Excel (.xlsx) file.") from None
        if "xl/workbook.xml" in names:
            return "xlsx"
        raise ImportRefused("The file is a ZIP archive that is not an Excel workbook (.xlsx), nor a CSV file.")
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise ImportRefused(f"The file is {what}, not a CSV or Excel (.xlsx) file.")
    if not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and b"\x00" in head:
        raise ImportRefused("The file is binary, not a CSV or Excel (.xlsx) file.")
    return "csv"


def too_large(size: int, limit: int) -> str:
    return (
        f"The file is {_megabytes(size)}; files up to {_megabytes(limit)} can be imported here. Split it, or "
        "import it with the `refloop import-referrals` command, which has no size limit."
    )


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"


@contextlib.contextmanager
def _open_rows(path: Path, kind: str) -> Iterator[Iterator[tuple[int, list]]]:
    """The file's rows as (row number, cells); row 1 is the first line or sheet row, as a spreadsheet shows it."""
    if kind == "xlsx":
        from openpyxl import load_workbook

        with path.open("rb") as handle:  # a file object: openpyxl would refuse a name without .xlsx
            try:
                book = load_workbook(handle, read_only=True, data_only=False)
            except Exception as exc:  # openpyxl raises many kinds (KeyError, ValueError, XML errors)
                raise ImportRefused(f"The Excel workbook cannot be read: {exc}.") from None
            try:
                yield _guarded(_xlsx_rows(book))
            finally:
                book.close()
        return
    with path.open("rb") as handle:
        head = handle.read(4)
    encoding = "utf-16" if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    errors = "strict" if encoding == "utf-16" else "refloop_cp1252"
    with path.open(newline="", encoding=encoding, errors=errors) as text:
        try:
            sample = text.readline()
        except UnicodeError:
            raise ImportRefused("The file is not text in a known encoding (save it as UTF-8 CSV).") from None
        text.seek(0)
        delimiter = max(",;\t|", key=sample.count)
        yield _guarded(enumerate(csv.reader(text, delimiter=delimiter), start=1))


def _xlsx_rows(book) -> Iterator[tuple[int, list]]:
    sheet = book.worksheets[0]
    sheet.reset_dimensions()  # exporters often write a wrong sheet size; read what is there
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        yield number, [_xlsx_cell(value) for value in values]


def _xlsx_cell(value: Any) -> Any:
    """Text for everything but dates: a formula is its text (never evaluated), 1234567893.0 is '1234567893'."""
    if value is None:
        return ""
    if isinstance(value, str | dt.date | dt.time):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _guarded(rows: Iterator[tuple[int, list]]) -> Iterator[tuple[int, list]]:
    """Reading errors half-way through a file become ImportRefused naming the row, never a traceback."""
    number = 0
    try:
        for number, values in rows:  # noqa: B007 (read in the except clause)
            yield number, values
    except ImportRefused:
        raise
    except Exception as exc:  # csv.Error, UnicodeError, zip and XML errors from a damaged workbook
        raise ImportRefused(f"Row {number + 1} cannot be read: {exc}.") from None


def _blank(values: list) -> bool:
    return all(v == "" or (v.__class__ is str and not v.strip()) for v in values)


def _header(rows: Iterator[tuple[int, list]]) -> list[str]:
    for _number, values in rows:
        if not _blank(values):
            return [str(v).strip() for v in values]
    raise ImportRefused("The file has no header row (and no rows).")


def preview(path: Path, kind: str, *, rows: int = PREVIEW_ROWS) -> tuple[list[str], list[list[str]]]:
    """The header and the first `rows` rows, as text, for the mapping page."""
    with _open_rows(path, kind) as reader:
        header = _header(reader)
        shown = []
        for _number, values in reader:
            if _blank(values):
                continue
            cells = [_as_text(v) for v in values]
            shown.append((cells + [""] * len(header))[: len(header)])
            if len(shown) >= rows:
                break
    return header, shown


def _as_text(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date | dt.time) else str(value)


# Columns ----------------------------------------------------------------------------------------------------


def _normal(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def automatic_fields(header: list[str]) -> list[str | None]:
    """The field each column gives when nothing is mapped: its own name, when that is a field."""
    seen: set[str] = set()
    fields: list[str | None] = []
    for name in header:
        normal = _normal(name)
        fields.append(normal if normal in CANONICAL_FIELDS and normal not in seen else None)
        seen.add(normal)
    return fields


def column_fields(header: list[str], mapping: dict[str, str] | None = None) -> list[str | None]:
    """The field of each column: `mapping` (file column -> field, '' to ignore) first, then the column's name."""
    problems: list[str] = []
    explicit: dict[int, str | None] = {}
    for column, target in (mapping or {}).items():
        if target and target not in CANONICAL_FIELDS:
            problems.append(f"“{target}” is not a field (the fields are {', '.join(CANONICAL_FIELDS)}).")
            continue
        positions = [i for i, name in enumerate(header) if name == column.strip()]
        positions = positions or [i for i, name in enumerate(header) if _normal(name) == _normal(column)]
        if not positions:
            problems.append(f"There is no column “{column}” in the file (its columns: {', '.join(header)}).")
        elif len(positions) > 1:
            problems.append(f"The column “{column}” appears {len(positions)} times in the header.")
        else:
            explicit[positions[0]] = target or None
    taken = {target for target in explicit.values() if target}
    fields = [explicit.get(i, auto if auto not in taken else None) for i, auto in enumerate(automatic_fields(header))]
    check_fields(header, fields, problems)
    return fields


def check_fields(header: list[str], fields: list[str | None], problems: list[str] | None = None) -> None:
    """ImportRefused listing every problem with the columns: unknown or repeated fields, required ones missing."""
    problems = list(problems or [])
    for name, count in Counter(f for f in fields if f).items():
        if name not in CANONICAL_FIELDS:
            problems.append(f"“{name}” is not a field.")
        elif count > 1:
            columns = [header[i] for i, f in enumerate(fields) if f == name]
            problems.append(f"{name} is given by more than one column ({', '.join(columns)}).")
    missing = [name for name in REQUIRED_FIELDS if name not in fields]
    if "referring_npi" not in fields and "referring_name" not in fields:
        missing.append("referring_npi or referring_name")
    if missing:
        problems.append(
            f"The file has no column for {', '.join(missing)} (its columns: {', '.join(header)}). Name the "
            'columns like the fields, or map them (on the command line: --map "Column name=field").'
        )
    if problems:
        raise ImportRefused(" ".join(problems))


def date_format_label(date_format: str | None) -> str:
    if not date_format:
        return "YYYY-MM-DD"
    label = date_format
    for code, text in (("%Y", "YYYY"), ("%y", "YY"), ("%m", "MM"), ("%d", "DD"), ("%b", "Mon"), ("%B", "Month")):
        label = label.replace(code, text)
    return label


def _check_date_format(date_format: str | None) -> str | None:
    if not date_format:
        return None
    sample = dt.date(2001, 2, 3)
    try:
        ok = dt.datetime.strptime(sample.strftime(date_format), date_format).date() == sample
    except ValueError:
        ok = False
    if not ok:
        raise ImportRefused(
            f"The date format “{date_format}” does not give a whole date (use strftime codes, e.g. %m/%d/%Y)."
        )
    return date_format


# Checking rows ----------------------------------------------------------------------------------------------


class _Row:
    __slots__ = ("number", "values", "errors", "first_name", "last_name", "birth_date", "sex", "phone", "mrn",
                 "payer", "member_id", "npi", "referring_name", "referring_address", "referring_zip",
                 "received_at", "reason", "codes", "codes_json", "urgency", "location_id", "clinician_id", "state",
                 "external_id", "key", "provider_id", "findable", "name_key", "received")  # fmt: skip

    def __init__(self, number: int, values: list) -> None:
        self.number = number
        self.values = values
        self.errors: list[str] = []
        self.key: str | None = None  # set by the checker when the row has no errors, as is name_key
        self.name_key = ""
        self.received: tuple | None = None  # the time received as the writer needs it (see _Checker.received)
        self.provider_id: int | None = None
        self.findable = True  # False when the referring provider's NPI or name is already reported as unusable

    def __reduce__(self):
        """Pickled as one tuple of its fields (the reader process sends rows this way): read by one attrgetter and
        set back by one unpacking assignment, the cheapest ways Python has (a getattr/setattr loop per field was a
        tenth of a 1M-row import's CPU, in both processes)."""
        return _row_from_state, (_row_state(self),)


_ROW_STATE = _Row.__slots__
_row_state = operator.attrgetter(*_ROW_STATE)


def _row_from_state(state: tuple) -> _Row:
    row = _Row.__new__(_Row)
    (row.number, row.values, row.errors, row.first_name, row.last_name, row.birth_date, row.sex, row.phone, row.mrn,
     row.payer, row.member_id, row.npi, row.referring_name, row.referring_address, row.referring_zip,
     row.received_at, row.reason, row.codes, row.codes_json, row.urgency, row.location_id, row.clinician_id,
     row.state, row.external_id, row.key, row.provider_id, row.findable, row.name_key,
     row.received) = state  # fmt: skip
    return row


def _fold(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _person_names(text: str) -> set[tuple[str, str]]:
    """Possible (first, last) readings of 'Ana M. Silvestri, MD', 'Silvestri, Ana' or 'Dr. Ana de la Cruz'."""
    head, _, tail = text.lower().replace(".", " ").partition(",")
    tail_words = [w for w in tail.split() if _fold(w)]
    if tail_words and all(_fold(w) in _CREDENTIALS for w in tail_words):
        tail = ""
    if tail.strip():  # "Last, First Middle"
        firsts = [w for w in tail.split() if _fold(w) not in _CREDENTIALS]
        return {(_fold(firsts[0]), _fold(head))} if firsts else set()
    words = [w for w in head.split() if _fold(w) and _fold(w) not in _CREDENTIALS and _fold(w) != "dr"]
    if len(words) < 2:
        return set()
    return {(_fold(words[0]), _fold("".join(words[k:]))) for k in range(1, len(words))}


def _street(text: str) -> str:
    words = []
    for word in re.sub(r"[^a-z0-9]+", " ", text.lower()).split():
        if word in _UNIT_WORDS:
            break
        words.append(_STREET_WORDS.get(word, word))
    return " ".join(words)


def _address_parts(address: str, zip_code: str) -> tuple[str, str]:
    """(street, 5-digit ZIP) of a row: the ZIP column, else a ZIP at the end of the address."""
    zip5 = re.sub(r"\D", "", zip_code)[:5]
    match = _ZIP_AT_END.search(address)
    if match:
        zip5 = zip5 or match.group(1)
        address = address[: match.start()]
    return _street(address.split(",")[0]), zip5


class _Checker:
    """Validates one row with the rules of referral_receive and patient_resolve; errors name row and column."""

    def __init__(
        self, header: list[str], fields: list[str | None], date_format: str | None, now: dt.datetime, kind: str
    ):
        self.text_only = kind == "csv"
        self.valid_npis: set[str] = set()
        self.where = {name: i for i, name in enumerate(fields) if name}
        self.width = len(header)
        self.at = {name: self.where.get(name, self.width) for name in CANONICAL_FIELDS}  # absent: the blank pad
        self.dates = {self.where[name] for name in ("patient_dob", "received_date") if name in self.where}
        self.labels = {
            name: name if _normal(header[i]) == name else f"{header[i]} ({name})" for name, i in self.where.items()
        }
        self.texts = operator.itemgetter(*(self.at[name] for name, _required, _limit in _TEXT_FIELDS))
        limited = [(self.at[name], limit) for name, _required, limit in _TEXT_FIELDS if limit]
        self.limited = operator.itemgetter(*(i for i, _limit in limited))
        self.shortest = min(limit for _i, limit in limited)
        self.date_format = date_format
        self.expected = date_format_label(date_format)
        self.now = now
        self.latest = now + dt.timedelta(minutes=5)
        self.today = timezone.localdate(now)
        self.tz = timezone.get_current_timezone()
        self.received_cache: dict[Any, tuple[dt.datetime | None, str, tuple | None]] = {}
        self.db_datetime = connection.ops.adapt_datetimefield_value
        self.db_date = connection.ops.adapt_datefield_value
        self.codes_cache: dict[str, tuple[list[str], str] | str] = {}
        self.states: dict[str, str] = {}
        self.locations = {name.strip().lower(): pk for pk, name in Location.objects.values_list("pk", "name")}
        self.clinicians = _clinician_names()

    def cells(self, values: list) -> list:
        """The row's cells as stripped text (dates kept in the date columns), padded with one blank per column."""
        if self.text_only:  # CSV: every cell is text; the loop below is needed only when one starts with '
            cells = [value.strip() for value in values[: self.width]]
            if "\x1f'" not in "\x1f" + "\x1f".join(cells):
                cells.extend([""] * (self.width + 1 - len(cells)))
                return cells
            values = cells
        cells = []
        for i, value in enumerate(values[: self.width]):
            if value.__class__ is str:
                value = value.strip()
                if value[:1] == "'" and value[1:2] in _TRIGGER_SET:
                    value = value[1:]  # the apostrophe csvsafe added on export
            elif i not in self.dates:
                value = _as_text(value)
            cells.append(value)
        cells.extend([""] * (self.width + 1 - len(cells)))
        return cells

    def text_problems(self, row: _Row, cells: list) -> None:
        """The errors of the plain text fields (check() reads them in one go, and comes here only when one fails)."""
        for name, required, limit in _TEXT_FIELDS:
            value = cells[self.at[name]]
            if not value:
                if required:
                    self.fail(row, name, "is empty, and it is required")
            elif limit and len(value) > limit:
                self.fail(row, name, f"is {len(value)} characters long (at most {limit})")

    def fail(self, row: _Row, name: str, message: str) -> None:
        label = self.labels.get(name, name)
        row.errors.append(f"row {row.number}, column {label}: {message}")

    def date(self, row: _Row, name: str, value: Any) -> dt.date | None:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if not value:
            self.fail(row, name, "is empty, and it is required")
            return None
        parsed = self.parse_date(str(value))
        if parsed is None:
            self.fail(row, name, f"{_quoted(value)} is not a date (expected {self.expected})")
        return parsed

    def parse_date(self, value: str) -> dt.date | None:
        try:
            if self.date_format:
                return dt.datetime.strptime(value, self.date_format).date()
            if len(value) == 10 and value[4] == "-" and value[7] == "-":
                return dt.date.fromisoformat(value)
        except ValueError:
            pass
        return None

    def received(self, row: _Row, value: Any) -> dt.datetime | None:
        """The time received: a date (midnight, practice time) or an ISO date and time; never in the future. The row
        also gets what the writer needs of it (row.received: its database form, its local date and the database form
        of the first of its month, the rollups' grain), worked out here, in the reading process when there is one."""
        if not value:
            self.fail(row, "received_date", "is empty, and it is required")
            return None
        known = self.received_cache.get(value)
        if known is None:
            moment = self._moment(value)
            if moment is None:
                known = (None, f"is not a date (expected {self.expected})", None)
            elif moment > self.latest:
                known = (moment, "is in the future", None)
            else:
                day = timezone.localdate(moment)
                known = (moment, "", (self.db_datetime(moment), day, self.db_date(day.replace(day=1))))
            if len(self.received_cache) > 50_000:
                self.received_cache.clear()
            self.received_cache[value] = known
        moment, problem, row.received = known
        if problem:
            self.fail(row, "received_date", f"{_quoted(_as_text(value))} {problem}")
            return None
        return moment

    def _moment(self, value: Any) -> dt.datetime | None:
        if isinstance(value, dt.date):  # a spreadsheet date or date-and-time cell
            moment = value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time())
        elif (day := self.parse_date(value)) is not None:
            moment = dt.datetime.combine(day, dt.time())
        else:
            try:
                moment = dt.datetime.fromisoformat(value) if len(value) > 10 else None
            except ValueError:
                moment = None
        if moment is None:
            return None
        return moment if moment.tzinfo else timezone.make_aware(moment, self.tz)

    def check(self, number: int, values: list) -> _Row | None:
        """The row's values, checked; None for a blank row (blank rows are skipped, not counted)."""
        cells = self.cells(values)
        if not any(cells):
            return None
        row = _Row(number, values)
        at = self.at
        (row.first_name, row.last_name, row.phone, row.mrn, row.payer, row.member_id, row.npi, row.referring_name,
         row.referring_address, row.referring_zip, row.reason, row.external_id) = self.texts(cells)  # fmt: skip
        if not (row.first_name and row.last_name and row.reason) or max(map(len, self.limited(cells))) > self.shortest:
            self.text_problems(row, cells)  # one of them is missing or may be too long: look closer
        row.birth_date = self.date(row, "patient_dob", cells[at["patient_dob"]])
        if row.birth_date is not None and row.birth_date > self.today:
            self.fail(row, "patient_dob", f"{_quoted(_as_text(row.birth_date))} is in the future")
        sex = cells[at["patient_sex"]]
        row.sex = _SEX.get(sex.lower())
        if row.sex is None:
            self.fail(row, "patient_sex", f"{_quoted(sex)} is not a sex (expected F, M, O or U)")
        if row.npi and row.npi not in self.valid_npis:
            if problem := npi_problem(row.npi):
                self.fail(row, "referring_npi", f"{_quoted(row.npi)} is not a valid NPI: {problem}")
                row.findable = False
            elif len(self.valid_npis) < 200_000:
                self.valid_npis.add(row.npi)
        if not row.npi and not row.referring_name:
            column = "referring_npi" if "referring_npi" in self.where else "referring_name"
            self.fail(row, column, "is empty: give the referring provider's NPI or name")
            row.findable = False
        row.received_at = self.received(row, cells[at["received_date"]])
        row.codes, row.codes_json = self.codes(row, cells[at["diagnosis_codes"]])
        urgency = cells[at["urgency"]]
        row.urgency = urgency.lower() or Urgency.ROUTINE
        if row.urgency not in _URGENCIES:
            self.fail(row, "urgency", f"{_quoted(urgency)} is not an urgency (expected routine, urgent or stat)")
        row.location_id = self.location(row, cells[at["location"]])
        row.clinician_id = self.clinician(row, cells[at["clinician"]])
        status = cells[at["status"]]
        row.state = self.states.get(status) or self.states.setdefault(status, _normal(status) or State.RECEIVED)
        if row.state not in _STATES:
            self.fail(row, "status", f"{_quoted(status)} is not a status (expected {', '.join(IMPORT_STATES)})")
        if not row.errors:
            row.key = _idempotency_key(row)
            row.name_key = Patient.make_name_key(row.first_name, row.last_name)
        return row

    def codes(self, row: _Row, value: str) -> tuple[list[str], str]:
        """The diagnosis codes, normalized, and their JSON (a file repeats a few hundred combinations)."""
        known = self.codes_cache.get(value)
        if known is None:
            try:
                codes = parse_icd10_list(value)
                known = (codes, json.dumps(codes))
            except ValueError as exc:
                known = str(exc)
            if len(self.codes_cache) > 50_000:
                self.codes_cache.clear()
            self.codes_cache[value] = known
        if isinstance(known, str):
            self.fail(row, "diagnosis_codes", known)
            return [], "[]"
        return known

    def location(self, row: _Row, name: str) -> int | None:
        if not name:
            return None
        pk = self.locations.get(name.lower())
        if pk is None:
            self.fail(row, "location", f"there is no practice location named {_quoted(name)}")
        return pk

    def clinician(self, row: _Row, value: str) -> int | None:
        if not value:
            return None
        found = self.clinicians.get(value) or self.clinicians.get(_clinician_key(value), set())
        if len(found) == 1:
            return next(iter(found))
        problem = "is the name of more than one clinician: give the NPI" if found else "is no clinician's NPI or name"
        self.fail(row, "clinician", f"{_quoted(value)} {problem}")
        return None


def _quoted(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _clinician_key(text: str) -> str:
    return " ".join(text.lower().replace(".", " ").split())


def _clinician_names() -> dict[str, set[int]]:
    names: dict[str, set[int]] = {}
    for clinician in Clinician.objects.all():
        first, last = clinician.first_name, clinician.last_name
        names.setdefault(clinician.npi, set()).add(clinician.pk)
        for variant in (f"{first} {last}", f"{last}, {first}", clinician.display_name, f"dr {first} {last}"):
            names.setdefault(_clinician_key(variant), set()).add(clinician.pk)
    return names


def _idempotency_key(row: _Row) -> str:
    if row.external_id:
        return f"import:{row.external_id}"
    parts = [
        row.npi,
        " ".join(row.referring_name.lower().split()),
        row.last_name.lower(),
        row.first_name.lower(),
        row.birth_date.isoformat(),
        row.mrn,
        row.received_at.isoformat(),
        " ".join(row.reason.lower().split()),
    ]
    return "import:sha256:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


# Referring providers ----------------------------------------------------------------------------------------


class _Directory:
    """Finds each row's referring provider: NPI first, then name and address; never creates one."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        self.by_npi: dict[str, int | None] = {}
        self.by_name: dict[tuple[str, str], list[tuple[int, str, set[tuple[str, str]]]]] | None = None
        self.by_name_found: dict[tuple[str, str, str, str], int | tuple[str, str]] = {}
        self.practice_of: dict[int, int | None] = {}
        self.counted_as: dict[int, tuple[str, int | None, int | None]] = {}  # specialty, territory, liaison
        self.review: dict[tuple[str, str, str, str], ProviderToReview] = {}

    def resolve(self, rows: list[_Row], checker: _Checker) -> None:
        wanted = {row.npi for row in rows if row.npi and row.npi not in self.by_npi}
        # The NPI index is partial (NPI not blank): its condition, written as in the index, lets the database use it.
        found = _fetch_in(ReferringProvider, "npi, id, merged_into_id", "npi", sorted(wanted), where=_not_blank("npi"))
        for npi, pk, merged_into in found:
            self.by_npi[npi] = _current_provider(merged_into) if merged_into else pk
        for npi in wanted:
            self.by_npi.setdefault(npi, None)
        for row in rows:
            row.provider_id = self.by_npi.get(row.npi) if row.npi else None
            if row.provider_id is None:
                self._by_name_and_address(row, checker)
        self._load_practices({row.provider_id for row in rows if row.provider_id})

    def _by_name_and_address(self, row: _Row, checker: _Checker) -> None:
        key = (row.npi, row.referring_name, row.referring_address, row.referring_zip)
        found = self.by_name_found.get(key)
        if found is None:
            if len(self.by_name_found) > 100_000:
                self.by_name_found.clear()
            found = self.by_name_found[key] = self._match_by_name_and_address(row)
        if isinstance(found, int):
            row.provider_id = found
            return
        checker.fail(row, *found)
        self._listed(row)

    def _match_by_name_and_address(self, row: _Row) -> int | tuple[str, str]:
        """The one provider with the row's name at its address, else the column and message of the row's error. A
        file names the same provider this way on many rows: each one is looked up once (see _by_name_and_address)."""
        street, zip5 = _address_parts(row.referring_address, row.referring_zip)
        matches: set[int] = set()
        if row.referring_name and (street or zip5):
            index = self._name_index()
            for name in _person_names(row.referring_name):
                for pk, npi, addresses in index.get(name, ()):
                    if row.npi and npi:
                        continue  # a different NPI is a different provider
                    if any((not zip5 or z == zip5) and (not street or s == street) for s, z in addresses):
                        matches.add(pk)
        if len(matches) == 1:
            return matches.pop()
        column = "referring_npi" if row.npi else "referring_name"
        name = _quoted(row.referring_name)
        if matches:
            message = f"{len(matches)} referring providers named {name} are at that address: give the NPI"
        elif row.npi and row.referring_name:
            message = f"there is no referring provider with NPI {row.npi} nor named {name} at that address"
        elif row.npi:
            message = f"there is no referring provider with NPI {row.npi} in the directory"
        elif street or zip5:
            message = f"there is no referring provider named {name} at that address in the directory"
        else:
            message = f"there is no NPI and no address to find the referring provider named {name} by"
        return column, message + " (listed for review)"

    def _listed(self, row: _Row) -> None:
        address = ", ".join(p for p in (row.referring_address, row.referring_zip) if p)
        key = (row.npi, _fold(row.referring_name), _fold(row.referring_address), row.referring_zip)
        entry = self.review.get(key)
        if entry is not None:
            entry.rows += 1
        elif len(self.review) < MAX_REVIEW_KEPT:
            self.review[key] = ProviderToReview(row.npi, row.referring_name, address, 1, row.number)

    def _name_index(self) -> dict[tuple[str, str], list[tuple[int, str, set[tuple[str, str]]]]]:
        """Every current provider by folded (first, last) name, with their addresses: loaded once, when needed."""
        if self.by_name is None:
            addresses: dict[int, set[tuple[str, str]]] = {}
            locations = ProviderPractice.objects.values_list(
                "provider_id", "practice__locations__address_line1", "practice__locations__postal_code"
            )
            for pk, line, postal in locations.iterator(chunk_size=5000):
                if line or postal:
                    addresses.setdefault(pk, set()).add((_street(line or ""), (postal or "")[:5]))
            self.by_name = {}
            providers = ReferringProvider.objects.current().values_list(
                "pk", "npi", "first_name", "last_name", "address_line1", "postal_code"
            )
            for pk, npi, first, last, line, postal in providers.iterator(chunk_size=5000):
                own = addresses.pop(pk, set())
                if line or postal:
                    own.add((_street(line), postal[:5]))
                self.by_name.setdefault((_fold(first), _fold(last)), []).append((pk, npi, own))
        return self.by_name

    def _load_practices(self, provider_ids: set[int]) -> None:
        """The referring practice of each provider, as services._practice_of: primary affiliation, else first; and
        what the rollups count their referrals under (specialty, territory, liaison)."""
        missing = sorted(pk for pk in provider_ids if pk not in self.practice_of)
        columns = "id, specialty, territory_id, liaison_id"
        for pk, specialty, territory_id, liaison_id in _fetch_in(ReferringProvider, columns, "id", missing):
            self.counted_as[pk] = (specialty, territory_id, liaison_id)
        for part in _slices(missing):
            affiliations = (
                ProviderPractice.objects.filter(provider_id__in=part)
                .order_by("provider_id", "-is_primary", "pk")
                .values_list("provider_id", "practice_id")
            )
            for provider_id, practice_id in affiliations:
                self.practice_of.setdefault(provider_id, practice_id)
        for pk in missing:
            self.practice_of.setdefault(pk, None)


def _current_provider(pk: int) -> int:
    seen = set()
    while pk not in seen:
        seen.add(pk)
        merged_into = ReferringProvider.objects.filter(pk=pk).values_list("merged_into_id", flat=True).first()
        if not merged_into:
            return pk
        pk = merged_into
    return pk


def _slices(items: list, size: int = 900) -> Iterator[list]:
    """IN-lists short enough for SQLite's default limit of 999 parameters per statement."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _not_blank(column: str) -> str:
    """The condition of the partial unique indexes on NPI and MRN, written as Django wrote it in the index."""
    return f"NOT ({connection.ops.quote_name(column)} = '')"


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _fetch_in(model, columns: str, column: str, values: list, *, where: str = "") -> list[tuple]:
    """`columns` of the rows of `model` whose `column` is one of `values` (one array on PostgreSQL, 900 at a time
    on SQLite). Raw SQL, because the ORM spends microseconds on each value of an IN list of a chunk's keys."""
    rows: list[tuple] = []
    condition = f"SELECT {columns} FROM {_table(model)} WHERE {where + ' AND ' if where else ''}{column}"  # noqa: S608
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if values:
                cursor.execute(f"{condition} = ANY(%s)", [list(values)])
                rows.extend(cursor.fetchall())
            return rows
        for part in _slices(values):
            cursor.execute(f"{condition} IN ({', '.join(['%s'] * len(part))})", part)
            rows.extend(cursor.fetchall())
    return rows


# Writing ----------------------------------------------------------------------------------------------------


class _Table:
    """Bulk insert of one model's rows: COPY on PostgreSQL, one prepared INSERT run many times on SQLite.

    Django's bulk_create sends at most 999 parameters per statement on SQLite (24 referrals at a time) and
    builds a model instance per row; this takes plain tuples of the given columns and fills every other column
    with its default (timestamps with the run's time), which is what makes a million rows fit in minutes.
    """

    def __init__(self, model, columns: list[str], now: dt.datetime, fixed: dict[str, Any] | None = None) -> None:
        """`columns` come with each row; `fixed` gives this run's value of others; the rest take their default."""
        fixed = fixed or {}
        others = [f for f in model._meta.concrete_fields if f.attname not in columns and not f.primary_key]

        def run_value(f) -> Any:
            if f.attname in fixed:
                return fixed[f.attname]
            return now if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) else f.get_default()

        constants = tuple(f.get_db_prep_save(run_value(f), connection) for f in others)
        self.model = model
        quote = connection.ops.quote_name
        db_columns = [model._meta.get_field(c).column for c in columns + [f.attname for f in others]]
        names = ", ".join(quote(c) for c in db_columns)
        table = quote(model._meta.db_table)
        self.postgresql = connection.vendor == "postgresql"
        if self.postgresql:
            self.constants = constants
            self.sql = f"COPY {table} ({names}) FROM STDIN"
            with connection.cursor() as cursor:
                self.types = column_types(cursor, model._meta.db_table, db_columns)
        else:
            # The other columns hold the same value on every row (defaults, the run's time, who runs it; never the
            # file's data): written into the statement once, so each row binds only its own values. The driver's
            # own placeholders, as Django's SQLite cursor would convert them (the rows go in on the raw connection).
            self.constants = ()
            self.width = len(columns)
            self.values = "(" + ", ".join(["?"] * len(columns) + [_sqlite_literal(c) for c in constants]) + ")"
            self.sql = f"INSERT INTO {table} ({names}) VALUES "  # noqa: S608 (names from the model)
            self.sender: RowsPerStatement | None = None  # made on the first write, on its connection

    def write(self, raw, rows: list[tuple]) -> None:
        """Insert `rows` on the driver's connection `raw` (called from the pipeline's thread, see _Pipeline)."""
        if not rows:
            return
        if self.postgresql:
            constants = self.constants
            with raw.cursor() as cursor, cursor.copy(self.sql) as copy:
                copy.set_types(self.types)
                for row in rows:
                    copy.write_row(row + constants)
            return
        if self.sender is None:  # SQLite: many rows per statement (lib/sqlite_rows.py)
            head = self.sql
            self.sender = RowsPerStatement(raw, self.values, self.width, lambda values: head + values,
                                           SQLITE_ROWS_PER_INSERT)  # fmt: skip
        self.sender.send(rows)


class _Pipeline:
    """Writes one chunk's rows in a second thread while the next chunk is read, checked and matched.

    Reading, decoding, checking and matching a chunk is Python's work; inserting it is the database's (PostgreSQL's
    COPY runs in the server process, SQLite's inserts run with Python's lock released): done one after the other,
    each waits for the other. Here the inserts of chunk n run while chunk n+1 is read and checked, and, on SQLite,
    matched and built too. A failed insert is raised by `wait()` as Django's error (an IntegrityError stays one), in
    the import's transaction, which then rolls back whole as before. The `progress` callback of referral_import
    runs while a chunk may still be going in: it must not use the database.

    What the lookups of chunk n+1 may see of chunk n:
    - PostgreSQL: everything. `wait()` comes before anything else touches the connection, so only one thread uses
      it at a time.
    - SQLite: the driver's connection may serve two threads at once (sqlite3.threadsafety 3: SQLite runs one
      statement at a time, in turn), so chunk n+1 looks up its providers and its idempotency keys while chunk n
      goes in. Neither depends on chunk n: the import never writes a provider, and it looks up only keys that no
      earlier row of the file had. Patients do depend on it (a patient of chunk n may come back in chunk n+1), so
      the writer inserts patients first and `wait_for_patients()` lets the patient lookups go on as soon as they
      are in, while the referrals, events and member rows of chunk n are still being written.
    """

    def __init__(self) -> None:
        connection.ensure_connection()
        self.raw = connection.connection
        self.shared = connection.vendor == "sqlite" and sqlite3.threadsafety == 3
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="referral-import")
        self.pending: Future | None = None
        self.patients_in: threading.Event | None = None

    def submit(self, writes: list[tuple[_Table, list[tuple]]]) -> None:
        """Write `writes` (patients first, when there are any) once the chunk before is in."""
        self.wait()
        self.patients_in = threading.Event()
        self.pending = self.thread.submit(self._write, writes, self.patients_in)

    def _write(self, writes: list[tuple[_Table, list[tuple]]], patients_in: threading.Event) -> None:
        try:
            for table, rows in writes:
                table.write(self.raw, rows)
                if table.model is Patient:
                    patients_in.set()
        finally:
            patients_in.set()  # also when a write fails: wait() raises it

    def wait_for_patients(self) -> None:
        """Block until the chunk being written has its patients in (SQLite), or all of it (PostgreSQL)."""
        if not self.shared:
            self.wait()
        elif self.patients_in is not None:
            self.patients_in.wait()

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            with connection.wrap_database_errors:
                pending.result()

    def close(self, *, quiet: bool = False) -> None:
        """Wait for the last write and stop the thread; the write's error is raised unless `quiet`."""
        try:
            self.wait()
        except Exception:
            if not quiet:
                raise
        finally:
            self.thread.shutdown(wait=True)


def _sqlite_literal(value: Any) -> str:
    """A constant as SQL text (for the driver itself: the statement does not go through Django's cursor)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool | int):
        return str(int(value))
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {value!r}")


def _reserve_ids(model, count: int) -> list[int]:
    """Primary keys for `count` new rows, so referrals can point at patients and events at referrals before insert.

    PostgreSQL hands them out from the table's sequence. On SQLite the table is AUTOINCREMENT, whose counter in
    sqlite_sequence never goes back: moving it forward inside this (write-locked) transaction reserves the range.
    """
    if count == 0:
        return []
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The sequence named once: looked up in the nextval of each row, it cost four times the ids (10 ms a chunk).
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            sequence = cursor.fetchone()[0]
            cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, count])
            return [pk for (pk,) in cursor.fetchall()]
        cursor.execute("UPDATE sqlite_sequence SET seq = seq WHERE name = %s", [table])  # take the write lock
        cursor.execute(f"SELECT MAX(id) FROM {connection.ops.quote_name(table)}")  # noqa: S608 (a model's table)
        highest = cursor.fetchone()[0] or 0
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        sequence = cursor.fetchone()
        start = max(highest, sequence[0] if sequence else 0)
        if sequence:
            cursor.execute("UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [start + count, table])
        else:
            cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, start + count])
    return list(range(start + 1, start + count + 1))


def _large_page_cache() -> contextlib.AbstractContextManager:
    """SQLite keeps 2 MB of pages by default; the indexes a million-row import updates need far more to stay fast."""
    return sqlite_pragma("cache_size", -SQLITE_CACHE_KB)


@contextlib.contextmanager
def _foreign_keys_trusted() -> Iterator[None]:
    """SQLite, for a whole import run in autocommit (the command's and the page's): foreign keys are not looked up
    on each insert (seven lookups per referral, about a third of writing it).

    Every key the import writes was read in its own transaction, which holds SQLite's write lock from its first
    statement (transaction_mode IMMEDIATE): the providers, practices, locations, clinicians and owners it matched,
    and the patient and referral ids it reserved. Nothing can delete them before it commits. Inside a caller's
    transaction SQLite cannot switch the checks off, and they stay on (the tests run that way). The setting comes
    back when the import ends, however it ends. PostgreSQL keeps its checks (see _postgres_settings)."""
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    with connection.constraint_checks_disabled():
        yield


@contextlib.contextmanager
def _postgres_settings() -> Iterator[None]:
    """PostgreSQL, while the file is read: lookups by key use the indexes; foreign keys are checked as each chunk
    is written. Django's defaults come back after (and with the savepoint, when the import fails).

    The tables grow by the million inside one transaction, faster than statistics follow (a fresh table has none),
    and with no statistics the planner reads "name_key = ANY(keys)" as half the table and scans all of it, once per
    chunk. Every query the import makes is a lookup by an indexed key, or a full read of the directory that no
    index serves (and that the setting cannot slow down). Django's foreign keys are deferred to the commit, where
    a million referrals would leave the server nine million checks queued in memory; checked per statement, the
    queue holds one chunk. The checks are the same.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan TO DEFAULT")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # how Django creates its foreign keys


class _DeferredIndexes:
    """For a file about as large as the referrals already held: the secondary indexes of the tables the import fills
    in bulk are dropped when it starts and built again, each in one sorted pass, before it commits; on PostgreSQL
    the foreign keys of those tables too, added back (and so checked, one join each) after the indexes.

    Kept one insert at a time, the 25 indexes of the referral, event and rollup-member tables cost three times what
    the rows themselves do (about 85 us a referral on SQLite); built from the finished tables they cost about 24 us
    a row of the table. The per-source sums' covering index is the same: kept up, it doubled the cost of their
    upserts (2.9M rows for 1M referrals), and built after them it takes a few seconds. PostgreSQL checks each
    foreign key of each row as it goes in (a lookup and a lock on the row referred to): nine per referral, half of
    what copying the referrals cost. Measured at 1M rows on PostgreSQL: the import took 197 s keeping both, 130 s
    with the indexes built at the end, 110 s with the foreign keys checked at the end too. So a first import of an
    EHR's history, or one that doubles the table, is faster this way, and a smaller one is not: below
    `BULK_INDEX_SHARE` of the rows held (or under BULK_INDEX_MIN_ROWS) nothing changes.

    The drop waits for the first row to insert, so a file imported before (every row already there) drops nothing.
    Unique indexes stay (the import reads the idempotency keys and MRNs through them, the sums' upserts find their
    rows by theirs, and they keep their guarantees). Of the patient table's, only the one on name_key alone goes
    (the name search's): the import matches patients by name as it goes, through the one on (name_key, birth_date).
    Each patient it writes was three random index inserts; without that one, writing 700,000 took 5 s less.
    It all happens in the import's transaction: a failed or dry run rolls back with the indexes and keys in place.
    On SQLite, readers on other connections keep seeing the last committed tables, indexes included (WAL). On
    PostgreSQL, dropping an index locks its table against readers and writers until the import commits: a bulk
    import there is an onboarding step (the README says so). The import waits at most POSTGRES_LOCK_WAIT for the
    tables; when others hold them (a long report, say) it keeps every index and key and goes on the slower way.
    """

    TABLES = (Referral, ReferralEvent, RollupMember, SourceRollup)

    def __init__(self, expected_rows: int) -> None:
        self.expected_rows = expected_rows  # the file's line count
        self.decided = False
        self.dropped: list[tuple[str, str]] = []  # (table, the statement that makes the index or key again)

    def drop(self) -> None:
        """Called before the import's first insert (never for a file that holds nothing new); acts once."""
        if self.decided:
            return
        self.decided = True
        if self.expected_rows < BULK_INDEX_MIN_ROWS:
            return
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT MAX(id) FROM {_table(Referral)}")  # noqa: S608 (a model's table)
            held = cursor.fetchone()[0] or 0
        if self.expected_rows < held * BULK_INDEX_SHARE:
            return
        tables = [model._meta.db_table for model in self.TABLES]
        if connection.vendor == "sqlite":
            self._drop_sqlite(tables)
        else:
            self._drop_postgresql(tables)

    def _drop_sqlite(self, tables: list[str]) -> None:
        patients = Patient._meta.db_table  # of its indexes, only the one on name_key alone (see above)
        tables = [*tables, patients]
        placeholders = ", ".join(["%s"] * len(tables))
        query = (
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "  # noqa: S608
            f"AND sql NOT LIKE 'CREATE UNIQUE%%' AND tbl_name IN ({placeholders}) ORDER BY tbl_name, name"
        )
        with connection.cursor() as cursor:
            cursor.execute(query, tables)
            indexes = []
            for name, table, sql in cursor.fetchall():
                if table == patients:
                    cursor.execute(f"PRAGMA index_info({connection.ops.quote_name(name)})")
                    if [column for _seq, _cid, column in cursor.fetchall()] != ["name_key"]:
                        continue
                indexes.append((name, table, sql))
            for name, _owner, _sql in indexes:
                cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
        self.dropped = [(table, sql) for _name, table, sql in indexes]

    def _drop_postgresql(self, tables: list[str]) -> None:
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname, t.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
                "WHERE NOT i.indisunique AND (i.indrelid = ANY(%s::regclass[]) OR (i.indrelid = %s::regclass "
                "AND i.indnatts = 1 AND pg_get_indexdef(i.indexrelid, 1, true) = 'name_key')) ORDER BY 2, 1",
                [tables, Patient._meta.db_table],
            )
            indexes = cursor.fetchall()
            cursor.execute(
                "SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) ORDER BY 2, 1",
                [tables],
            )
            keys = cursor.fetchall()
            try:
                # A savepoint: a lock not had in time undoes only this, the wait allowed included.
                with transaction.atomic():
                    cursor.execute(
                        "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
                        [POSTGRES_LOCK_WAIT],
                    )
                    before = cursor.fetchone()[0]
                    for name, _table, _sql in indexes:
                        cursor.execute(f"DROP INDEX {quote(name)}")
                    for name, table, _definition in keys:
                        cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
                    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [before])
            except OperationalError:  # another session holds a table: keep it all, go on the slower way
                return
        self.dropped = [(table, sql) for _name, table, sql in indexes] + [
            (table, f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}")
            for name, table, definition in keys
        ]

    def holds(self, model) -> bool:
        """PostgreSQL: whether this import holds the model's table alone until it commits (it dropped an index of it,
        which locks the table to the end of the transaction). Asked once the indexes are dropped."""
        return connection.vendor == "postgresql" and any(t == model._meta.db_table for t, _sql in self.dropped)

    def rebuild(self, *models) -> None:
        """Build the dropped indexes of these models' tables again, each table's once its last bulk write is done;
        then add their foreign keys back (PostgreSQL checks every row against them as it does)."""
        tables = {model._meta.db_table for model in models}
        with connection.cursor() as cursor:
            for table, sql in self.dropped:
                if table in tables:
                    cursor.execute(sql)
        self.dropped = [(table, sql) for table, sql in self.dropped if table not in tables]


def _rows_in_file(path: Path, kind: str) -> int:
    """About how many rows a CSV holds (its line count; 0 for a workbook): it decides _DeferredIndexes and the
    reader process."""
    if kind != "csv":
        return 0
    lines = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
    return lines


class _PatientRef:
    __slots__ = ("pk", "mrn", "payer", "existing", "changed")

    def __init__(self, pk: int | None, mrn: str, payer: str, existing: bool) -> None:
        self.pk = pk
        self.mrn = mrn
        self.payer = payer  # the patient's payer as stored (a matched patient keeps theirs): the rollups count it
        self.existing = existing
        self.changed = False


def _checked_chunks(
    rows: Iterator[tuple[int, list]], checker: _Checker, *, parallel: bool, keep_cells: bool
) -> Iterator[list[_Row]]:
    """The file's rows, checked (blank ones left out), CHUNK_ROWS at a time.

    With `parallel`, a forked child process reads and checks the file while this one matches, deduplicates and
    writes the chunk before: reading and checking is about a third of an import's Python work, and the GIL lets
    only one thread do Python work at a time (SQLite's inserts hold it too). The child gets the file and the
    checker as they are at the fork, never touches the database (its copy of the connection is dropped unused),
    runs at most one chunk ahead (the pipe blocks), and ends with os._exit. A reading error in the child
    (ImportRefused naming the row) is raised here, in order, after the chunks before it. The file's own cells
    travel with each row only when `keep_cells` (a rejected-rows file is being written).
    """
    if not parallel:
        while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
            yield _check_chunk(chunk, checker)
        return
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)
    child = context.Process(
        target=_read_in_child, args=(rows, checker, sending, keep_cells), name="referral-import-reader"
    )
    child.start()
    sending.close()
    try:
        while True:
            kind, payload = receiving.recv()
            if kind == "rows":
                yield payload
            elif kind == "error":
                raise payload
            else:
                return
    except EOFError:
        raise ImportRefused("The process reading the file stopped before the end of the file.") from None
    finally:
        receiving.close()
        if child.is_alive():
            child.terminate()
        child.join()


def _check_chunk(numbered: list[tuple[int, list]], checker: _Checker) -> list[_Row]:
    return [row for row in (checker.check(number, values) for number, values in numbered) if row is not None]


def _read_in_child(rows: Iterator[tuple[int, list]], checker: _Checker, sending, keep_cells: bool) -> None:
    connection.connection = None  # the parent's: never used, never closed here
    try:
        while chunk := list(itertools.islice(rows, CHUNK_ROWS)):
            checked = _check_chunk(chunk, checker)
            if not keep_cells:
                for row in checked:
                    row.values = None
            sending.send(("rows", checked))
        sending.send(("end", None))
    except ImportRefused as exc:
        sending.send(("error", exc))
    except BaseException as exc:  # a bug, not the file: named, without the cells that may hold patient data
        sending.send(("error", ImportRefused(f"Reading the file failed ({type(exc).__name__}).")))
    finally:
        sending.close()
        os._exit(0)


class _Run:
    """One file's import, chunk by chunk, inside the caller's transaction."""

    def __init__(
        self,
        report: ImportReport,
        checker: _Checker,
        *,
        by,
        by_label: str,
        rejected,
        pipeline: _Pipeline,
        deferred: _DeferredIndexes,
    ) -> None:
        self.report = report
        self.deferred = deferred
        self.pipeline = pipeline
        self.writes: list[tuple[_Table, list[tuple]]] = []
        self.checker = checker
        self.now = checker.now
        self.by = by if getattr(by, "pk", None) else None
        self.by_label = by_label or (by.get_username() if self.by else "import")
        self.rejected = rejected
        self.directory = _Directory(report)
        self.levels = ServiceLevels.current()
        calendar = self.levels.calendar()
        self.levels.calendar = lambda: calendar  # one Holiday query per run, not one per due time
        coordinator = by if self.by and getattr(by, "role", "") == "coordinator" else None
        self.coordinator = coordinator or sla.owner_for(Referral(state=State.RECEIVED), levels=self.levels)
        self.clinicians = {c.pk: c for c in Clinician.objects.select_related("user")}
        self.due_cache: dict[tuple, dt.datetime | None] = {}
        self.draft = Referral()
        self.owner_cache: dict[tuple, int | None] = {}
        self.keys_seen: set[str] = set()
        self.last_referral: dict[type, dict[int, dt.date]] = {ReferringProvider: {}, ReferringPractice: {}}
        self.patients = _Table(
            Patient,
            ["id", "first_name", "last_name", "birth_date", "sex", "phone", "mrn", "payer", "member_id", "name_key"],
            self.now,
        )
        self.referrals = _Table(
            Referral,
            ["id", "patient_id", "referring_provider_id", "referring_practice_id", "location_id", "clinician_id",
             "reason", "diagnosis_codes", "urgency", "received_at", "idempotency_key", "external_id", "state",
             "owner_id", "due_at", "decline_reason", "lost_reason", "last_event_at"],
            self.now,
            fixed={"channel": Channel.IMPORT, "coordinator_id": self.coordinator.pk if self.coordinator else None},
        )  # fmt: skip
        self.events = _Table(
            ReferralEvent,
            ["referral_id", "at", "to_state", "data"],
            self.now,
            fixed={"by_id": self.by.pk if self.by else None, "by_label": self.by_label, "action": "import"},
        )
        # The rollups' member row of each referral, written with it; rollup_bulk.fold adds them up at the end.
        self.members = _Table(RollupMember, list(rollup_bulk.MEMBER_COLUMNS), self.now)
        self.member_rows = rollup_bulk.ImportMembers()
        # The per-source sums are counted from the member rows as they go by.
        self.tally = rollup_bulk.SourceTally()
        self.referral_ids: list[list[int]] = []  # the ids this run reserved and wrote, as [first, last] ranges
        ops = connection.ops
        self.db_datetime = ops.adapt_datetimefield_value
        self.db_date = ops.adapt_datefield_value

    def chunk(self, rows: list[_Row]) -> None:
        """One chunk of checked rows (see _checked_chunks): matched, deduplicated and handed to the writer."""
        report, checker, pipeline = self.report, self.checker, self.pipeline
        report.rows += len(rows)
        if not pipeline.shared:
            pipeline.wait()  # the previous chunk is in: from here on this chunk may read and write
        self.directory.resolve([row for row in rows if row.findable], checker)
        valid = []
        for row in rows:
            if row.errors:
                self._reject(row)
            else:
                valid.append(row)
        fresh = self._not_yet_imported(valid)
        if fresh and not self.deferred.decided:
            pipeline.wait()  # nothing else runs on the connection beside a DROP INDEX
            self.deferred.drop()  # once, before the first insert: a file imported before drops nothing
            self.tally.exclusive = self.deferred.holds(SourceRollup)
        pipeline.wait_for_patients()  # a patient of the chunk before may be one of this chunk's
        patient_ids = self._patients(fresh)
        self._referrals(fresh, patient_ids)
        self.pipeline.submit(self.writes)
        self.writes = []
        if self.tally.full:
            pipeline.wait()  # the tally writes on the connection: its upserts take their turn
            self.tally.write()

    def _reject(self, row: _Row) -> None:
        self.report.rejected += 1
        for message in row.errors:
            self.report.error(message)
        if self.rejected is not None:
            self.rejected.write(row)

    def _not_yet_imported(self, rows: list[_Row]) -> list[_Row]:
        # Only keys no earlier row of the file had: the database holds them from before this run, whichever of this
        # run's rows are in yet (see _Pipeline).
        keys_seen = self.keys_seen
        keys = [row.key for row in rows if row.key not in keys_seen]
        found = _fetch_in(Referral, "idempotency_key", "idempotency_key", keys)
        existing = {key for (key,) in found}
        fresh = []
        for row in rows:
            if row.key in existing:
                self.report.already_imported += 1
            elif row.key in self.keys_seen:
                self.report.repeated_in_file += 1
            else:
                self.keys_seen.add(row.key)
                fresh.append(row)
        return fresh

    def _patients(self, rows: list[_Row]) -> list[_PatientRef]:
        """Each row's patient, by the rules of services.patient_resolve; new ones inserted in one go."""
        by_mrn: dict[str, _PatientRef] = {}
        by_name: dict[tuple[str, dt.date], list[_PatientRef]] = {}
        mrns = sorted({row.mrn for row in rows if row.mrn})
        keys = [row.name_key for row in rows]
        name_keys = sorted(set(keys))
        births = {row.birth_date.isoformat() for row in rows}
        found: dict[int, _PatientRef] = {}
        by_mrn_rows = _fetch_in(Patient, "id, mrn, payer", "mrn", mrns, where=_not_blank("mrn"))  # as the partial index
        for pk, mrn, payer in by_mrn_rows:
            by_mrn[mrn] = found.setdefault(pk, _PatientRef(pk, mrn, payer, True))
        # Dates as ISO text, compared as such: the same on both databases, and no date parsing per candidate.
        candidates = _fetch_in(Patient, "id, mrn, payer, name_key, CAST(birth_date AS TEXT)", "name_key", name_keys)
        for pk, mrn, payer, name_key, birth_date in candidates:
            if birth_date in births:
                ref = found.setdefault(pk, _PatientRef(pk, mrn, payer, True))
                by_name.setdefault((name_key, birth_date), []).append(ref)
        result: list[_PatientRef] = []
        created: list[tuple[_Row, _PatientRef, str]] = []
        for row, name_key in zip(rows, keys, strict=True):
            mrn = row.mrn
            ref = by_mrn.get(mrn) if mrn else None
            if ref is None:
                name = (name_key, row.birth_date.isoformat())
                same = by_name.get(name)
                exact = [p for p in same if not mrn or not p.mrn] if same else same
                if exact and len(exact) == 1:
                    ref = exact[0]
                    if mrn and not ref.mrn:
                        ref.mrn, ref.changed = mrn, ref.existing
                        by_mrn[mrn] = ref
                else:
                    ref = _PatientRef(None, mrn, row.payer, False)
                    created.append((row, ref, name_key))
                    if same is None:
                        by_name[name] = [ref]
                    else:
                        same.append(ref)
                    if mrn:
                        by_mrn[mrn] = ref
            if ref.existing:
                self.report.patients_matched += 1
            result.append(ref)
        self.report.patients_created += len(created)
        for (_row, ref, _key), pk in zip(created, _reserve_ids(Patient, len(created)), strict=True):
            ref.pk = pk
        db_date = self.db_date
        self.writes.append(
            (self.patients, [
                (ref.pk, row.first_name, row.last_name, db_date(row.birth_date), row.sex, row.phone, ref.mrn,
                 row.payer, row.member_id, name_key)
                for row, ref, name_key in created
            ])
        )  # fmt: skip
        filled = [ref for ref in found.values() if ref.changed]
        if filled:
            sql = (
                f"UPDATE {_table(Patient)} SET mrn = %s, version = version + 1, "  # noqa: S608
                "updated_at = %s WHERE id = %s"
            )
            with connection.cursor() as cursor:
                cursor.executemany(
                    sql,
                    [(ref.mrn, self.db_datetime(self.now), ref.pk) for ref in filled],
                )
        return result

    def _referrals(self, rows: list[_Row], patients: list[_PatientRef]) -> None:
        report, practice_of = self.report, self.directory.practice_of
        provider_last, practice_last = self.last_referral[ReferringProvider], self.last_referral[ReferringPractice]
        counted_as, member = self.directory.counted_as, self.member_rows.row
        referral_rows, event_rows, member_rows = [], [], []
        ids = _reserve_ids(Referral, len(rows))
        for row, patient, pk in zip(rows, patients, ids, strict=True):
            state = row.state
            received, day, month = row.received
            practice_id = practice_of.get(row.provider_id)
            lost_reason = LostReason.OTHER if state == State.LOST else ""
            referral_rows.append(
                (pk, patient.pk, row.provider_id, practice_id, row.location_id, row.clinician_id, row.reason,
                 row.codes_json, row.urgency, received, row.key, row.external_id, state,
                 self._owner(state, row.clinician_id), self._due(row),
                 DECLINED_NOTE if state == State.DECLINED else "", lost_reason, received)
            )  # fmt: skip
            data = f'{{"channel": "import", "row": {row.number}}}'
            event_rows.append((pk, received, state, data))
            specialty, territory_id, liaison_id = counted_as[row.provider_id]
            member_rows.append(
                member(pk, month, state, lost_reason, row.provider_id, practice_id, patient.payer, row.location_id,
                       row.clinician_id, specialty, territory_id, liaison_id, row.urgency)
            )  # fmt: skip
            if provider_last.get(row.provider_id, dt.date.min) < day:
                provider_last[row.provider_id] = day
            if practice_id and practice_last.get(practice_id, dt.date.min) < day:
                practice_last[practice_id] = day
        report.states.update(row.state for row in rows)
        self.writes += [(self.referrals, referral_rows), (self.events, event_rows), (self.members, member_rows)]
        self.tally.add(member_rows)
        rollup_bulk.id_runs(ids, self.referral_ids)
        report.created += len(referral_rows)

    def _due(self, row: _Row) -> Any:
        key = (row.state, row.received_at, row.urgency)
        if key not in self.due_cache:
            if len(self.due_cache) > 100_000:
                self.due_cache.clear()
            draft = self.draft  # one unsaved referral, reused: building a model instance per value costs more
            draft.state, draft.received_at, draft.urgency = row.state, row.received_at, row.urgency
            self.due_cache[key] = self.db_datetime(sla.due_at(draft, now=self.now, levels=self.levels))
        return self.due_cache[key]

    def _owner(self, state: str, clinician_id: int | None) -> int | None:
        key = (state, clinician_id)
        if key not in self.owner_cache:
            draft = Referral(state=state, coordinator=self.coordinator, clinician=self.clinicians.get(clinician_id))
            owner = sla.owner_for(draft, levels=self.levels)
            self.owner_cache[key] = owner.pk if owner else None
        return self.owner_cache[key]

    def finish(self) -> None:
        """Each source's last-referral date, as services._touch_source keeps it (moved forward, never back)."""
        self.pipeline.wait()
        later = "(last_referral_on IS NULL OR last_referral_on < {day})"
        with connection.cursor() as cursor:
            for model, days in self.last_referral.items():
                if not days:
                    continue
                table = _table(model)
                if connection.vendor == "postgresql":  # one statement rather than one round trip per source
                    sql = (
                        f"UPDATE {table} SET last_referral_on = v.day "  # noqa: S608
                        "FROM unnest(%s::bigint[], %s::date[]) AS v(id, day) "
                        f"WHERE {table}.id = v.id AND {later.format(day='v.day')}"
                    )
                    cursor.execute(sql, [list(days), list(days.values())])
                else:
                    sql = (
                        f"UPDATE {table} SET last_referral_on = %s "  # noqa: S608
                        f"WHERE id = %s AND {later.format(day='%s')}"
                    )
                    cursor.executemany(
                        sql,
                        [(self.db_date(day), pk, self.db_date(day)) for pk, day in days.items()],
                    )
        self.report.providers_to_review = list(self.directory.review.values())
        # The rows are all in: what matched them is let go now rather than held through the indexes and sums (a
        # million keys seen are some 160 MB).
        self.keys_seen = set()
        self.due_cache, self.owner_cache = {}, {}


def _lap(report: ImportReport, name: str, since: float) -> float:
    """Record the seconds since `since` as the phase `name` of the run; the time now, for the next phase."""
    now = time.perf_counter()
    report.phases[name] = now - since
    return now


class _RejectedWriter:
    """The rejected rows as CSV (the file's own columns, then its row number and errors), neutralized by csvsafe."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.handle = path.open("w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.handle, lineterminator="\r\n")
        self.width = len(header)
        self.writer.writerow([neutralize(h) for h in [*header, "import_row", "import_errors"]])

    def write(self, row: _Row) -> None:
        cells = [_as_text(v) for v in row.values]
        cells = (cells + [""] * self.width)[: self.width]
        self.writer.writerow([neutralize(c) for c in [*cells, row.number, "; ".join(row.errors)]])

    def close(self) -> None:
        self.handle.close()


# The entry point ---------------------------------------------------------------------------------------------


def referral_import(
    *,
    path: Path | str,
    mapping: dict[str, str] | None = None,
    columns: list[str | None] | None = None,
    date_format: str | None = None,
    dry_run: bool = False,
    accept_valid: bool = False,
    rejected_path: Path | str | None = None,
    by=None,
    by_label: str = "",
    max_bytes: int | None = None,
    file_name: str = "",
    progress: Callable[[ImportReport], None] | None = None,
    reader_process: bool = False,
) -> ImportReport:
    """Import one file of referrals (see the module docstring for every rule); ImportRefused when it cannot be.

    `mapping` maps file columns to fields by name (the command's --map); `columns` gives the field of each column
    by position instead (the page). Rows with errors roll the whole file back unless `accept_valid`; the rejected
    rows go to `rejected_path` when given. `dry_run` imports and rolls back, for a report of what would happen.
    `reader_process` lets a large CSV be read and checked in a child process (the command's choice: a web or task
    worker keeps to one process).
    """
    path = Path(path)
    kind = file_kind(path, max_bytes=max_bytes)
    date_format = _check_date_format(date_format)
    report = ImportReport(file_name=file_name or path.name, kind=kind, dry_run=dry_run, accept_valid=accept_valid)
    started = time.perf_counter()
    with _open_rows(path, kind) as rows:
        header = _header(rows)
        if columns is None:
            fields = column_fields(header, mapping)
        else:
            fields = (list(columns) + [None] * len(header))[: len(header)]
            check_fields(header, fields)
        report.ignored_columns = [name for name, f in zip(header, fields, strict=True) if f is None and name]
        rejected = _RejectedWriter(Path(rejected_path), header) if rejected_path else None
        try:
            with _foreign_keys_trusted(), _large_page_cache(), transaction.atomic():
                lines = _rows_in_file(path, kind)
                deferred = _DeferredIndexes(lines)
                with _postgres_settings():
                    checker = _Checker(header, fields, date_format, timezone.now(), kind)
                    pipeline = _Pipeline()
                    try:
                        run = _Run(report, checker, by=by, by_label=by_label, rejected=rejected, pipeline=pipeline,
                                   deferred=deferred)  # fmt: skip
                        parallel = reader_process and lines >= READER_PROCESS_MIN_ROWS
                        for chunk in _checked_chunks(rows, checker, parallel=parallel, keep_cells=rejected is not None):
                            run.chunk(chunk)
                            if progress is not None:
                                progress(report)
                        if report.rows == 0:
                            raise ImportRefused("The file has a header row but no referrals under it.")
                        run.finish()
                    except BaseException:
                        pipeline.close(quiet=True)  # the first error is the one to report
                        raise
                    pipeline.close()
                lap = _lap(report, "rows read, checked and written", started)
                report.committed = not dry_run and (report.error_count == 0 or accept_valid)
                if report.committed:
                    # One block: growing SQLite's page cache back in between left the freed pages unused but held
                    # (peak 970 MB instead of 630 MB at 1M rows), and the sums' writes are no slower with it small.
                    with parallel_sorts():
                        if deferred.dropped:
                            deferred.rebuild(Patient, Referral, ReferralEvent, RollupMember)
                            lap = _lap(report, "indexes built", lap)
                        release_freed_memory()  # the large cache's pages, written by now: room for the sums' counting
                        rollup_bulk.fold(run.referral_ids, run.tally)  # the dashboard's sums of the rows written
                        deferred.rebuild(SourceRollup)  # the per-source sums' own indexes, after their upserts
                        lap = _lap(report, "dashboard sums", lap)
                    audit_record(actor=by, actor_label=by_label, action="referral.import", detail=report.audit_detail())
                else:
                    transaction.set_rollback(True)
            _lap(report, "committed" if report.committed else "rolled back", lap)
        except IntegrityError as exc:
            raise ImportRefused(
                f"The database refused the import ({exc}); another import of the same file may be running. "
                "Nothing was imported."
            ) from None
        finally:
            if rejected is not None:
                rejected.close()
                report.rejected_path = str(rejected_path)
    report.seconds = time.perf_counter() - started
    return report
