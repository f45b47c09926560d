"""One-statement INSERTs for the webhook's hot path.

``row_insert_new`` stores a model instance with ``INSERT … ON CONFLICT (unique fields) DO NOTHING
RETURNING id``: a duplicate is answered by the database in the same statement (no exception, no
savepoint, no SELECT first), and the SQL is built once per model and database from the model's
concrete fields, so a new field is included automatically. Django's compiler rebuilt the same SQL
on every call, a quarter of the webhook's CPU (docs/scaling.md). PostgreSQL and SQLite ≥ 3.35.

Like ``QuerySet.bulk_create`` it sends no ``pre_save``/``post_save`` signals.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.db import connections
from django.db.models import Field, Model

DEFAULT_DB = "default"


@lru_cache(maxsize=16)
def _statement(model: type[Model], unique: tuple[str, ...], vendor: str) -> tuple[str, tuple]:
    connection = connections[DEFAULT_DB]
    quote = connection.ops.quote_name
    meta = model._meta
    fields = tuple(f for f in meta.local_concrete_fields if not f.primary_key)
    columns = ", ".join(quote(f.column) for f in fields)
    conflict = ", ".join(quote(meta.get_field(name).column) for name in unique)
    # Only quoted names from the model's metadata go into the text; values are parameters.
    placeholders = ", ".join(["%s"] * len(fields))
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "  # noqa: S608
    sql += f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {pk}"
    return sql, fields


def row_insert_new(instance: Model, *, unique: tuple[str, ...]) -> bool:
    """INSERT ``instance`` unless a row with the same ``unique`` values exists; True if stored.

    On success the instance has its primary key and is marked as saved."""
    connection = connections[DEFAULT_DB]
    sql, fields = _statement(type(instance), unique, connection.vendor)
    params = [_db_value(field, instance, connection) for field in fields]
    row = _execute_one(connection, sql, params)
    if row is None:
        return False
    instance.pk = row[0]
    instance._state.adding = False
    instance._state.db = DEFAULT_DB
    return True


def _execute_one(connection: Any, sql: str, params: list[object]) -> tuple | None:
    """Run ``sql`` and return its one row (or None).

    On PostgreSQL as a prepared statement with server-side parameters: Django's default client
    cursor quotes every parameter into the text in Python and the server parses and plans the
    same INSERT again each time. It still goes through Django's cursor for its checks (thread,
    broken transaction, connection), its ``execute_wrapper``s (instrumentation, fault tests) and
    its error translation to ``django.db`` exceptions."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(sql, params)
            return cursor.fetchone()
        import psycopg  # only on PostgreSQL, where Django needs it anyway

        def prepared(sql: str, params: Any, many: bool, context: Any) -> tuple | None:
            with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as raw:
                raw.execute(sql, params, prepare=True)
                return raw.fetchone()

        return cursor._execute_with_wrappers(sql, params, many=False, executor=prepared)


def _db_value(field: Field, instance: Model, connection) -> object:
    return field.get_db_prep_save(field.pre_save(instance, True), connection)
