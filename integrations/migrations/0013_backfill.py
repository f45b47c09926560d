"""Backfills from CSV exports: the Backfill model and the Submission.backfill marker.

Cheap on a big submissions table: a nullable column without a default (a catalogue change) and a
partial index built CONCURRENTLY on PostgreSQL (it holds no rows yet: every old row is live).
"""

import importlib

import django.db.models.deletion
import django.utils.timezone
import uuid
from django.conf import settings
from django.db import migrations, models


# The online index operation of 0006 (CONCURRENTLY on PostgreSQL), one definition for all.
AddIndexOnline = importlib.import_module("integrations.migrations.0006_privacy").AddIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('integrations', '0012_health_alerts_audit'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Backfill',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ('started_by', models.CharField(blank=True, max_length=150, verbose_name='started by')),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='uploaded')),
                ('started_at', models.DateTimeField(blank=True, null=True, verbose_name='started')),
                ('imported_at', models.DateTimeField(blank=True, null=True, verbose_name='file read')),
                ('finished_at', models.DateTimeField(blank=True, null=True, verbose_name='finished')),
                ('status', models.CharField(choices=[('draft', 'Not started'), ('running', 'Running'), ('paused', 'Paused'), ('cancelled', 'Cancelled'), ('finished', 'Finished'), ('failed', 'Stopped: the file could not be read')], default='draft', max_length=20, verbose_name='status')),
                ('error', models.TextField(blank=True, verbose_name='error')),
                ('file_name', models.CharField(max_length=255, verbose_name='file')),
                ('file_size', models.BigIntegerField(default=0, verbose_name='size in bytes')),
                ('stored_name', models.CharField(editable=False, max_length=1000)),
                ('delimiter', models.CharField(default=',', max_length=1)),
                ('header', models.JSONField(default=list)),
                ('columns', models.JSONField(blank=True, default=dict, verbose_name='column → Komo key')),
                ('event', models.CharField(default='CompetitionEntrySuccess', max_length=200, verbose_name='event kind')),
                ('id_column', models.CharField(blank=True, max_length=200, verbose_name='unique id column')),
                ('time_column', models.CharField(blank=True, max_length=200, verbose_name='time column')),
                ('time_format', models.CharField(default='iso', max_length=100, verbose_name='time format')),
                ('bytes_read', models.BigIntegerField(default=0)),
                ('rows_read', models.PositiveIntegerField(default=0, verbose_name='rows read')),
                ('rows_queued', models.PositiveIntegerField(default=0, verbose_name='queued')),
                ('rows_duplicate', models.PositiveIntegerField(default=0, verbose_name='already there')),
                ('rows_bad', models.PositiveIntegerField(default=0, verbose_name='unreadable rows')),
                ('rows_removed', models.PositiveIntegerField(default=0, verbose_name='removed on cancel')),
                ('hub', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='backfills', to='integrations.hub')),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'backfill',
                'verbose_name_plural': 'backfills',
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AddField(
            model_name='submission',
            name='backfill',
            field=models.ForeignKey(blank=True, db_index=False, editable=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='submissions', to='integrations.backfill'),
        ),
        AddIndexOnline(
            model_name='submission',
            index=models.Index(condition=models.Q(('backfill__isnull', False)), fields=['backfill', 'status'], name='submission_backfill'),
        ),
        AddIndexOnline(
            model_name='submission',
            index=models.Index(condition=models.Q(('backfill__isnull', True), ('status', 'pending')), fields=['hub', 'next_attempt_at'], name='submission_due_live'),
        ),
    ]
