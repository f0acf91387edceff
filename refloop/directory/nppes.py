"""Importing the CMS NPPES data-dissemination file into the directory (npi_api.py shares the upsert).

The monthly file is about 9 million rows in 330 quoted ISO-8859-1 columns (10.7 GB), so it is never loaded:
DuckDB's parallel CSV reader scans it, filters it in SQL and hands over only the ~80 columns used, a few
thousand matching rows at a time, which are upserted batch by batch (existing rows looked up by NPI per
batch, then one executemany INSERT / bulk_update). Memory stays bounded whatever the file size.

All database writes of one run happen in one transaction: a refused file, a crash or Ctrl-C mid-run leaves
the directory as it was. Rows that cannot be imported are reported with their physical line number (the
header is line 1): lines the CSV reader cannot split come from DuckDB's reject table; rows rejected for their
content (a bad NPI, a control character, ...) are found again afterwards by a line-numbered scan, which
costs one more pass over the file but only when such rows exist.

The import owns the registry's facts (PROVIDER_IMPORTED_FIELDS, PRACTICE_IMPORTED_FIELDS, a provider's
taxonomy rows and a practice's primary location); a field named in a record's `manual_fields` was edited
by a person and is never overwritten. A practice whose `manual_fields` holds "location" keeps its primary
location as staff left it.
"""

from __future__ import annotations

import csv
import functools
import json
import re
import tempfile
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import duckdb
from django.db import connection, transaction
from django.utils import timezone

from refloop.accounts.audit import audit_record
from refloop.directory import taxonomy
from refloop.directory.models import (
    PracticeLocation,
    ProviderTaxonomy,
    ReferringPractice,
    ReferringProvider,
    Source,
)
from refloop.directory.services import (
    PRACTICE_IMPORTED_FIELDS,
    PROVIDER_IMPORTED_FIELDS,
    practice_search_text,
    provider_search_text,
)
from refloop.lib.npi import npi_problem

ENCODING = "iso-8859-1"
MAX_REJECTS_SHOWN = 50
BATCH_SIZE = 5000
# A practice whose manual_fields holds this keeps its primary location as staff left it.
LOCATION_MANUAL_KEY = "location"
LOCATION_IMPORTED_FIELDS = ("address_line1", "address_line2", "city", "state", "postal_code", "phone", "fax")
_TAXONOMY_FACTS = ("description", "is_primary", "license_number", "license_state")
# DuckDB stores one reject record per bad column; past this many the file is not an NPPES file.
REJECTS_LIMIT = 200_000

NPI = "NPI"
ENTITY = "Entity Type Code"
ORGANIZATION = "Provider Organization Name (Legal Business Name)"
LAST = "Provider Last Name (Legal Name)"
FIRST = "Provider First Name"
MIDDLE = "Provider Middle Name"
PREFIX = "Provider Name Prefix Text"
SUFFIX = "Provider Name Suffix Text"
CREDENTIAL = "Provider Credential Text"
LINE1 = "Provider First Line Business Practice Location Address"
LINE2 = "Provider Second Line Business Practice Location Address"
CITY = "Provider Business Practice Location Address City Name"
STATE = "Provider Business Practice Location Address State Name"
POSTAL = "Provider Business Practice Location Address Postal Code"
COUNTRY = "Provider Business Practice Location Address Country Code (If outside U.S.)"
PHONE = "Provider Business Practice Location Address Telephone Number"
FAX = "Provider Business Practice Location Address Fax Number"
DEACTIVATED = "NPI Deactivation Date"
REACTIVATED = "NPI Reactivation Date"
TAXONOMY_GROUPS = tuple(
    (
        f"Healthcare Provider Taxonomy Code_{n}",
        f"Provider License Number_{n}",
        f"Provider License Number State Code_{n}",
        f"Healthcare Provider Primary Taxonomy Switch_{n}",
    )
    for n in range(1, 16)
)
NEEDED_COLUMNS: tuple[str, ...] = (
    NPI, ENTITY, ORGANIZATION, LAST, FIRST, MIDDLE, PREFIX, SUFFIX, CREDENTIAL,
    LINE1, LINE2, CITY, STATE, POSTAL, COUNTRY, PHONE, FAX, DEACTIVATED, REACTIVATED,
    *(name for group in TAXONOMY_GROUPS for name in group),
)  # fmt: skip
_AT = {name: index for index, name in enumerate(NEEDED_COLUMNS)}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_US_STATE = re.compile(r"[A-Z]{2}")
_PROVIDER_FIELDS = set(PROVIDER_IMPORTED_FIELDS)
_PRACTICE_FIELDS = set(PRACTICE_IMPORTED_FIELDS)


class ImportRefused(Exception):
    """The whole input is unusable (wrong header, wrong encoding, not a file): nothing was written."""


class RowProblem(Exception):
    """One row cannot be imported; the message says why, without the row's names."""


