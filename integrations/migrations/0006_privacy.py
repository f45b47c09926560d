"""Personal data encrypted at rest, the blind index, retention, erasure and access records.

Cheap on a big table (no rewrite, no long lock): plain columns are renamed to ``*_legacy`` and
made nullable (catalogue changes), the encrypted columns are added with a constant default, and
the blind-index indexes are built CONCURRENTLY on PostgreSQL. ``manage.py privacy_upgrade``
then encrypts and indexes the old rows in batches while the portal runs.
"""

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

import integrations.fields

HASH_COLUMNS = ("email_hash", "email_local_hash", "phone_hash", "external_id_hash")


class AddIndexOnline(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL (writes go on), a plain CREATE INDEX elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(
            self, app_label, schema_editor, from_state, to_state
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(
            self, app_label, schema_editor, from_state, to_state
        )

    def _ensure_not_in_transaction(self, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            super()._ensure_not_in_transaction(schema_editor)


def _legacy(model_name, name):
    return [
        migrations.RenameField(model_name=model_name, old_name=name, new_name=f"{name}_legacy"),
        migrations.AlterField(
            model_name=model_name,
            name=f"{name}_legacy",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
    ]


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ("integrations", "0005_fieldmapping_subscription_group_id"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        *_legacy("submission", "payload"),
        migrations.AddField(
            model_name="submission",
            name="payload",
            field=integrations.fields.EncryptedJSONField(verbose_name="payload as received"),
        ),
        *_legacy("submission", "problems"),
        migrations.AddField(
            model_name="submission",
            name="problems",
            field=integrations.fields.EncryptedJSONField(empty=list, verbose_name="problems"),
        ),
        migrations.RemoveField(model_name="submission", name="person_email"),
        migrations.RemoveField(model_name="submission", name="person_phone"),
        migrations.RemoveField(model_name="submission", name="person_external_id"),
        *(
            migrations.AddField(
                model_name="submission",
                name=column,
                field=models.CharField(blank=True, default="", editable=False, max_length=32),
            )
            for column in HASH_COLUMNS
        ),
        migrations.AddField(
            model_name="submission",
            name="redacted_at",
            field=models.DateTimeField(
                blank=True, null=True, verbose_name="personal data removed"
            ),
        ),
        *(
            AddIndexOnline(
                model_name="submission",
                index=models.Index(
                    condition=~models.Q((column, "")),
                    fields=[column],
                    name=f"submission_{column}",
                ),
            )
            for column in HASH_COLUMNS
        ),
        *_legacy("deliveryattempt", "request_body"),
        migrations.AddField(
            model_name="deliveryattempt",
            name="request_body",
            field=integrations.fields.EncryptedJSONField(empty=dict),
        ),
        migrations.AlterField(
            model_name="deliveryattempt",
            name="response_body",
            field=integrations.fields.EncryptedTextField(blank=True),
        ),
        migrations.AddField(
            model_name="deliveryattempt",
            name="redacted_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="attemptitem",
            name="error",
            field=integrations.fields.EncryptedTextField(blank=True),
        ),
        *_legacy("transactionalsend", "request_body"),
        migrations.AddField(
            model_name="transactionalsend",
            name="request_body",
            field=integrations.fields.EncryptedJSONField(empty=dict),
        ),
        migrations.AlterField(
            model_name="transactionalsend",
            name="response_body",
            field=integrations.fields.EncryptedTextField(blank=True),
        ),
        migrations.AddField(
            model_name="hub",
            name="retention_days",
            field=models.PositiveIntegerField(
                default=90,
                help_text=(
                    "Submissions and delivery records older than this lose their personal data "
                    "(payload, Braze requests and answers); status, times and counts stay."
                ),
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(3650),
                ],
                verbose_name="keep personal data for (days)",
            ),
        ),
        migrations.AlterField(
            model_name="hubmembership",
            name="role",
            field=models.CharField(
                choices=[
                    ("health", "Can view health (no personal data)"),
                    ("viewer", "Can view (support)"),
                    ("editor", "Can edit (marketer)"),
                ],
                default="viewer",
                max_length=10,
            ),
        ),
        migrations.CreateModel(
            name="ErasureRecord",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ("actor", models.CharField(blank=True, max_length=150)),
                ("identifier_kind", models.CharField(max_length=20)),
                ("hub_slugs", models.JSONField(default=list)),
                ("counts", models.JSONField(default=dict)),
                ("braze_outcome", models.CharField(blank=True, max_length=30)),
                ("braze_answer", models.TextField(blank=True)),
                ("user", models.ForeignKey(blank=True, null=True,
                                           on_delete=django.db.models.deletion.SET_NULL,
                                           to=settings.AUTH_USER_MODEL)),
            ],
            options={"verbose_name": "erasure", "verbose_name_plural": "erasures",
                     "ordering": ["-at", "-id"]},
        ),
        migrations.CreateModel(
            name="AccessRecord",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("at", models.DateTimeField(default=django.utils.timezone.now)),
                ("username", models.CharField(blank=True, max_length=150)),
                ("submission_public_id", models.UUIDField()),
                ("page", models.CharField(max_length=40)),
                ("hub", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                          related_name="access_records",
                                          to="integrations.hub")),
                ("submission", models.ForeignKey(blank=True, null=True,
                                                 on_delete=django.db.models.deletion.SET_NULL,
                                                 related_name="+",
                                                 to="integrations.submission")),
                ("user", models.ForeignKey(blank=True, null=True,
                                           on_delete=django.db.models.deletion.SET_NULL,
                                           to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "verbose_name": "access to personal data",
                "verbose_name_plural": "access to personal data",
                "ordering": ["-at", "-id"],
                "indexes": [
                    models.Index(fields=["hub", "-at"], name="access_hub_recent"),
                    models.Index(fields=["user", "-at"], name="access_user_recent"),
                ],
            },
        ),
    ]
