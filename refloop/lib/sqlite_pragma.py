"""A SQLite connection setting changed for a block and put back after (the page cache of a bulk load, the busy
timeout of a reader that would rather not wait)."""

from __future__ import annotations

import contextlib
import ctypes
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


SORT_THREADS = 2
SORT_CACHE_KB = 8 * 1024


@contextlib.contextmanager
def parallel_sorts() -> Iterator[None]:
    """SQLite, for a block that sorts a million rows (CREATE INDEX, a large GROUP BY): the sorter in SORT_THREADS
    threads, with a small page cache. The sorter sizes its runs by the cache: with a bulk load's 256 MB it sorted
    each index in one thread and one run; with 8 MB it sorts many runs at once and merges them. Measured on a
    1M-row referral import (2 cores): its indexes built in 19-25 s instead of 25-27 s, and its sums (grouped and
    then written, both in the block) in 38-41 s instead of 43-47 s."""
    with sqlite_pragma("threads", SORT_THREADS), sqlite_pragma("cache_size", -SORT_CACHE_KB):
        yield


def release_freed_memory() -> None:
    """Give the memory freed inside this process's C heap back to the system (glibc's malloc_trim; elsewhere this
    does nothing).

    The pages a bulk load's large SQLite cache gives up are freed scattered between blocks still in use, so they
    keep counting in the process's resident memory, and whatever is allocated next in its own mapping (NumPy's
    arrays) comes on top. Pages still to be written when the cache shrinks are freed only once written: call this
    after the statements that follow the shrink have run."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # the C library the process already runs on
    if trim is not None:
        trim(0)
