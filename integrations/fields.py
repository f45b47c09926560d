"""Model fields that keep secrets encrypted at rest."""

from __future__ import annotations

from django.db import models

from integrations import crypto

# Every Fernet token starts with its version byte 0x80, base64-encoded.
FERNET_TOKEN_PREFIX = "gAAAAA"


class EncryptedTextField(models.TextField):
    """Stores a str encrypted with MultiFernet; Python code only ever sees the plaintext.

    Never rendered by default widgets: forms must use a write-only field (see forms.SecretField).
    """

    def from_db_value(self, value, expression, connection):  # noqa: ARG002
        if value is None or value == "":
            return value
        return crypto.decrypt(value)

    def value_to_string(self, obj):
        """Serialisation (``dumpdata``, fixtures) writes the ciphertext, never the secret."""
        value = self.value_from_object(obj)
        return crypto.encrypt(value) if value else value

    def to_python(self, value):
        """``loaddata`` hands back what ``value_to_string`` wrote: decrypt it. Anything that is
        not a token under one of our keys is plaintext (forms, ``full_clean``)."""
        if isinstance(value, str) and value.startswith(FERNET_TOKEN_PREFIX):
            try:
                return crypto.decrypt(value)
            except crypto.DecryptionError:
                return value
        return value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(value)
