"""The token format of encryption at rest (``integrations.crypto``): AES-256-GCM under the
newest of FIELD_ENCRYPTION_KEYS, every configured key readable, Fernet tokens of before still
read and rewritten by a rotation."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from integrations import crypto


@pytest.fixture
def keys(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    return settings, old, new


def test_round_trip_in_the_aes_gcm_format_with_a_fresh_nonce_each_time(keys):
    token = crypto.encrypt("anna@example.com")
    assert token.startswith(crypto.GCM_PREFIX) and crypto.is_token(token)
    assert "anna" not in token
    assert crypto.decrypt(token) == "anna@example.com"
    assert crypto.encrypt("anna@example.com") != token  # random nonce
    raw = base64.urlsafe_b64decode(token[len(crypto.GCM_PREFIX):])
    assert len(raw) == 4 + 12 + len("anna@example.com") + 16  # key id, nonce, text, tag
    assert crypto.decrypt_bytes(crypto.encrypt_bytes(b"\x00\xff")) == b"\x00\xff"


def test_a_changed_token_is_refused_not_misread(keys):
    token = crypto.encrypt("anna@example.com")
    raw = bytearray(base64.urlsafe_b64decode(token[len(crypto.GCM_PREFIX):]))
    raw[20] ^= 1  # one bit of the ciphertext
    changed = crypto.GCM_PREFIX + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(changed)
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(crypto.GCM_PREFIX + "not base64 at all!")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt("plain text")


def test_every_configured_key_reads_and_only_the_newest_is_current(keys):
    settings, old, new = keys
    under_old = crypto.encrypt("x")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert crypto.decrypt(under_old) == "x"
    assert not crypto.is_current(under_old)
    rotated = crypto.rotate(under_old)
    assert crypto.is_current(rotated) and crypto.decrypt(rotated) == "x"
    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key is gone
    assert crypto.decrypt(rotated) == "x"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(under_old)


def test_fernet_tokens_of_before_are_read_and_rotated_to_aes_gcm(keys):
    settings, old, new = keys
    legacy = Fernet(old.encode()).encrypt(b"anna@example.com").decode()
    assert crypto.is_token(legacy) and crypto.decrypt(legacy) == "anna@example.com"
    assert not crypto.is_current(legacy)  # even under the newest key: the format is old
    rotated = crypto.rotate(legacy)
    assert rotated.startswith(crypto.GCM_PREFIX) and crypto.is_current(rotated)
    settings.FIELD_ENCRYPTION_KEYS = [new]
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(legacy)


def test_a_key_that_is_not_a_key_is_named(settings):
    settings.FIELD_ENCRYPTION_KEYS = ["not-a-key"]
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS"):
        crypto.encrypt("x")
