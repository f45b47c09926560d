"""Webhook signatures: ``X-Komo-Signature: t=<unix seconds>,v1=<hex>`` (pure, no I/O).

The scheme is Stripe's and Svix's: ``v1`` is the lower-case hex HMAC-SHA256 of ``"<t>." + body``
(the exact bytes received) under the hub's signing secret. A signature is accepted when

* the header parses (one ``t``, at least one ``v1``; unknown parts such as ``v0`` are ignored, so
  a sender may add newer schemes later),
* ``t`` is within ``TOLERANCE_SECONDS`` (five minutes) of our clock, either way: a captured request
  cannot be replayed later (within the window a replay is the same Komo ``id``, which intake
  answers with the stored submission and never stores twice),
* one of the ``v1`` values equals the HMAC under one of the accepted secrets (two during a
  rotation: the new one and the previous one), compared with ``hmac.compare_digest``.

Every refusal is a ``SignatureError`` whose ``problem`` says which check failed and whose
``message`` names it for the sender (translated).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from django.utils.translation import gettext as _

HEADER: Final = "X-Komo-Signature"
META_KEY: Final = "HTTP_X_KOMO_SIGNATURE"
SCHEME: Final = "v1"
TOLERANCE_SECONDS: Final = 300
SECRET_PREFIX: Final = "kbs_"
# A real header is ~80 characters; anything far longer is refused before it is split.
MAX_HEADER_CHARS: Final = 2_000
MAX_SIGNATURES: Final = 8

_HEX_DIGEST: Final = re.compile(r"[0-9a-f]{64}")
_TIMESTAMP: Final = re.compile(r"[0-9]{1,12}")


class SignatureProblem(enum.StrEnum):
    MISSING = "missing"
    MALFORMED = "malformed"
    EXPIRED = "expired"
    MISMATCH = "mismatch"
    NO_SECRET = "no_secret"


class SignatureError(Exception):
    """A signature that cannot be accepted; ``message`` names the problem for the sender."""

    def __init__(self, problem: SignatureProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message


@dataclass(frozen=True)
class ParsedSignature:
    timestamp: int
    signatures: tuple[str, ...]


def secret_generate() -> str:
    """A new signing secret: 256 random bits, url-safe, recognisable by its prefix."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature_compute(*, secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` value: hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value a sender puts on a request (used by tests, docs and load tools)."""
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={stamp},{SCHEME}={signature_compute(secret=secret, timestamp=stamp, body=body)}"


def _malformed() -> SignatureError:
    return SignatureError(
        SignatureProblem.MALFORMED,
        _("%(header)s must look like t=<unix seconds>,v1=<hex HMAC-SHA256 of t.body>.")
        % {"header": HEADER},
    )


def signature_parse(header: str | None) -> ParsedSignature:
    """Split the header into its timestamp and ``v1`` values. Raises ``SignatureError``."""
    if header is None or not header.strip():
        raise SignatureError(
            SignatureProblem.MISSING,
            _("Missing %(header)s header: this hub accepts only signed webhooks.")
            % {"header": HEADER},
        )
    if len(header) > MAX_HEADER_CHARS:
        raise _malformed()
    timestamps: list[str] = []
    values: list[str] = []
    for part in header.split(","):
        name, separator, value = part.strip().partition("=")
        if not separator:
            raise _malformed()
        if name == "t":
            timestamps.append(value.strip())
        elif name == SCHEME:
            values.append(value.strip().lower())
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]):
        raise _malformed()
    if not values or len(values) > MAX_SIGNATURES or not all(map(_HEX_DIGEST.fullmatch, values)):
        raise _malformed()
    return ParsedSignature(timestamp=int(timestamps[0]), signatures=tuple(values))


def _timestamp_check(timestamp: int, now: float, tolerance: int) -> None:
    if abs(now - timestamp) > tolerance:
        raise SignatureError(
            SignatureProblem.EXPIRED,
            _(
                "The %(header)s timestamp is more than %(minutes)d minutes away from our clock; "
                "sign each request when it is sent."
            )
            % {"header": HEADER, "minutes": tolerance // 60},
        )


def _any_matches(expected: Iterable[str], received: Sequence[str]) -> bool:
    # Every pair is compared (no early exit), so timing does not tell which secret matched.
    matched = False
    for want in expected:
        for got in received:
            matched |= hmac.compare_digest(want, got)
    return matched


def signature_verify(
    *,
    header: str | None,
    body: bytes,
    secrets_accepted: Sequence[str],
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> ParsedSignature:
    """Accept the request or raise ``SignatureError`` naming the first failed check."""
    usable = [secret for secret in secrets_accepted if secret]
    if not usable:
        raise SignatureError(
            SignatureProblem.NO_SECRET,
            _("This hub requires signed webhooks but has no signing secret yet."),
        )
    parsed = signature_parse(header)
    _timestamp_check(parsed.timestamp, time.time() if now is None else now, tolerance)
    expected = [
        signature_compute(secret=secret, timestamp=parsed.timestamp, body=body) for secret in usable
    ]
    if not _any_matches(expected, parsed.signatures):
        raise SignatureError(
            SignatureProblem.MISMATCH,
            _(
                "The %(header)s signature does not match the body; sign the exact bytes sent "
                "with the hub's current signing secret."
            )
            % {"header": HEADER},
        )
    return parsed