@dataclass(frozen=True)
class TaxonomyFacts:
    code: str
    description: str
    is_primary: bool
    license_number: str = ""
    license_state: str = ""


@dataclass
class RegistryEntry:
    """One NPI as the registry states it, checked and in model field names, ready to upsert.

    `kind` "deactivation" is what the monthly file holds for a deactivated NPI: the number and the date only,
    so only the deactivation fields of a record the directory already has are touched.
    """

    npi: str
    kind: Literal["provider", "practice", "deactivation"]
    fields: dict[str, Any]
    location: dict[str, str] = field(default_factory=dict)
    taxonomies: list[TaxonomyFacts] = field(default_factory=list)


@dataclass
class RejectedRow:
    where: str
    reason: str
    order: int = 0

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class ImportReport:
    """What one run did. `matched` counts rows that passed the filters, rejected ones included."""

    source: str
    read: int = 0
    matched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    rejected: int = 0
    rejects: list[RejectedRow] = field(default_factory=list)  # the first MAX_REJECTS_SHOWN, in order

    def counts(self) -> dict[str, int]:
        names = ("read", "matched", "created", "updated", "unchanged", "deactivated", "rejected")
        return {name: getattr(self, name) for name in names}


@dataclass(frozen=True)
class ImportProgress:
    fraction: float
    rows_read: int  # estimated from the share of the file scanned
    matched: int
    seconds: float


ProgressCallback = Callable[[ImportProgress], None]


# ---- checking values (shared with npi_api.py) ----


def clean(value: Any) -> str:
    return "" if value is None else str(value).strip()


def format_phone(value: str) -> str:
    """(614) 555-0100 for a plain US number, whichever way it was written; anything else as it came."""
    digits = re.sub(r"\D", "", value)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    if len(digits) == 10 and re.fullmatch(r"[\d\s().+-]+", value):
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return value


def format_postal_code(value: str) -> str:
    if len(value) == 9 and value.isdigit():
        return f"{value[:5]}-{value[5:]}"
    return value


def us_state(value: str, country: str, *, npi: str) -> str:
    """The two-letter state of a US address; the model keeps US states only, so foreign ones stay blank."""
    if country not in ("", "US"):
        return ""
    value = value.upper()
    if value and not _US_STATE.fullmatch(value):
        raise RowProblem(f"NPI {npi}: the practice-location state {value[:12]!r} is not a two-letter code")
    return value


def check_npi(npi: str) -> None:
    problem = npi_problem(npi)
    if problem:
        shown = npi[:20] if npi else "(blank)"
        raise RowProblem(f"NPI {shown}: {problem}")


def check_control_characters(values: dict[str, str], *, npi: str) -> None:
    if not _CONTROL.search("".join(values.values())):
        return
    for name, value in values.items():
        if _CONTROL.search(value):
            raise RowProblem(f"NPI {npi[:20] or '(blank)'}: {name!r} holds a control character")


def dedupe_taxonomies(facts: list[TaxonomyFacts]) -> list[TaxonomyFacts]:
    """One row per code (a code repeats once per state licence), exactly one of them primary."""
    if len({f.code for f in facts}) == len(facts) and sum(f.is_primary for f in facts) == 1:
        return facts
    by_code: dict[str, TaxonomyFacts] = {}
    for fact in facts:
        kept = by_code.get(fact.code)
        if kept is None or (fact.is_primary and not kept.is_primary):
            by_code[fact.code] = fact
    kept_facts = list(by_code.values())
    primary = next((f for f in kept_facts if f.is_primary), kept_facts[0] if kept_facts else None)
    return [
        TaxonomyFacts(f.code, f.description, f is primary, f.license_number, f.license_state)
        for f in kept_facts
    ]


@functools.cache
def _max_lengths(model) -> dict[str, int]:
    return {f.attname: f.max_length for f in model._meta.concrete_fields if getattr(f, "max_length", None)}


def check_lengths(entry: RegistryEntry) -> None:
    """Refuse a value longer than its column: PostgreSQL would reject the whole batch, SQLite keep it."""
    model = ReferringProvider if entry.kind == "provider" else ReferringPractice
    checks = [(_max_lengths(model), entry.fields), (_max_lengths(PracticeLocation), entry.location)]
    for fact in entry.taxonomies:
        values = {
            "code": fact.code,
            "license_number": fact.license_number,
            "license_state": fact.license_state,
        }
        checks.append((_max_lengths(ProviderTaxonomy), values))
    for limits, values in checks:
        for name, value in values.items():
            limit = limits.get(name)
            if limit is not None and isinstance(value, str) and len(value) > limit:
                raise RowProblem(f"NPI {entry.npi}: {name} has {len(value)} characters; at most {limit} fit")


def deactivation_fields(deactivated: date | None, reactivated: date | None) -> dict[str, Any]:
    """Deactivated unless a reactivation date at or after the deactivation date says otherwise."""
    current = deactivated if deactivated and not (reactivated and reactivated >= deactivated) else None
    return {"deactivated_on": current, "is_active": current is None}


