"""Model fields that keep secrets and personal data encrypted at rest.

Both fields store tokens of ``crypto`` (AES-256-GCM under FIELD_ENCRYPTION_KEYS, newest key first;
Fernet tokens written before are read too) in a text column; Python code only ever sees the
plaintext. An empty value is stored as
"" (no token), so "nothing kept" (e.g. after retention) costs no bytes and no decryption.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from django.db import models

from integrations import crypto

# JSON text longer than this is compressed before it is encrypted (ciphertext does not compress,
# so the database's own compression no longer helps): a Braze request of 75 people shrinks from
# ~70 KB to ~4 KB. Shorter text (a webhook body) is not worth the CPU. A zlib stream starts with
# 0x78 ("x"), which no JSON text does, so each value says which it is.
COMPRESS_OVER_BYTES = 1024
_ZLIB_FIRST_BYTE = b"x"


def json_seal(text: str) -> str:
    data = text.encode()
    if len(data) > COMPRESS_OVER_BYTES:
        data = zlib.compress(data, 1)
    return crypto.encrypt_bytes(data)


def json_open(token: str) -> Any:
    data = crypto.decrypt_bytes(token)
    if data[:1] == _ZLIB_FIRST_BYTE:
        data = zlib.decompress(data)
    return json.loads(data)


is_token = crypto.is_token


class EncryptedTextField(models.TextField):
    """Stores a str encrypted (``crypto``).

    Never rendered by default widgets: forms must use a write-only field (see forms.SecretField).
    A stored value that is not a token is plaintext kept from before its column was encrypted
    (``manage.py privacy_upgrade`` encrypts those in batches); it is read as it is meanwhile.
    """

    def from_db_value(self, value, expression, connection):  # noqa: ARG002
        if value is None or value == "" or not is_token(value):
            return value
        return crypto.decrypt(value)

    def value_to_string(self, obj):
        """Serialisation (``dumpdata``, fixtures) writes the ciphertext, never the secret."""
        value = self.value_from_object(obj)
        return crypto.encrypt(value) if value else value

    def to_python(self, value):
        """``loaddata`` hands back what ``value_to_string`` wrote: decrypt it. Anything that is
        not a token under one of our keys is plaintext (forms, ``full_clean``)."""
        if is_token(value):
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


class EncryptedJSONField(models.TextField):
    """A JSON value (dict, list, …) stored as the token (``crypto``) of its JSON text; None is "".

    Not queryable by content (by design: nothing can filter on what it cannot read); search goes
    through the blind index (``blind_index``).
    """

    description = "JSON, encrypted at rest"

    def __init__(self, *args: Any, empty: type | None = None, **kwargs: Any) -> None:
        """``empty``: ``list`` or ``dict`` when an empty one is the field's "nothing": it is
        stored as "" (no token) and read back as a new empty one."""
        self.empty = empty
        kwargs.setdefault("default", empty if empty is not None else None)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if self.empty is not None:
            kwargs["empty"] = self.empty
        if kwargs.get("default") is (self.empty if self.empty is not None else None):
            kwargs.pop("default", None)
        if kwargs.get("blank") is True:
            kwargs.pop("blank", None)
        return name, path, args, kwargs

    def _nothing(self):
        return self.empty() if self.empty is not None else None

    def get_internal_type(self) -> str:
        return "TextField"

    def from_db_value(self, value, expression, connection):  # noqa: ARG002
        if value is None or value == "":
            return self._nothing()
        return json_open(value)

    def to_python(self, value):
        if is_token(value):
            try:
                return json_open(value)
            except (crypto.DecryptionError, ValueError):
                return value
        return value

    def get_prep_value(self, value):
        if value is None or value == "" or (self.empty is not None and value == self.empty()):
            return ""
        return json_seal(json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def get_db_prep_json_text(self, text: str) -> str:
        """The stored form of JSON text already checked by the caller (the webhook's body)."""
        return json_seal(text) if text else ""

    def value_to_string(self, obj):
        """``dumpdata`` writes the ciphertext."""
        return self.get_prep_value(self.value_from_object(obj))

    def formfield(self, **kwargs):  # never an editable text box of ciphertext or plaintext
        return None
