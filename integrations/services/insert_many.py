"""Many rows of a model in one statement, a duplicate skipped by the database (bulk imports).

``RowsWriter.write`` stores a batch with ``INSERT … ON CONFLICT (unique fields) DO NOTHING`` and
answers how many rows were new. On PostgreSQL the batch first goes into a temporary table by
``COPY`` (a stream, no per-row statement or parameter list), then one ``INSERT … SELECT`` moves
it. Until a batch meets a row that is already there, batches are copied straight into the table
(a third less work; the failed batch is rolled back and written the other way, and so is every
later one). Elsewhere (SQLite) ``executemany`` of the one-row statement.

Like ``services.insert`` it names every concrete column of the model, so a field added later is
filled with its default; it sends no signals. Values for the given fields are plain Python values
(``str``, ``int``, ``datetime``, ``UUID``, ``None``) except the fields named ``prepared``, whose
values are already in their stored form (e.g. an encrypted payload's token).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.db.models import Model

DEFAULT_DB = "default"
_CONSTANT_FACTORIES = (list, dict)  # callable defaults that give the same stored value each time


class RowsWriter:
    def __init__(
        self, model: type[Model], *, given: Sequence[str], unique: Sequence[str],
        prepared: Sequence[str] = (),
    ) -> None:  # fmt: skip
        connection = connections[DEFAULT_DB]
        self.vendor = connection.vendor
        meta = model._meta
        fields = [f for f in meta.local_concrete_fields if not f.primary_key]
        by_name = {f.name: f for f in fields} | {f.attname: f for f in fields}
        unknown = set(given) - set(by_name)
        if unknown:
            raise ValueError(f"{model.__name__} has no field(s) {', '.join(sorted(unknown))}")
        position = {by_name[name].attname: i for i, name in enumerate(given)}
        self._plan: list[tuple[str, Any]] = []  # ("given", index) | ("call", fn) | ("const", v)
        for field in fields:
            if field.attname in position:
                index = position[field.attname]
                raw = given[index] in prepared or self.vendor == "postgresql"
                prep = None if raw else _preparer(field, connection)
                self._plan.append(("given", (index, prep)))
            elif (
                field.has_default()
                and callable(field.default)
                and field.default not in _CONSTANT_FACTORIES
            ):
                self._plan.append(("call", _default_caller(field, connection)))
            else:
                constant = field.get_db_prep_save(field.get_default(), connection)
                self._plan.append(("const", constant))
        quote = connection.ops.quote_name
        self.table = quote(meta.db_table)
        self.names = ", ".join(quote(f.column) for f in fields)
        self.conflict = ", ".join(quote(meta.get_field(name).column) for name in unique)
        self.temp = quote(f"_rows_{meta.db_table}")[:63]
        self._width = len(fields)
        # PostgreSQL: COPY straight into the table until a batch meets a row that is there.
        self.direct = self.vendor == "postgresql"
        # The common case on PostgreSQL: constants in a template, given values dropped in.
        self._template = [item if kind == "const" else None for kind, item in self._plan]
        direct = all(kind != "call" and (kind != "given" or item[1] is None)
                     for kind, item in self._plan)  # fmt: skip
        self._direct = [
            (position, item[0]) for position, (kind, item) in enumerate(self._plan)
            if kind == "given"
        ] if direct else None  # fmt: skip

    def row(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """A full stored row from the given fields' values (in ``given`` order)."""
        if self._direct is not None:  # every given value as it is, no per-row default: a copy
            out = self._template.copy()
            for position, index in self._direct:
                out[position] = values[index]
            return tuple(out)
        out = []
        for kind, item in self._plan:
            if kind == "given":
                index, prep = item
                out.append(values[index] if prep is None else prep(values[index]))
            elif kind == "call":
                out.append(item())
            else:
                out.append(item)
        return tuple(out)

    def write(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Store the rows (from ``row``) that are new; how many were."""
        if not rows:
            return 0
        connection = connections[DEFAULT_DB]
        if self.vendor == "postgresql":
            return self._copy(connection, rows)
        marks = ", ".join(["%s"] * self._width)
        sql = (
            f"INSERT INTO {self.table} ({self.names}) VALUES ({marks}) "  # noqa: S608
            f"ON CONFLICT ({self.conflict}) DO NOTHING"
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, list(rows))
            return max(cursor.rowcount, 0)

    def _copy(self, connection: Any, rows: Sequence[tuple[Any, ...]]) -> int:
        if self.direct:
            try:
                return self._copy_direct(connection, rows)
            except IntegrityError:  # a row was there already: from now on, rows may repeat
                self.direct = False
        return self._copy_through_temp(connection, rows)

    def _copy_direct(self, connection: Any, rows: Sequence[tuple[Any, ...]]) -> int:
        """COPY straight into the table: a third less work for the database than the temporary
        table, while no row repeats (a repeat fails the whole batch, which is rolled back)."""
        import psycopg

        try:
            with (
                transaction.atomic(),
                connection.cursor() as cursor,
                cursor.cursor.copy(f"COPY {self.table} ({self.names}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
        except psycopg.errors.UniqueViolation as exc:
            raise IntegrityError(str(exc)) from exc
        return len(rows)

    def _copy_through_temp(self, connection: Any, rows: Sequence[tuple[Any, ...]]) -> int:
        # Only quoted names from the model's metadata go into the text.
        with transaction.atomic(), connection.cursor() as cursor:
            raw = cursor.cursor
            raw.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {self.temp} ON COMMIT DELETE ROWS AS "  # noqa: S608
                f"SELECT {self.names} FROM {self.table} WITH NO DATA"
            )
            with raw.copy(f"COPY {self.temp} ({self.names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {self.table} ({self.names}) SELECT {self.names} "  # noqa: S608
                f"FROM {self.temp} ON CONFLICT ({self.conflict}) DO NOTHING"
            )
            return max(cursor.rowcount, 0)


def _preparer(field: Any, connection: Any) -> Callable[[Any], Any]:
    return lambda value: field.get_db_prep_save(value, connection)


def _default_caller(field: Any, connection: Any) -> Callable[[], Any]:
    return lambda: field.get_db_prep_save(field.get_default(), connection)
