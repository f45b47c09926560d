"""The support list's event filter gets its index; the plain Komo-id index goes.

At 5 M submissions filtering by an event no recent row has walked the whole newest-first index
(p95 1.1 s in bench-volume). Support search now asks for a Komo id within the hubs it searches,
which the unique (hub, komo_id) index answers, so the plain komo_id index (539 MB at 5 M) is
dropped: the webhook's INSERT still writes as many index entries as before. Both online.
"""

import importlib

from django.contrib.postgres.operations import RemoveIndexConcurrently
from django.db import migrations, models

AddIndexOnline = importlib.import_module("integrations.migrations.0006_privacy").AddIndexOnline


class RemoveIndexOnline(RemoveIndexConcurrently):
    """DROP INDEX CONCURRENTLY on PostgreSQL, a plain DROP INDEX elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.RemoveIndex.database_forwards(
            self, app_label, schema_editor, from_state, to_state
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.RemoveIndex.database_backwards(
            self, app_label, schema_editor, from_state, to_state
        )

    def _ensure_not_in_transaction(self, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            super()._ensure_not_in_transaction(schema_editor)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("integrations", "0010_hub_stats")]

    operations = [
        AddIndexOnline(
            model_name="submission",
            index=models.Index(fields=["event", "-received_at"], name="submission_event_recent"),
        ),
        RemoveIndexOnline(model_name="submission", name="submission_komo_id"),
    ]
