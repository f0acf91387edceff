"""Lookups by equal columns in plain SQL, for the queries every referral intake runs.

The ORM builds each query anew: for a lookup on a unique key that cost two to four times the CPU the database
spent answering it, a large part of an intake's CPU (issue 8). These build the SQL text once per model and columns
and make model instances of the rows as the ORM does (`Model.from_db`, the ORM's converters applied). Only for plain
equality on columns of one table; anything else stays in the ORM.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)


@functools.cache
def _plan(model: type[models.Model], columns: tuple[str, ...]) -> tuple[str, list[str], list[tuple]]:
    """The SELECT of every concrete field, the attnames in its order, and the converters the ORM applies to each
    column (as SQLCompiler.apply_converters: JSON, dates on SQLite...)."""
    q = connection.ops.quote_name
    fields = model._meta.concrete_fields
    where = " AND ".join(f"{q(model._meta.get_field(c).column)} = %s" for c in columns)
    select = ", ".join(q(f.column) for f in fields)
    sql = f"SELECT {select} FROM {q(model._meta.db_table)} WHERE {where}"  # noqa: S608 - names from the model
    converters = []
    for position, field in enumerate(fields):
        column = field.get_col(model._meta.db_table)
        functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if functions:
            converters.append((position, functions, column))
    return sql, [f.attname for f in fields], converters


def _columns(model: type[models.Model], equal: dict[str, Any]) -> tuple[str, ...]:
    return tuple(model._meta.pk.name if name == "pk" else name for name in equal)


def rows_where(model: type[M], **equal: Any) -> list[M]:
    """The rows whose fields equal these values (`pk` for the primary key), as model instances (`Model.from_db`,
    as the ORM makes them)."""
    sql, names, converters = _plan(model, _columns(model, equal))
    with connection.cursor() as cursor:
        cursor.execute(sql, list(equal.values()))
        rows = cursor.fetchall()
    found = []
    for row in rows:
        if converters:
            row = list(row)
            for position, functions, column in converters:
                value = row[position]
                for convert in functions:
                    value = convert(value, column, connection)
                row[position] = value
        found.append(model.from_db(connection.alias, names, row))
    return found


def row_where(model: type[M], **equal: Any) -> M | None:
    """The one row with these values (for a unique key), or None."""
    rows = rows_where(model, **equal)
    return rows[0] if rows else None
