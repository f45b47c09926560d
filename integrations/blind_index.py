"""Searchable, non-reversible stand-ins for a person's identifiers (a "blind index").

Submissions keep a person's values only encrypted (``fields.EncryptedJSONField``). To find them
again, intake stores keyed hashes of the normalised identifiers beside them: HMAC-SHA256 under
``settings.BLIND_INDEX_KEY`` of ``"<kind>:<normalised value>"``, cut to 128 bits. A database dump
shows neither the values nor a hash anyone without the key could compute from a guessed address.

The kinds, and how a value is normalised before hashing (support types what people write):

* ``email``: trimmed, lower-cased; ``email_local``: the part before the ``@`` of the same
* ``phone``: E.164 read with the hub's default region (``0412 555 019`` in AU and
  ``+61 412 555 019`` hash alike); a text that is no valid number: its digits and a leading +
* ``external_id``: trimmed

Normalisation is pure; hashing reads the key from settings (like ``crypto``), nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from django.conf import settings

from integrations.values import phone_e164

HASH_CHARS = 32  # 128 bits of HMAC-SHA256, hex

KINDS = ("email", "email_local", "phone", "external_id")


@lru_cache(maxsize=4)
def _key_bytes(configured: str, secret_key: str) -> bytes:
    if configured:
        return configured.encode()
    # Without BLIND_INDEX_KEY: derived from SECRET_KEY (docs/decisions.md: set it in production
    # so SECRET_KEY can rotate without re-indexing).
    return hmac.new(secret_key.encode(), b"komo-portal blind index", hashlib.sha256).digest()


def _key() -> bytes:
    return _key_bytes(getattr(settings, "BLIND_INDEX_KEY", "") or "", settings.SECRET_KEY)


def blind_hash(kind: str, normalised: str, *, key: bytes | None = None) -> str:
    """The keyed hash of an already normalised value; "" for an empty one. ``key``: the key
    (``_key()``) when the caller hashes several values. (``hmac.digest``: one call into
    OpenSSL, where an ``hmac.HMAC`` object costs a dozen calls of Python per value.)"""
    if not normalised:
        return ""
    message = f"{kind}:{normalised}".encode()
    return hmac.digest(key or _key(), message, "sha256").hex()[:HASH_CHARS]


def short_digest(text: str) -> str:
    """A short keyed digest (64 bits, keyed BLAKE2b) of a value, for comparing values kept
    elsewhere (``DeliveredValue``) without keeping them or an unkeyed hash of them."""
    return hashlib.blake2b(text.encode(), digest_size=8, key=_key()[:64]).hexdigest()


# --- normalisation (pure) ---------------------------------------------------------------------


def email_normal(text: str) -> str:
    return text.strip().lower() if isinstance(text, str) else ""


def email_local_normal(text: str) -> str:
    """The part before the ``@`` (the whole text when it has none), lower-cased."""
    return email_normal(text).rsplit("@", 1)[0] if "@" in (text or "") else email_normal(text)


_NOT_DIGITS = re.compile(r"\D")


@lru_cache(maxsize=256)
def _dialling(region: str) -> tuple[str, str] | None:
    """(country calling code, national prefix) of a region, from libphonenumber's metadata."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.strip().upper(), None)
    if metadata is None or not metadata.country_code:
        return None
    return str(metadata.country_code), metadata.national_prefix or ""


def phone_normal(text: str, region: str) -> str:
    """A phone as the one text every spelling of it shares: ``+`` and the digits of its E.164
    form. ``0412 555 019`` in AU, ``+61 412 555 019`` and ``+61412555019`` all give
    ``+61412555019``. Written with a + it is its digits; a national number (without +) gets the
    region's country code in place of its national prefix; numbers dialled with an
    international prefix (``00…``) are read by libphonenumber. Not a validity check: mapping
    validates (``values.normalise_phone``); this only has to agree with itself, cheaply (it
    runs in the webhook: libphonenumber's parse and check cost ~30 µs, this ~2 µs)."""
    if not isinstance(text, str):
        return ""
    stripped = text.strip()
    digits = _NOT_DIGITS.sub("", stripped)
    if not digits:
        return ""
    if stripped.startswith("+"):
        return "+" + digits
    dialling = _dialling(region) if region else None
    if dialling is None:
        return digits
    country_code, national_prefix = dialling
    if digits.startswith("00"):
        e164 = phone_e164(stripped, region)
        return e164 if e164 else digits
    if national_prefix and digits.startswith(national_prefix):
        digits = digits[len(national_prefix):]
    return "+" + country_code + digits


