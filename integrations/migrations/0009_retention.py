"""Retention: partial indexes on rows whose personal data is still kept (built CONCURRENTLY on
PostgreSQL, so writes go on), and the hourly django-q2 schedule of ``tasks.retention_apply``.

Numbered 0008 to leave 0007 to a parallel branch; it depends on 0006 only.
"""

import importlib

from django.db import migrations, models

AddIndexOnline = importlib.import_module("integrations.migrations.0006_privacy").AddIndexOnline

SCHEDULE = "integrations.retention_apply"


def create_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=SCHEDULE,
        defaults={
            "func": "integrations.tasks.retention_apply",
            "schedule_type": "H",  # HOURLY
            "repeats": -1,
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE).delete()


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ("integrations", "0008_hub_new_event_kinds"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [
        AddIndexOnline(
            model_name="submission",
            index=models.Index(
                condition=models.Q(("redacted_at__isnull", True)),
                fields=["hub", "received_at"],
                name="submission_unredacted",
            ),
        ),
        AddIndexOnline(
            model_name="deliveryattempt",
            index=models.Index(
                condition=models.Q(("redacted_at__isnull", True)),
                fields=["hub", "started_at"],
                name="attempt_unredacted",
            ),
        ),
        migrations.RunPython(create_schedule, delete_schedule),
    ]
