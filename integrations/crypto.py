"""Encryption at rest for secrets (Braze API keys, webhook signing secrets).

Keys come from ``settings.FIELD_ENCRYPTION_KEYS`` (url-safe base64 Fernet keys, newest first); the
first key encrypts, all of them decrypt, so a key can be rotated without downtime:
add the new key in front, run ``manage.py rotate_encryption_key``, then drop the old key.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _


class DecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key."""


def _dev_key() -> bytes:
    digest = hashlib.sha256(("field-encryption:" + settings.SECRET_KEY).encode()).digest()
    return base64.urlsafe_b64encode(digest)


@lru_cache(maxsize=4)
def _fernet_for(keys: tuple[str, ...], debug: bool) -> MultiFernet:
    if not keys:
        if not debug:
            raise ImproperlyConfigured(
                _(
                    "FIELD_ENCRYPTION_KEYS must be set when DEBUG is off (generate one with "
                    "`python manage.py generate_encryption_key`)."
                )
            )
        return MultiFernet([Fernet(_dev_key())])
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            _("FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key.")
        ) from exc


def fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.DEBUG)


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def encrypt_bytes(data: bytes) -> str:
    return fernet().encrypt(data).decode()


def decrypt_bytes(token: str) -> bytes:
    try:
        return fernet().decrypt(token.encode())
    except InvalidToken as exc:
        raise DecryptionError(
            "stored value cannot be decrypted with FIELD_ENCRYPTION_KEYS"
        ) from exc


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            "stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS"
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt a stored token under the first (newest) key."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            "stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS"
        ) from exc


@lru_cache(maxsize=4)
def _first_fernet(keys: tuple[str, ...], debug: bool) -> Fernet:
    _fernet_for(keys, debug)  # the same checks and messages
    return Fernet(keys[0].encode()) if keys else Fernet(_dev_key())


def is_current(token: str) -> bool:
    """Whether a stored token is already under the first (newest) key, so that a rotation can
    leave it alone: one decryption with that key instead of a re-encryption and a write."""
    try:
        _first_fernet(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.DEBUG).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def generate_key() -> str:
    return Fernet.generate_key().decode()


def fingerprint(secret: str) -> str:
    """A stable, non-reversible id for a secret (used to share one rate budget per API key)."""
    return hashlib.sha256(("fp:" + secret).encode()).hexdigest()[:32]