def provider_entry(
    *, npi: str, names: dict[str, str], address: dict[str, str], taxonomies: list[TaxonomyFacts], status: dict
) -> RegistryEntry:
    facts = dedupe_taxonomies(taxonomies)
    primary = next((f for f in facts if f.is_primary), None)
    fields = {
        **names,
        "taxonomy_code": primary.code if primary else "",
        "specialty": (primary.description if primary else "")[:150],
        **address,
        **status,
    }
    if not fields["last_name"]:
        raise RowProblem(f"NPI {npi}: an individual without a last name")
    entry = RegistryEntry(npi=npi, kind="provider", fields=fields, taxonomies=facts)
    assert fields.keys() == _PROVIDER_FIELDS
    check_lengths(entry)
    return entry


def practice_entry(*, npi: str, name: str, address: dict[str, str], status: dict) -> RegistryEntry:
    if not name:
        raise RowProblem(f"NPI {npi}: an organization without a name")
    fields = {"name": name, "phone": address["phone"], "fax": address["fax"], **status}
    entry = RegistryEntry(npi=npi, kind="practice", fields=fields, location=address)
    assert fields.keys() == _PRACTICE_FIELDS
    check_lengths(entry)
    return entry


# ---- the NPPES file ----


def _file_date(value: str, column: str, npi: str) -> date | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%m/%d/%Y").date()
    except ValueError:
        raise RowProblem(f"NPI {npi}: {column!r} is {value[:12]!r}, not a MM/DD/YYYY date") from None


def entry_from_row(values: Sequence[Any]) -> RegistryEntry:
    """One data row (the NEEDED_COLUMNS, in order) as a RegistryEntry; RowProblem says why it cannot be."""
    raw = dict(zip(NEEDED_COLUMNS, [value.strip() if value else "" for value in values], strict=True))
    npi = raw[NPI]
    check_control_characters(raw, npi=npi)
    check_npi(npi)
    status = deactivation_fields(
        _file_date(raw[DEACTIVATED], DEACTIVATED, npi), _file_date(raw[REACTIVATED], REACTIVATED, npi)
    )
    entity = raw[ENTITY]
    if entity == "" and raw[DEACTIVATED]:
        return RegistryEntry(npi=npi, kind="deactivation", fields=status)
    if entity not in ("1", "2"):
        raise RowProblem(f"NPI {npi}: entity type code {entity[:5]!r} is neither 1 (individual) nor 2")
    address = {
        "address_line1": raw[LINE1],
        "address_line2": raw[LINE2],
        "city": raw[CITY],
        "state": us_state(raw[STATE], raw[COUNTRY].upper(), npi=npi),
        "postal_code": format_postal_code(raw[POSTAL]),
        "phone": format_phone(raw[PHONE]),
        "fax": format_phone(raw[FAX]),
    }
    if entity == "2":
        return practice_entry(npi=npi, name=raw[ORGANIZATION], address=address, status=status)
    names = {
        "first_name": raw[FIRST], "middle_name": raw[MIDDLE], "last_name": raw[LAST],
        "name_prefix": raw[PREFIX], "name_suffix": raw[SUFFIX], "credentials": raw[CREDENTIAL],
    }  # fmt: skip
    facts = [
        TaxonomyFacts(
            code=raw[code].upper(),
            description=taxonomy.describe(raw[code])[:200],
            is_primary=raw[switch].upper() == "Y",
            license_number=raw[number],
            license_state=raw[state].upper(),
        )
        for code, number, state, switch in TAXONOMY_GROUPS
        if raw[code]
    ]
    return provider_entry(npi=npi, names=names, address=address, taxonomies=facts, status=status)


@dataclass(frozen=True)
class FileShape:
    header: list[str]
    size: int
    mean_line_bytes: float


