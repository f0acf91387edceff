"""CSV and spreadsheet output that a spreadsheet program cannot be tricked into executing.

A cell beginning with =, +, -, @, a tab or a carriage return is read by Excel and LibreOffice as a formula
(OWASP "CSV injection"); prefixing it with an apostrophe makes it plain text, and the apostrophe is not shown.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_TRIGGERS):
        return "'" + text
    return text


def csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralize(h) for h in header])
    for row in rows:
        writer.writerow([neutralize(cell) for cell in row])
    return buffer.getvalue()
