"""Hourly counts per hub for the dashboard's charts, and the django-q2 schedule that keeps them
(``tasks.hub_stats_refresh``, every minute). Nothing is computed here: the first run of the task
fills each hub's last 30 days from bounded index scans (docs/decisions.md, "Charts")."""

import django.db.models.deletion
from django.db import migrations, models

SCHEDULE = "integrations.hub_stats_refresh"


def create_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.update_or_create(
        name=SCHEDULE,
        defaults={
            "func": "integrations.tasks.hub_stats_refresh",
            "schedule_type": "I",  # MINUTES
            "minutes": 1,
            "repeats": -1,
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0009_retention"),
        ("django_q", "0018_task_success_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="HubHourlyStats",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("hour", models.DateTimeField()),
                ("source", models.CharField(choices=[("live", "Live"), ("backfill", "Backfill")],
                                            default="live", max_length=10)),
                ("received", models.PositiveIntegerField(default=0)),
                ("received_delivered", models.PositiveIntegerField(default=0)),
                ("received_pending", models.PositiveIntegerField(default=0)),
                ("received_held", models.PositiveIntegerField(default=0)),
                ("received_failed", models.PositiveIntegerField(default=0)),
                ("received_ignored", models.PositiveIntegerField(default=0)),
                ("delivered", models.PositiveIntegerField(default=0)),
                ("delay_histogram", models.JSONField(blank=True, default=list)),
                ("answers_2xx", models.PositiveIntegerField(default=0)),
                ("answers_4xx", models.PositiveIntegerField(default=0)),
                ("answers_429", models.PositiveIntegerField(default=0)),
                ("answers_5xx", models.PositiveIntegerField(default=0)),
                ("answers_network", models.PositiveIntegerField(default=0)),
                ("computed_at", models.DateTimeField()),
                ("hub", models.ForeignKey(db_index=False,
                                          on_delete=django.db.models.deletion.CASCADE,
                                          related_name="hourly_stats",
                                          to="integrations.hub")),
            ],
            options={
                "verbose_name": "hourly hub statistics",
                "verbose_name_plural": "hourly hub statistics",
                "constraints": [models.UniqueConstraint(fields=("hub", "source", "hour"),
                                                        name="hub_stats_hour")],
            },
        ),
        migrations.RunPython(create_schedule, delete_schedule),
    ]
