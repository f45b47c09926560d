"""One-statement INSERTs for the webhook's hot path.

``row_insert_new`` stores one row of a model from a dict of field values with ``INSERT … ON
CONFLICT (unique fields) DO NOTHING``: a duplicate is answered by the database in the same
statement (no exception, no savepoint, no SELECT first; the row count says which). The statement
names every concrete column of the model, so a field added later is filled too (with its
default), and it is built once per model, unique key, given fields and database vendor: Django's
compiler rebuilt the same SQL on every call, and a model instance (``__init__``,
``pre_init``/``post_init`` signals, a default and a conversion per field) cost more than the
INSERT itself (docs/scaling.md). Constant defaults are written into the statement as literals
(quoted by the database driver), and so are the empty containers of ``list`` or ``dict`` defaults;
other callable defaults (``uuid4``, ``now``) are called for each row. PostgreSQL and SQLite
≥ 3.35.

Like ``QuerySet.bulk_create`` it sends no ``pre_save``/``post_save`` signals.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.db import connections
from django.db.backends.utils import CursorWrapper
from django.db.models import (
    AutoField,
    BigAutoField,
    CharField,
    DateTimeField,
    Field,
    ForeignKey,
    IntegerField,
    Model,
    TextField,
    UUIDField,
)

DEFAULT_DB = "default"


@dataclass(frozen=True)
class JsonText:
    """A JSON field's value as JSON text already checked by the caller (e.g. a webhook body as
    received): stored as it is, without parsing and serialising it again."""

    text: str


@dataclass(frozen=True)
class _Column:
    field: Field
    source: str  # "given" (the caller's values), "default" (called per row) or "constant"
    constant: object = None  # the converted default of a "constant" column
    # A given value of this type goes in as it is: Django's own conversion would return it
    # unchanged (text for a plain text column, a primary key's integer for a foreign key; on
    # PostgreSQL also an aware datetime and a UUID). So does None for such a nullable column.
    unchanged: type | None = None
    none_unchanged: bool = False
    key: str = ""  # the name the caller gives a "given" value by (the field's name or attname)


# Defaults that are callables only to give each row a new empty container: the stored form of
# what they return is the same for every row, so it is a constant.
_EMPTY = (list, dict, tuple, set, frozenset, str)
_PLAIN = (CharField, TextField, DateTimeField, UUIDField, ForeignKey)


def _unchanged_type(field: Field, vendor: str) -> type | None:
    kind = type(field)
    if kind in (CharField, TextField):
        return str
    if kind is ForeignKey and type(field.target_field) in (AutoField, BigAutoField, IntegerField):
        return int
    if vendor == "postgresql" and kind is DateTimeField:
        return datetime  # (aware ones only: see _param)
    if vendor == "postgresql" and kind is UUIDField:
        return uuid.UUID
    return None


@lru_cache(maxsize=32)
def _statement(
    model: type[Model], unique: tuple[str, ...], given: frozenset[str], vendor: str
) -> tuple[str, tuple[_Column, ...]]:
    connection = connections[DEFAULT_DB]
    quote = connection.ops.quote_name
    meta = model._meta
    fields = [f for f in meta.local_concrete_fields if not f.primary_key]
    unknown = given - {f.name for f in fields} - {f.attname for f in fields}
    if unknown:
        raise ValueError(f"{model.__name__} has no field(s) {', '.join(sorted(unknown))}")
    columns = []
    for field in fields:
        if field.name in given or field.attname in given:
            unchanged = _unchanged_type(field, vendor)
            columns.append(_Column(
                field, "given", unchanged=unchanged,
                none_unchanged=unchanged is not None and field.null and type(field) in _PLAIN,
                key=field.name if field.name in given else field.attname,
            ))  # fmt: skip
        elif field.has_default() and callable(field.default) and field.default not in _EMPTY:
            columns.append(_Column(field, "default"))
        else:
            constant = field.get_db_prep_save(field.get_default(), connection)
            columns.append(_Column(field, "constant", constant))
    names = ", ".join(quote(f.column) for f in fields)
    conflict = ", ".join(quote(meta.get_field(name).column) for name in unique)
    # Into the text go only quoted names from the model's metadata and the model's own constant
    # defaults, quoted by the driver (compose_sql); everything given is a parameter.
    inline = vendor == "postgresql"  # (compose_sql: the PostgreSQL driver's own quoting)
    placeholders = ", ".join(
        connection.ops.compose_sql("%s", [c.constant]) if inline and c.source == "constant"
        else "%s"
        for c in columns
    )  # fmt: skip
    table = quote(meta.db_table)
    sql = f"INSERT INTO {table} ({names}) VALUES ({placeholders}) "  # noqa: S608
    sql += f"ON CONFLICT ({conflict}) DO NOTHING"
    return sql, tuple(c for c in columns if not (inline and c.source == "constant"))


def row_insert_new(model: type[Model], *, values: dict[str, Any], unique: tuple[str, ...]) -> bool:
    """INSERT a ``model`` row from ``values`` (by field name or attname: ``hub`` or ``hub_id``)
    unless a row with the same ``unique`` values exists; True if it was stored.

    Fields not in ``values`` get their default. A ``JsonText`` value goes in as it is."""
    connection = connections[DEFAULT_DB]
    sql, columns = _statement(model, unique, frozenset(values), connection.vendor)
    params = [_param(column, values, connection) for column in columns]
    return statement_run(sql, params) == 1


def _param(column: _Column, values: dict[str, Any], connection: Any) -> object:
    source = column.source
    if source == "constant":
        return column.constant
    field = column.field
    if source == "default":
        return field.get_db_prep_save(field.get_default(), connection)
    value = values[column.key]
    unchanged = column.unchanged
    if unchanged is not None:
        kind = type(value)
        # (A naive datetime takes Django's way, with its warning; a bool is no primary key.)
        if kind is unchanged and (kind is not datetime or value.utcoffset() is not None):
            return value
        if value is None and column.none_unchanged:
            return None
    if isinstance(value, JsonText):
        json_text = getattr(field, "get_db_prep_json_text", None)  # e.g. encrypted at rest
        return json_text(value.text) if json_text else value.text
    if isinstance(value, Model) and field.is_relation:  # e.g. "hub": the related row itself
        value = getattr(value, field.target_field.attname)
    return field.get_db_prep_save(value, connection)


def statement_run(sql: str, params: list[object]) -> int:
    """Run one write statement ``sql`` on the default database through Django's cursor machinery
    (its checks, ``execute_wrappers`` used for instrumentation and fault tests, and its error
    translation); the row count.

    On PostgreSQL through one kept cursor per connection with server-side parameters, which
    psycopg prepares after a few runs: Django's default client cursor quotes every parameter into
    the text in Python, and the server parses and plans the same INSERT again each time; a new
    cursor per row cost more than binding its parameters (docs/scaling.md). The bench's INSERT
    ceiling runs its statement here too, so the two are compared like for like."""
    connection = connections[DEFAULT_DB]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount
    cursor = _kept_cursor(connection)
    cursor.execute(sql, params)
    return cursor.rowcount


def _kept_cursor(connection: Any) -> CursorWrapper:
    import psycopg  # only on PostgreSQL, where Django needs it anyway

    connection.ensure_connection()
    kept = getattr(connection, "_row_insert_cursor", None)
    if kept is None or kept.cursor.closed or kept.cursor.connection is not connection.connection:
        kept = CursorWrapper(psycopg.Cursor(connection.connection), connection)
        connection._row_insert_cursor = kept
    return kept
