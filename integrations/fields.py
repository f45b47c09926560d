"""Model fields that keep secrets encrypted at rest."""

from __future__ import annotations

from django.db import models

from integrations import crypto


class EncryptedTextField(models.TextField):
    """Stores a str encrypted with MultiFernet; Python code only ever sees the plaintext.

    Never rendered by default widgets: forms must use a write-only field (see forms.SecretField).
    """

    def from_db_value(self, value, expression, connection):  # noqa: ARG002
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(value)
