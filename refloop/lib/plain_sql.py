"""Lookups by equal columns in plain SQL, for the queries every referral intake runs.

The ORM builds each query anew: for a lookup on a unique key that cost two to four times the CPU the database
spent answering it, a large part of an intake's CPU (issue 8). These build the SQL text once per model and columns
and make model instances of the rows as the ORM does (`Model.from_db`, the ORM's converters applied). Only for plain
equality on columns of one table; anything else stays in the ORM.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)


@functools.cache
def _reading(model: type[models.Model], alias: str) -> tuple[str, list[str], list[tuple]]:
    """The SELECT list of every concrete field (columns of `alias`), the attnames in its order, and the converters
    the ORM applies to each column (as SQLCompiler.apply_converters: JSON, dates on SQLite...)."""
    q = connection.ops.quote_name
    fields = model._meta.concrete_fields
    select = ", ".join(f"{alias}.{q(f.column)}" for f in fields)
    converters = []
    for position, field in enumerate(fields):
        column = field.get_col(model._meta.db_table)
        functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if functions:
            converters.append((position, functions, column))
    return select, [f.attname for f in fields], converters


@functools.cache
def _where(model: type[models.Model], columns: tuple[str, ...]) -> str:
    q = connection.ops.quote_name
    return " AND ".join(f"{q(model._meta.get_field(c).column)} = %s" for c in columns)


def rows_from(model: type[M], alias: str, rest: str, params: Sequence[Any]) -> list[M]:
    """`SELECT <every column of alias> FROM <rest>` as model instances (`Model.from_db`, as the ORM makes them):
    `rest` names the model's table as `alias` and may join, filter, order and limit."""
    select, names, converters = _reading(model, alias)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {select} FROM {rest}", list(params))  # noqa: S608 - the caller's SQL, parameters bound
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


def rows_where(model: type[M], **equal: Any) -> list[M]:
    """The rows whose fields equal these values (`pk` for the primary key), each value prepared by its field as the
    ORM prepares a lookup's (a datetime on SQLite, say)."""
    columns = tuple(model._meta.pk.name if name == "pk" else name for name in equal)
    fields = [model._meta.get_field(c) for c in columns]
    params = [f.get_db_prep_value(v, connection, prepared=False) for f, v in zip(fields, equal.values(), strict=True)]
    table = connection.ops.quote_name(model._meta.db_table)
    return rows_from(model, "t", f"{table} t WHERE {_where(model, columns)}", params)


def row_where(model: type[M], **equal: Any) -> M | None:
    """The one row with these values (for a unique key), or None."""
    rows = rows_where(model, **equal)
    return rows[0] if rows else None
