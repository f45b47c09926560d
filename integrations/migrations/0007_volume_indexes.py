"""Indexes for the pages at volume (issue 9; docs/decisions.md, "Fast at volume").

Online on PostgreSQL: every index is built (and the replaced one dropped) CONCURRENTLY, so
webhooks keep being stored while a big table is indexed. The webhook's INSERT writes as many
index entries as before: ``submission_recent`` (newest first across hubs: the admin list and its
date filter) replaces ``submission_status_recent``, whose work the partial indexes of failed and
held rows take over; the partial indexes only ever hold statuses the webhook does not write.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models

PROBLEM = models.Q(("status__in", ("failed", "held")))


class _OnlineOnPostgres:
    """CONCURRENTLY on PostgreSQL (writes go on), the plain operation elsewhere."""

    plain: type

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return self.plain.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return self.plain.database_backwards(self, app_label, schema_editor, from_state, to_state)

    def _ensure_not_in_transaction(self, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            super()._ensure_not_in_transaction(schema_editor)


class AddIndexOnline(_OnlineOnPostgres, AddIndexConcurrently):
    plain = migrations.AddIndex


class RemoveIndexOnline(_OnlineOnPostgres, RemoveIndexConcurrently):
    plain = migrations.RemoveIndex


class Migration(migrations.Migration):
    atomic = False  # CREATE / DROP INDEX CONCURRENTLY run outside a transaction

    dependencies = [
        ("integrations", "0006_privacy"),
    ]

    operations = [
        AddIndexOnline(
            model_name="deliveryattempt",
            index=models.Index(fields=["hub", "-started_at", "-id"], name="attempt_hub_recent"),
        ),
        AddIndexOnline(
            model_name="submission",
            index=models.Index(fields=["-received_at", "-id"], name="submission_recent"),
        ),
        AddIndexOnline(
            model_name="submission",
            index=models.Index(condition=PROBLEM, fields=["status", "-received_at"],
                               name="submission_problem_recent"),
        ),
        AddIndexOnline(
            model_name="submission",
            index=models.Index(condition=PROBLEM, fields=["hub", "status", "-received_at"],
                               name="submission_hub_problem"),
        ),
        AddIndexOnline(
            model_name="submission",
            index=models.Index(condition=models.Q(("status", "delivered")),
                               fields=["hub", "-delivered_at"], name="submission_hub_delivered"),
        ),
        RemoveIndexOnline(model_name="submission", name="submission_status_recent"),
    ]
