"""A SQLite connection setting changed for a block and put back after (the page cache of a bulk load, the busy
timeout of a reader that would rather not wait)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import connection


@contextlib.contextmanager
def sqlite_pragma(name: str, value: int) -> Iterator[None]:
    """`PRAGMA name = value` on this connection for the block, when it is SQLite (elsewhere nothing happens)."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {name}")
        previous = int(cursor.fetchone()[0])
        cursor.execute(f"PRAGMA {name} = {int(value)}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA {name} = {previous}")