def check_file(path: Path) -> FileShape:
    """Refuse, in one sentence, anything that is not an NPPES data file before a row is read."""
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    with path.open("rb") as handle:
        sample = handle.read(1 << 20)
    if not sample:
        raise ImportRefused(f"{path.name}: the file is empty")
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportRefused(f"{path.name} is UTF-16 text; NPPES files are ISO-8859-1 (Latin-1) CSV")
    if sample.startswith(b"\xef\xbb\xbf"):
        raise ImportRefused(
            f"{path.name} is UTF-8 text (it starts with a BOM); NPPES files are ISO-8859-1 CSV"
        )
    if sample.startswith((b"PK\x03\x04", b"\x1f\x8b")):
        raise ImportRefused(f"{path.name} is a compressed archive: unzip it and import npidata_pfile_*.csv")
    first, newline, _ = sample.partition(b"\n")
    if not newline and len(sample) == 1 << 20:
        raise ImportRefused(f"{path.name} has no line break in its first MiB: it is not a CSV file")
    if b"\x00" in first:
        raise ImportRefused(
            f"{path.name} is binary or UTF-16 (its first line holds NUL bytes), not NPPES CSV"
        )
    if _looks_utf8(sample):
        raise ImportRefused(
            f"{path.name} is UTF-8 encoded; NPPES files are ISO-8859-1 (convert: iconv -f UTF-8 -t LATIN1)"
        )
    header = next(csv.reader([first.decode(ENCODING).rstrip("\r")]), [])
    if len(set(header)) != len(header):
        raise ImportRefused(f"{path.name}: the header names a column twice; is this an NPPES data file?")
    missing = [name for name in NEEDED_COLUMNS if name not in header]
    if missing:
        shown = ", ".join(repr(name) for name in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise ImportRefused(f"{path.name}: the header lacks required NPPES columns: {shown}{more}")
    lines = max(sample.count(b"\n"), 1)
    return FileShape(header=header, size=path.stat().st_size, mean_line_bytes=len(sample) / lines)


def _looks_utf8(sample: bytes) -> bool:
    if sample.isascii():
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start >= len(sample) - 3 and error.reason == "unexpected end of data"
    return True


def _clean_filters(
    states: Iterable[str], zip_prefixes: Iterable[str], taxonomies: Iterable[str]
) -> tuple[list[str], list[str], list[str]]:
    states = sorted({s.strip().upper() for s in states if s.strip()})
    zips = sorted({z.strip() for z in zip_prefixes if z.strip()})
    codes = sorted({t.strip().upper() for t in taxonomies if t.strip()})
    for state in states:
        if not _US_STATE.fullmatch(state):
            raise ImportRefused(f"--state {state}: use a two-letter state code, e.g. OH")
    for prefix in zips:
        if not (prefix.isdigit() and 1 <= len(prefix) <= 9):
            raise ImportRefused(f"--zip-prefix {prefix}: use the first digits of a ZIP code, e.g. 432")
    for code in codes:
        if not (code.isalnum() and len(code) <= 10):
            raise ImportRefused(f"--taxonomy {code}: use a NUCC taxonomy code or its first characters")
    return states, zips, codes


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _reader(columns: str) -> str:
    return (
        f"read_csv($path, columns={columns}, header=true, auto_detect=false, delim=',', quote='\"', "
        f"escape='\"', encoding='latin-1', store_rejects=true, "
        f"rejects_limit={REJECTS_LIMIT})"
    )


def _scan_query(states: list[str], zips: list[str], codes: list[str]) -> tuple[str, dict[str, Any]]:
    """The one scan: rows passing the filters, plus bare deactivations of NPIs the directory holds."""
    params: dict[str, Any] = {}
    conditions = []
    if states:
        params["states"] = states
        conditions.append(f"list_contains($states::VARCHAR[], {_q(STATE)})")
    if zips:
        params |= {f"zip{i}": prefix for i, prefix in enumerate(zips)}
        conditions.append(" OR ".join(f"starts_with({_q(POSTAL)}, $zip{i})" for i in range(len(zips))))
    if codes:
        params |= {f"code{i}": code for i, code in enumerate(codes)}
        conditions.append(
            " OR ".join(
                f"starts_with(upper({_q(group[0])}), $code{i})"
                for i in range(len(codes))
                for group in TAXONOMY_GROUPS
            )
        )
    bare = f"coalesce({_q(ENTITY)}, '') = '' AND coalesce({_q(DEACTIVATED)}, '') <> ''"
    wanted = " AND ".join(f"({c})" for c in conditions) or "true"
    selected = ", ".join(_q(name) for name in NEEDED_COLUMNS)
    # Only the module's own column names are formatted into the SQL; every filter value is a parameter.
    sql = (
        f"SELECT {selected} FROM {_reader('$columns')} "  # noqa: S608
        f"WHERE (NOT ({bare}) AND {wanted}) OR ({bare} AND {_q(NPI)} IN (SELECT npi FROM known_npi))"
    )
    return sql, params


@contextmanager
def _duckdb() -> Iterator[duckdb.DuckDBPyConnection]:
    with tempfile.TemporaryDirectory(prefix="refloop-nppes-") as spill:
        connection = duckdb.connect(config={"memory_limit": "512MB", "temp_directory": spill})
        try:
            connection.execute("SET enable_progress_bar = true")
            connection.execute("SET enable_progress_bar_print = false")
            # Let the scan run ahead of the upserts (the default 10 MiB holds a few thousand rows).
            connection.execute("SET streaming_buffer_size = '128MB'")
            yield connection
        finally:
            connection.close()


class _Ticker:
    """Reports progress every few seconds from a side thread: a selective filter can keep one fetch busy
    for minutes, and DuckDB's query_progress is made to be read from another thread."""

    def __init__(self, connection, shape: FileShape, report: ImportReport, callback, every: float = 2.0):
        self.connection, self.shape, self.report, self.callback, self.every = (
            connection, shape, report, callback, every
        )  # fmt: skip
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="nppes-progress", daemon=True)

    def __enter__(self) -> _Ticker:
        if self.callback is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            percent = self.connection.query_progress()
            if percent < 0:
                continue
            fraction = min(percent / 100, 1.0)
            estimated_rows = int(fraction * self.shape.size / self.shape.mean_line_bytes)
            self.callback(
                ImportProgress(fraction, estimated_rows, self.report.matched, time.monotonic() - self.started)
            )


