"""Encryption at rest: secrets (Braze API keys, webhook signing secrets) and personal data (the
payloads, problems, Braze bodies and answers kept for support).

Keys come from ``settings.FIELD_ENCRYPTION_KEYS`` (url-safe base64 keys of 32 bytes, as
``generate_encryption_key`` prints them; newest first). The first key encrypts, all of them
decrypt, so a key can be rotated without downtime: add the new key in front, run
``manage.py rotate_encryption_key``, then drop the old key.

Values are written as AES-256-GCM tokens (docs/decisions.md, "AES-GCM tokens"):
``aesgcm1:`` + base64url(key id (4 bytes) ‖ nonce (12 random bytes) ‖ ciphertext ‖ tag (16)).
The AES key is derived from the configured key with HKDF-SHA256; the key id (the first bytes
of an HMAC under the derived key) names the key that wrote a token, so reading one takes a single
decryption and a rotation knows what is current without trying. This is the construction of
Google Tink's AES-GCM primitive (random 96-bit nonces, one derived key per configured key), from
the ``cryptography`` package's ``AESGCM``: one call per value, where a Fernet token cost a new
cipher, padder and HMAC object for each (a tenth of the webhook's CPU, docs/scaling.md).

Fernet tokens (``gAAAAA…``) written before are still read under the same keys, and
``rotate_encryption_key`` rewrites them as AES-GCM tokens under the newest key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _

GCM_PREFIX = "aesgcm1:"
# Every Fernet token starts with its version byte 0x80 and a timestamp, base64-encoded.
FERNET_PREFIX = "gAAAAA"
TOKEN_PREFIXES = (GCM_PREFIX, FERNET_PREFIX)

_KEY_ID_BYTES = 4
_NONCE_BYTES = 12
_HKDF_INFO = b"komo-braze-portal: field encryption, AES-256-GCM, v1"


class DecryptionError(Exception):
    """A stored value could not be decrypted with any configured key."""


@dataclass(frozen=True)
class _Key:
    key_id: bytes
    aead: AESGCM


@dataclass(frozen=True)
class _Keyring:
    keys: tuple[_Key, ...]  # newest first
    fernet: MultiFernet  # reads tokens written before AES-GCM


def _dev_key() -> bytes:
    digest = hashlib.sha256(("field-encryption:" + settings.SECRET_KEY).encode()).digest()
    return base64.urlsafe_b64encode(digest)


def _derive(raw: bytes) -> _Key:
    secret = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(raw)
    key_id = hmac.new(secret, b"key id", hashlib.sha256).digest()[:_KEY_ID_BYTES]
    return _Key(key_id, AESGCM(secret))


@lru_cache(maxsize=4)
def _keyring_for(keys: tuple[str, ...], debug: bool) -> _Keyring:
    if not keys:
        if not debug:
            raise ImproperlyConfigured(
                _(
                    "FIELD_ENCRYPTION_KEYS must be set when DEBUG is off (generate one with "
                    "`python manage.py generate_encryption_key`)."
                )
            )
        encoded = [_dev_key()]
    else:
        encoded = [key.encode() for key in keys]
    try:
        fernets = [Fernet(key) for key in encoded]  # checks each: 32 bytes, url-safe base64
    except ValueError as exc:
        raise ImproperlyConfigured(
            _("FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key.")
        ) from exc
    derived = tuple(_derive(base64.urlsafe_b64decode(key)) for key in encoded)
    return _Keyring(derived, MultiFernet(fernets))


def _keyring() -> _Keyring:
    return _keyring_for(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.DEBUG)


def is_token(value: object) -> bool:
    """Whether a stored value is a token of ours (else it is plaintext from before encryption)."""
    return isinstance(value, str) and value.startswith(TOKEN_PREFIXES)


def encrypt_bytes(data: bytes) -> str:
    key = _keyring().keys[0]
    nonce = os.urandom(_NONCE_BYTES)
    sealed = key.aead.encrypt(nonce, data, None)
    return GCM_PREFIX + base64.urlsafe_b64encode(key.key_id + nonce + sealed).decode("ascii")


def encrypt(plaintext: str) -> str:
    return encrypt_bytes(plaintext.encode())


def _gcm_parts(token: str) -> tuple[bytes, bytes, bytes]:
    """(key id, nonce, ciphertext with its tag) of an AES-GCM token."""
    try:
        raw = base64.urlsafe_b64decode(token[len(GCM_PREFIX):])
    except (binascii.Error, ValueError):
        raise DecryptionError("stored value is not a readable token") from None
    nonce_end = _KEY_ID_BYTES + _NONCE_BYTES
    return raw[:_KEY_ID_BYTES], raw[_KEY_ID_BYTES:nonce_end], raw[nonce_end:]


def _gcm_open(keys: tuple[_Key, ...], token: str) -> bytes:
    key_id, nonce, sealed = _gcm_parts(token)
    for key in keys:
        if key.key_id != key_id:
            continue
        try:
            return key.aead.decrypt(nonce, sealed, None)
        except InvalidTag:
            continue
    raise DecryptionError("stored value cannot be decrypted with FIELD_ENCRYPTION_KEYS")


def decrypt_bytes(token: str) -> bytes:
    keyring = _keyring()
    if token.startswith(GCM_PREFIX):
        return _gcm_open(keyring.keys, token)
    try:
        return keyring.fernet.decrypt(token.encode())
    except InvalidToken:
        raise DecryptionError(
            "stored value cannot be decrypted with FIELD_ENCRYPTION_KEYS"
        ) from None


def decrypt(token: str) -> str:
    return decrypt_bytes(token).decode()


def is_current(token: str) -> bool:
    """Whether a stored token is already an AES-GCM token under the first (newest) key, so that
    a rotation can leave it alone."""
    if not token.startswith(GCM_PREFIX):
        return False
    try:
        _gcm_open(_keyring().keys[:1], token)
    except DecryptionError:
        return False
    return True


def rotate(token: str) -> str:
    """The value of a stored token, encrypted again under the first (newest) key."""
    return encrypt_bytes(decrypt_bytes(token))


def generate_key() -> str:
    return Fernet.generate_key().decode()


def fingerprint(secret: str) -> str:
    """A stable, non-reversible id for a secret (used to share one rate budget per API key)."""
    return hashlib.sha256(("fp:" + secret).encode()).hexdigest()[:32]