def external_id_normal(text: str) -> str:
    return text.strip() if isinstance(text, str) else ""


# --- a person's identifiers in a payload (pure) -----------------------------------------------

_EMAIL_IDENTITIES = frozenset({"alias_email", "email"})
_PHONE_IDENTITIES = frozenset({"alias_phone", "phone"})


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


@dataclass(frozen=True)
class Person:
    """Who a submission is about, as captured: the hub's identity value where it is one of
    these, else the body's own ``email`` / ``phone`` (or ``mobile``)."""

    email: str = ""
    phone: str = ""
    external_id: str = ""

    @property
    def label(self) -> str:
        return self.email or self.phone or self.external_id

    @property
    def masked(self) -> str:
        """Enough to tell people apart in a list, too little to contact them."""
        if self.email:
            local, _at, domain = self.email.partition("@")
            return f"{local[:1]}•••@{domain}" if domain else local[:1] + "•••"
        if self.phone:
            return "•••" + self.phone[-3:]
        if self.external_id:
            return self.external_id[:2] + "•••"
        return ""


def person_of(payload: object, *, identity_type: str, identity_field: str) -> Person:
    if not isinstance(payload, dict):
        return Person()
    identity_value = _text(payload.get(identity_field))
    email = identity_value if identity_type in _EMAIL_IDENTITIES else ""
    phone = identity_value if identity_type in _PHONE_IDENTITIES else ""
    external_id = identity_value if identity_type == "external_id" else ""
    return Person(
        email=email or _text(payload.get("email")),
        phone=phone or _text(payload.get("phone")) or _text(payload.get("mobile")),
        external_id=external_id,
    )


# --- what intake stores, what search looks for ------------------------------------------------


@dataclass(frozen=True)
class PersonHashes:
    email_hash: str = ""
    email_local_hash: str = ""
    phone_hash: str = ""
    external_id_hash: str = ""

    def as_columns(self) -> dict[str, str]:
        return {
            "email_hash": self.email_hash,
            "email_local_hash": self.email_local_hash,
            "phone_hash": self.phone_hash,
            "external_id_hash": self.external_id_hash,
        }


def person_hashes(person: Person, *, region: str) -> PersonHashes:
    key = _key()
    email_text = email_normal(person.email)
    has_email = "@" in email_text
    return PersonHashes(
        email_hash=blind_hash("email", email_text, key=key) if has_email else "",
        email_local_hash=blind_hash("email_local", email_text.rsplit("@", 1)[0], key=key)
        if has_email else "",
        phone_hash=blind_hash("phone", phone_normal(person.phone, region), key=key)
        if person.phone else "",
        external_id_hash=blind_hash(
            "external_id", external_id_normal(person.external_id), key=key
        ) if person.external_id else "",
    )  # fmt: skip


@dataclass(frozen=True)
class SearchHashes:
    """What one support search term may be: each column's hash(es) to look for."""

    email: str = ""
    email_local: str = ""
    phones: tuple[str, ...] = ()
    external_id: str = ""


def search_hashes(term: str, *, regions: tuple[str, ...] = ("",)) -> SearchHashes:
    """A term as typed (an email, the part before its ``@``, a phone in any format, an external
    id) → the hashes to look for. ``regions``: the default phone regions of the hubs searched
    (a local number means something else in each)."""
    term = term.strip()
    if not term:
        return SearchHashes()
    if "@" in term:
        return SearchHashes(
            email=blind_hash("email", email_normal(term)),
            external_id=blind_hash("external_id", external_id_normal(term)),
        )
    phones = tuple(
        sorted({blind_hash("phone", phone_normal(term, region)) for region in regions} - {""})
    )
    return SearchHashes(
        email_local=blind_hash("email_local", email_local_normal(term)),
        phones=phones,
        external_id=blind_hash("external_id", external_id_normal(term)),
    )
