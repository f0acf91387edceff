"""One table type for every insights page: shown by one partial, exported to CSV or XLSX by one function.

A page builds a `Table` (title, column names, rows of plain values, optionally a drill-down link per cell) and
renders it with `{% include "insights/table.html" with table=... %}`; the same object answers `?export=csv` or
`?export=xlsx` through `table_export`, so what a manager downloads is exactly what they saw.

Exports are formula-injection safe: text cells go through lib.csvsafe.neutralize (a leading =, +, -, @, tab or
CR becomes plain text), and in XLSX numbers and dates stay typed cells rather than text, since a typed number
cannot be a formula. A table marked `phi=True` (patient data) is audited on every export.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils import timezone
from django.utils.text import slugify

from refloop.accounts.audit import audit_record
from refloop.lib.csvsafe import neutralize

FORMATS = ("csv", "xlsx")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_NUMBERS = (int, float, Decimal)


@dataclass
class Table:
    """A titled grid of plain values. `links`, when given, has the shape of `rows` (None where a cell has none)."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    links: Sequence[Sequence[str | None]] | None = None
    phi: bool = False
    note: str = ""  # shown under the table on the page (not exported)
    empty: str = "Nothing to show."
    export_url: str = ""  # the page URL that answers ?export=csv|xlsx; empty hides the export links
    name: str = ""  # file-name stem; defaults to the slugified title
    numeric: Sequence[bool] = field(default=())
    page_rows: int | None = None  # show at most this many rows on the page; exports always hold every row

    def __post_init__(self) -> None:
        width = len(self.columns)
        for index, row in enumerate(self.rows):
            if len(row) != width:
                raise ValueError(f"table {self.title!r}: row {index + 1} has {len(row)} cells, expected {width}")
        if self.links is not None:
            if len(self.links) != len(self.rows):
                raise ValueError(f"table {self.title!r}: {len(self.links)} link rows for {len(self.rows)} rows")
            for index, row in enumerate(self.links):
                if len(row) != width:
                    raise ValueError(f"table {self.title!r}: link row {index + 1} has {len(row)} cells")
        if not self.numeric:
            self.numeric = tuple(
                bool(self.rows) and all(isinstance(r[i], _NUMBERS) or r[i] is None for r in self.rows)
                for i in range(width)
            )

    @property
    def file_stem(self) -> str:
        return self.name or slugify(self.title) or "table"

    @property
    def truncated(self) -> bool:
        return self.page_rows is not None and len(self.rows) > self.page_rows

    def body(self) -> list[list[tuple[Any, str | None, bool]]]:
        """Rows as (value, link, numeric) triples: what the partial iterates (the first `page_rows`)."""
        out = []
        shown = self.rows if self.page_rows is None else self.rows[: self.page_rows]
        for r, row in enumerate(shown):
            links = self.links[r] if self.links is not None else (None,) * len(row)
            out.append([(_display(v), links[c], self.numeric[c]) for c, v in enumerate(row)])
        return out

    def export_link(self, fmt: str) -> str:
        parts = urlsplit(self.export_url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "export"]
        query.append(("export", fmt))
        return urlunsplit(parts._replace(query=urlencode(query)))

    @property
    def csv_url(self) -> str:
        return self.export_link("csv")

    @property
    def xlsx_url(self) -> str:
        return self.export_link("xlsx")


def _display(value: Any) -> Any:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{int(value):,}"
    return value


def table_export(table: Table, fmt: str, *, actor=None, actor_label: str = "") -> HttpResponse:
    """The table as a CSV or XLSX download. A table with PHI needs the actor, and the export is audited."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if table.phi:
        if actor is None and not actor_label:
            raise ValueError(f"table {table.title!r} holds patient data: its export needs an actor to audit")
        audit_record(
            actor=actor,
            actor_label=actor_label,
            action="insights.export",
            detail={"table": table.title, "format": fmt, "rows": len(table.rows)},
        )
    stamp = timezone.localdate().isoformat()
    filename = f"refloop-{table.file_stem}-{stamp}.{fmt}"
    if fmt == "csv":
        response = HttpResponse(_csv_text(table), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(_xlsx_bytes(table), content_type=XLSX_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def table_export_for(request: HttpRequest, table: Table, *, param: str = "export") -> HttpResponse | None:
    """The export `request` asks for with ?export=csv|xlsx, a 400 naming a bad format, or None for the page."""
    fmt = request.GET.get(param)
    if not fmt:
        return None
    if fmt not in FORMATS:
        return HttpResponseBadRequest(f"Unknown export format {fmt!r}: use csv or xlsx.")
    return table_export(table, fmt, actor=request.user)


def _csv_text(table: Table) -> str:
    """csvsafe.csv_text, except that typed numbers are written as they are: -3 is data, never a formula."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralize(c) for c in table.columns])
    for row in table.rows:
        writer.writerow([_csv_cell(v) for v in row])
    return buffer.getvalue()


def _csv_cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, _NUMBERS):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return neutralize(value)


def _xlsx_bytes(table: Table) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = _sheet_title(table.title)

    def cell(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, _NUMBERS):
            return float(value) if isinstance(value, Decimal) else value
        if isinstance(value, dt.datetime):  # Excel has no time zones: write the practice's local time
            return timezone.localtime(value).replace(tzinfo=None) if value.tzinfo else value
        if isinstance(value, dt.date):
            return value
        # openpyxl stores any str starting with "=" as a formula: neutralize first, and drop control characters
        # the XML cannot carry.
        return ILLEGAL_CHARACTERS_RE.sub("", neutralize(value))

    sheet.append([cell(c) for c in table.columns])
    for header in sheet[1]:
        header.font = Font(bold=True)
    for row in table.rows:
        sheet.append([cell(v) for v in row])
    for column_cells in sheet.columns:
        width = max((len(str(c.value)) for c in column_cells if c.value is not None), default=8)
        sheet.column_dimensions[column_cells[0].column_letter].width = min(max(width + 2, 8), 60)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _sheet_title(title: str) -> str:
    cleaned = "".join(" " if ch in "[]:*?/\\" else ch for ch in title).strip() or "Table"
    return cleaned[:31]
