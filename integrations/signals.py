"""Signal receivers that keep the SQLite embedded default usable by several processes."""

from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate
from django.dispatch import receiver


@receiver(post_migrate)
def sqlite_enable_wal(sender, using="default", **kwargs):  # noqa: ARG001
    # WAL persists in the database file, so it is set once after migrate rather than per
    # connection (per-connection PRAGMA journal_mode makes simultaneous starters fail "locked").
    from django.db import connections

    connection = connections[using]
    if connection.vendor == "sqlite" and not connection.settings_dict["NAME"].startswith(":memory"):
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")


@receiver(connection_created)
def sqlite_connection_pragmas(sender, connection, **kwargs):  # noqa: ARG001
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA synchronous=NORMAL")
