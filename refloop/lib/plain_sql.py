"""Lookups by equal columns in plain SQL, for the queries every referral intake runs.

The ORM builds each query anew: for a lookup on a unique key that cost two to four times the CPU the database
spent answering it, a large part of an intake's CPU (issue 8). These build the SQL text once per model and columns
and read the rows into model instances as the ORM would (`Model.objects.raw`). Only for plain equality on columns
of one table; anything else stays in the ORM.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)


@functools.cache
def _select(model: type[models.Model], columns: tuple[str, ...]) -> str:
    q = connection.ops.quote_name
    where = " AND ".join(f"{q(model._meta.get_field(c).column)} = %s" for c in columns)
    return f"SELECT * FROM {q(model._meta.db_table)} WHERE {where}"  # noqa: S608 - names from the model


def _columns(model: type[models.Model], equal: dict[str, Any]) -> tuple[str, ...]:
    return tuple(model._meta.pk.name if name == "pk" else name for name in equal)


def rows_where(model: type[M], **equal: Any) -> list[M]:
    """The rows whose fields equal these values (`pk` for the primary key), as model instances."""
    return list(model.objects.raw(_select(model, _columns(model, equal)), list(equal.values())))


def row_where(model: type[M], **equal: Any) -> M | None:
    """The one row with these values (for a unique key), or None."""
    return next(iter(model.objects.raw(_select(model, _columns(model, equal)), list(equal.values()))), None)