def nppes_import(
    *,
    path: Path | str,
    states: Iterable[str] = (),
    zip_prefixes: Iterable[str] = (),
    taxonomies: Iterable[str] = (),
    progress: ProgressCallback | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Upsert the providers and organizations of an NPPES file that pass the filters (all when none).

    Filters combine with AND; the values of one filter with OR. `taxonomies` are NUCC codes or prefixes
    matched against all 15 taxonomy columns. Raises ImportRefused when the file cannot be an NPPES file.
    """
    path = Path(path)
    shape = check_file(path)
    states, zips, codes = _clean_filters(states, zip_prefixes, taxonomies)
    report = ImportReport(source=Source.NPPES)
    pending: list[tuple[tuple[str, ...], RejectedRow]] = []
    sql, params = _scan_query(states, zips, codes)
    with _duckdb() as connection, transaction.atomic():
        known = list(ReferringProvider.objects.exclude(npi="").values_list("npi", flat=True))
        known += ReferringPractice.objects.exclude(npi="").values_list("npi", flat=True)
        connection.execute(
            "CREATE TEMP TABLE known_npi AS SELECT unnest($npis::VARCHAR[]) AS npi", {"npis": known}
        )
        connection.execute("SET enable_profiling = 'no_output'")
        columns = {name: "VARCHAR" for name in shape.header}
        result = connection.execute(sql, {"path": str(path), "columns": columns, **params})
        batch = EntryBatch(source=Source.NPPES, report=report, size=batch_size)
        with _Ticker(connection, shape, report, progress):
            while rows := result.fetchmany(1000):
                for values in rows:
                    report.matched += 1
                    try:
                        batch.add(entry_from_row(values))
                    except RowProblem as problem:
                        report.rejected += 1
                        if len(pending) < MAX_REJECTS_SHOWN:
                            fingerprint = tuple(clean(v) for v in values)
                            pending.append((fingerprint, RejectedRow(where="", reason=str(problem))))
            batch.flush()
        accepted = _rows_scanned(connection)
        connection.execute("PRAGMA disable_profiling")
        shape_rejects, shape_count = _shape_rejects(connection)
        report.read = accepted + shape_count
        report.rejected += shape_count
        if pending:
            _locate(connection, path, shape.header, pending)
        shown = sorted([*shape_rejects, *(row for _, row in pending)], key=lambda row: row.order)
        report.rejects = shown[:MAX_REJECTS_SHOWN]
        audit_import(report, filters={"states": states, "zip_prefixes": zips, "taxonomies": codes})
    return report


def _rows_scanned(connection) -> int:
    """Rows the CSV reader accepted, from DuckDB's profile of the scan (a count needs no second pass)."""
    profile = json.loads(connection.get_profiling_information(format="json"))
    counts = []
    stack = list(profile.get("children", [])) + list(profile.get("operator", []))
    while stack:
        node = stack.pop()
        if "READ_CSV" in str(node.get("name") or node.get("operator_name") or ""):
            counts.append(int(node.get("operator_cardinality") or node.get("intermediate_rows") or 0))
        stack.extend(node.get("children", []))
    if len(counts) != 1:
        raise RuntimeError("DuckDB's profile does not show the one CSV scan: cannot count the rows read")
    return counts[0]


_SHAPE_REASONS = {
    "MISSING COLUMNS": "the row is short",
    "TOO MANY COLUMNS": "the row has too many columns",
    "UNQUOTED VALUE": "a value holds a stray double quote",
    "INVALID ENCODING": "the row is not ISO-8859-1 text",
}


def _shape_rejects(connection) -> tuple[list[RejectedRow], int]:
    """Lines DuckDB could not split into the header's columns: the first few with reasons, and how many."""
    (records, lines) = connection.execute(
        "SELECT count(*), count(DISTINCT line) FROM reject_errors"
    ).fetchone()
    if records >= REJECTS_LIMIT:
        raise ImportRefused(
            f"more than {REJECTS_LIMIT:,} errors splitting rows into columns: this is not an NPPES data file"
        )
    first = connection.execute(
        """SELECT line, arg_min(error_type, column_idx), arg_min(error_message, column_idx)
           FROM reject_errors GROUP BY line ORDER BY line LIMIT $n""",
        {"n": MAX_REJECTS_SHOWN},
    ).fetchall()
    rows = [
        RejectedRow(
            where=f"line {line}",
            reason=f"{_SHAPE_REASONS.get(kind, kind.lower())} ({message.strip().rstrip('.')})",
            order=int(line),
        )
        for line, kind, message in first
    ]
    return rows, int(lines)


def _locate(connection, path: Path, header: list[str], pending) -> None:
    """Give the rows rejected for their content their line numbers, by a line-numbered scan of the file.

    The parallel scan cannot number lines, so the rejected rows are found again: each physical line is read
    as one string (a blank or broken line still counts), lines whose first value is a rejected row's NPI
    are parsed again, and the k-th line with a rejected row's exact values is that row's k-th occurrence.
    """
    index = [header.index(name) for name in NEEDED_COLUMNS]
    waiting: dict[tuple[str, ...], deque[RejectedRow]] = defaultdict(deque)
    for fingerprint, row in pending:
        waiting[fingerprint].append(row)
    npis = sorted({fingerprint[_AT[NPI]] for fingerprint in waiting})
    candidates = connection.execute(
        """SELECT line_no, line FROM (
               SELECT row_number() OVER () AS line_no, line FROM read_csv($path, columns={'line': 'VARCHAR'},
                   header=false, auto_detect=false, delim=$delim, quote='', escape='', encoding='latin-1',
                   strict_mode=false, parallel=false))
           WHERE line_no > 1
             AND trim(substr(split_part(line, '",', 1), 2)) IN (SELECT unnest($npis::VARCHAR[]))""",
        {"path": str(path), "npis": npis, "delim": "\x1f"},
    )
    while rows := candidates.fetchmany(1000):
        for line_no, line in rows:
            fields = next(csv.reader([line]), [])
            if len(fields) != len(header):
                continue
            queue = waiting.get(tuple(fields[i].strip() for i in index))
            if queue:
                found = queue.popleft()
                found.where, found.order = f"line {line_no}", int(line_no)
    for queue in waiting.values():
        for row in queue:
            row.where, row.order = "a row (line not found again)", 1 << 62


def audit_import(report: ImportReport, *, filters: dict[str, list[str]] | None = None) -> None:
    detail: dict[str, Any] = {"source": report.source, **report.counts()}
    if filters:
        detail["filters"] = {name: values for name, values in filters.items() if values}
    audit_record(actor=None, actor_label="import-nppes", action="directory.import_nppes", detail=detail)


# ---- upserting, batch by batch (shared with npi_api.py) ----


class EntryBatch:
    """Collects entries and writes them a few thousand at a time; a repeated NPI starts a new batch so the
    second occurrence updates what the first created instead of colliding with it."""

    def __init__(self, *, source: str, report: ImportReport, size: int = BATCH_SIZE):
        self.source, self.report, self.size = source, report, size
        self.entries: dict[tuple[str, str], RegistryEntry] = {}

    def add(self, entry: RegistryEntry) -> None:
        key = (entry.kind, entry.npi)
        if key in self.entries:
            self.flush()
        self.entries[key] = entry
        if len(self.entries) >= self.size:
            self.flush()

    def flush(self) -> None:
        if self.entries:
            upsert_entries(list(self.entries.values()), source=self.source, report=self.report)
            self.entries = {}


def upsert_entries(entries: list[RegistryEntry], *, source: str, report: ImportReport) -> None:
    """Create or update one batch of entries (unique NPIs per kind); counts go into `report`."""
    now = timezone.now()
    _upsert_providers([e for e in entries if e.kind == "provider"], source, report, now)
    _upsert_practices([e for e in entries if e.kind == "practice"], source, report, now)
    _apply_deactivations([e for e in entries if e.kind == "deactivation"], report, now)


def _owned_changes(current: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The imported values that differ from the record's, leaving out the fields a person took over."""
    manual = set(current["manual_fields"] or ())
    return {name: value for name, value in fields.items() if name not in manual and current[name] != value}


def _changed_record(
    model, current: dict[str, Any], changes: dict[str, Any], owned: Iterable[str], *, bump: bool
):
    """An instance for bulk_update with every owned field set, changed or not: a batch updates the union of
    the fields that changed anywhere in it, and must not blank a record's other owned values."""
    values = {name: current[name] for name in owned} | changes
    version = current["version"] + 1 if bump else current["version"]
    return model(pk=current["pk"], npi=current["npi"], version=version, **values)


def _newly_deactivated(current: dict[str, Any], changes: dict[str, Any]) -> bool:
    return current["deactivated_on"] is None and changes.get("deactivated_on") is not None


_PLAIN_COLUMNS = {
    "AutoField", "BigAutoField", "BigIntegerField", "BooleanField", "CharField", "ForeignKey", "IntegerField",
    "PositiveIntegerField", "PositiveSmallIntegerField", "SmallIntegerField", "TextField", "EmailField",
}  # fmt: skip


def _insert(model, rows: list[dict[str, Any]], now) -> None:
    """INSERT new rows, given as dicts by column attname (the rest take their defaults), in one executemany.

    bulk_create builds a model instance per row and compiles every value through the ORM, which at NPPES
    scale (tens of thousands of providers and taxonomies per state) costs more CPU than DuckDB's whole scan.
    Here plain columns go through as they are and each distinct date or JSON value is adapted once.
    """
    if not rows:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    adapters = [_column_adapter(f) for f in fields]
    defaults = [
        now if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) else f.get_default()
        for f in fields
    ]
    plan = list(zip([f.attname for f in fields], defaults, adapters, strict=True))
    values = [
        [
            row.get(name, default) if adapt is None else adapt(row.get(name, default))
            for name, default, adapt in plan
        ]
        for row in rows
    ]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({columns}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, values)


def _column_adapter(model_field) -> Callable[[Any], Any] | None:
    if model_field.get_internal_type() in _PLAIN_COLUMNS:
        return None
    adapted: dict[str, Any] = {}

    def adapt(value: Any) -> Any:
        key = repr(value)
        if key not in adapted:
            adapted[key] = model_field.get_db_prep_save(value, connection)
        return adapted[key]

    return adapt


def _by_npi(model, npis: list[str]):
    """Records with these NPIs. Saying npi <> '' as well lets SQLite use the partial unique index on NPI
    (it cannot infer that condition from an IN list), instead of scanning the table for every batch."""
    return model.objects.filter(npi__in=npis).exclude(npi="")


def _insert_entries(model, rows: list[dict[str, Any]], now) -> dict[str, int]:
    """Insert new providers or practices; their primary keys by NPI."""
    _insert(model, rows, now)
    return dict(_by_npi(model, [row["npi"] for row in rows]).values_list("npi", "pk"))


def _new_entry_row(entry: RegistryEntry, source: str, search_text: Callable[[Any], str], *locations) -> dict:
    """A new provider's or practice's row. The search-text helpers only read attributes, so they are given
    a namespace rather than a model instance, which would cost more than the rest of the row."""
    row = {"npi": entry.npi, "source": source, **entry.fields}
    row["search_text"] = search_text(SimpleNamespace(**row), *locations)
    return row


def _bulk_update(model, records: list, names: Iterable[str], now) -> None:
    if records:
        for record in records:
            record.updated_at = now
        model.objects.bulk_update(records, sorted({*names, "version", "updated_at"}), batch_size=500)


def _upsert_providers(entries: list[RegistryEntry], source: str, report: ImportReport, now) -> None:
    """Compare with plain values and build model instances only for what changed: a monthly re-import
    finds almost everything unchanged, and loading every record as a model instance would dominate it."""
    if not entries:
        return
    columns = ("pk", "npi", "manual_fields", "version", *PROVIDER_IMPORTED_FIELDS)
    found = _by_npi(ReferringProvider, [e.npi for e in entries]).values(*columns)
    existing = {row["npi"]: row for row in found}
    held: dict[int, dict[str, dict]] = defaultdict(dict)
    taxonomy_rows = ProviderTaxonomy.objects.filter(provider_id__in=[row["pk"] for row in existing.values()])
    for row in taxonomy_rows.values("pk", "provider_id", "code", *_TAXONOMY_FACTS):
        held[row["provider_id"]][row["code"]] = row
    created: list[RegistryEntry] = []
    updated, changed_names = [], {"search_text"}
    tax_new: list[dict] = []
    tax_changed: list[ProviderTaxonomy] = []
    tax_gone: list[int] = []
    for entry in entries:
        current = existing.get(entry.npi)
        if current is None:
            created.append(entry)
            report.deactivated += entry.fields["deactivated_on"] is not None
            continue
        changes = _owned_changes(current, entry.fields)
        taxonomies = held[current["pk"]]
        taxonomy_changed = _sync_taxonomies(current["pk"], entry.taxonomies, taxonomies, tax_new, tax_changed)
        listed = {fact.code for fact in entry.taxonomies}
        gone = [row["pk"] for code, row in taxonomies.items() if code not in listed]
        tax_gone += gone
        if changes:
            provider = _changed_record(
                ReferringProvider, current, changes, PROVIDER_IMPORTED_FIELDS, bump=True
            )
            provider.search_text = provider_search_text(provider)
            updated.append(provider)
            changed_names |= changes.keys()
        report.updated += bool(changes or taxonomy_changed or gone)
        report.unchanged += not (changes or taxonomy_changed or gone)
        report.deactivated += _newly_deactivated(current, changes)
    rows = [_new_entry_row(entry, source, provider_search_text) for entry in created]
    keys = _insert_entries(ReferringProvider, rows, now)
    report.created += len(created)
    for entry in created:
        tax_new += [_taxonomy_row(keys[entry.npi], fact) for fact in entry.taxonomies]
    _bulk_update(ReferringProvider, updated, changed_names, now)
    if tax_gone:
        ProviderTaxonomy.objects.filter(pk__in=tax_gone).delete()
    _insert(ProviderTaxonomy, tax_new, now)
    if tax_changed:
        ProviderTaxonomy.objects.bulk_update(tax_changed, list(_TAXONOMY_FACTS), batch_size=500)


def _taxonomy_row(provider_id: int, fact: TaxonomyFacts) -> dict[str, Any]:
    return {
        "provider_id": provider_id, "code": fact.code, "description": fact.description,
        "is_primary": fact.is_primary, "license_number": fact.license_number,
        "license_state": fact.license_state,
    }  # fmt: skip


def _sync_taxonomies(
    provider_id: int, facts: list[TaxonomyFacts], held: dict[str, dict], new: list, changed: list
) -> bool:
    """Queue the taxonomy rows to add or change; the registry's list is the whole truth for these rows."""
    any_change = False
    for fact in facts:
        row = held.get(fact.code)
        wanted = _taxonomy_row(provider_id, fact)
        if row is None:
            new.append(wanted)
            any_change = True
        elif any(row[name] != wanted[name] for name in _TAXONOMY_FACTS):
            changed.append(ProviderTaxonomy(pk=row["pk"], **wanted))
            any_change = True
    return any_change


def _upsert_practices(entries: list[RegistryEntry], source: str, report: ImportReport, now) -> None:
    if not entries:
        return
    columns = ("pk", "npi", "manual_fields", "version", *PRACTICE_IMPORTED_FIELDS)
    existing = {
        row["npi"]: row for row in _by_npi(ReferringPractice, [e.npi for e in entries]).values(*columns)
    }
    locations_of: dict[int, list[dict]] = defaultdict(list)
    held = PracticeLocation.objects.filter(practice_id__in=[row["pk"] for row in existing.values()])
    for row in held.values("pk", "practice_id", "is_primary", *LOCATION_IMPORTED_FIELDS):
        locations_of[row["practice_id"]].append(row)  # in the model's order: the primary first
    created: list[RegistryEntry] = []
    updated, changed_names = [], {"search_text"}
    locations_new: list[dict] = []
    locations_changed: list[PracticeLocation] = []
    for entry in entries:
        current = existing.get(entry.npi)
        if current is None:
            created.append(entry)
            report.deactivated += entry.fields["deactivated_on"] is not None
            continue
        changes = _owned_changes(current, entry.fields)
        locations = locations_of[current["pk"]]
        primary = next((loc for loc in locations if loc["is_primary"]), locations[0] if locations else None)
        location_changed = False
        if primary is None:
            locations_new.append({"practice_id": current["pk"], "is_primary": True, **entry.location})
            locations.append(entry.location)
            location_changed = True
        elif LOCATION_MANUAL_KEY not in (current["manual_fields"] or ()):
            moved = {name: value for name, value in entry.location.items() if primary[name] != value}
            if moved:
                primary.update(moved)
                address = {name: primary[name] for name in LOCATION_IMPORTED_FIELDS}
                locations_changed.append(PracticeLocation(pk=primary["pk"], **address))
                location_changed = True
        if changes or location_changed:
            practice = _changed_record(
                ReferringPractice, current, changes, PRACTICE_IMPORTED_FIELDS, bump=bool(changes)
            )
            practice.search_text = practice_search_text(
                practice, [SimpleNamespace(**loc) for loc in locations]
            )
            updated.append(practice)
            changed_names |= changes.keys()
        report.updated += bool(changes or location_changed)
        report.unchanged += not (changes or location_changed)
        report.deactivated += _newly_deactivated(current, changes)
    rows = [
        _new_entry_row(entry, source, practice_search_text, [SimpleNamespace(**entry.location)])
        for entry in created
    ]
    keys = _insert_entries(ReferringPractice, rows, now)
    report.created += len(created)
    locations_new += [{"practice_id": keys[e.npi], "is_primary": True, **e.location} for e in created]
    _insert(PracticeLocation, locations_new, now)
    if locations_changed:
        PracticeLocation.objects.bulk_update(
            locations_changed, list(LOCATION_IMPORTED_FIELDS), batch_size=500
        )
    _bulk_update(ReferringPractice, updated, changed_names, now)


def _apply_deactivations(entries: list[RegistryEntry], report: ImportReport, now) -> None:
    """A deactivated NPI's row carries only its dates: mark what the directory holds, create nothing."""
    if not entries:
        return
    by_npi = {e.npi: e for e in entries}
    changed_npis: set[str] = set()
    for model, owned in (
        (ReferringProvider, PROVIDER_IMPORTED_FIELDS),
        (ReferringPractice, PRACTICE_IMPORTED_FIELDS),
    ):
        updated, changed_names = [], set()
        for current in _by_npi(model, list(by_npi)).values("pk", "npi", "manual_fields", "version", *owned):
            changes = _owned_changes(current, by_npi[current["npi"]].fields)
            if changes:
                updated.append(_changed_record(model, current, changes, owned, bump=True))
                changed_names |= changes.keys()
                changed_npis.add(current["npi"])
                report.deactivated += _newly_deactivated(current, changes)
        _bulk_update(model, updated, changed_names, now)
    report.updated += len(changed_npis)
    report.unchanged += len(entries) - len(changed_npis)
