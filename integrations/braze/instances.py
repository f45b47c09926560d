"""Braze REST instances and the endpoint allow-list (the SSRF guard).

A hub's REST endpoint is user input that the worker later calls with a secret in the header, so
``endpoint_allowed`` is the single gate in front of every outgoing Braze call. It accepts exactly:

* ``https://<one of Braze's REST hosts>`` (braze-api.md §5) with no userinfo, port, path, query or
  fragment (a trailing ``/`` is tolerated), or
* a URL under one of the operator's extra prefixes (``BRAZE_EXTRA_ENDPOINTS``, e.g. the sandbox at
  ``http://127.0.0.1:9400``), on the same scheme and host (and port, when the prefix names one).

This module is pure: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import SplitResult, urlsplit


@dataclass(frozen=True)
class BrazeInstance:
    """One Braze data centre: its dashboard code, a human label, and its REST base URL."""

    code: str
    label: str
    rest_endpoint: str


def _us_instances() -> tuple[BrazeInstance, ...]:
    return tuple(
        BrazeInstance(f"US-0{n}", f"US-0{n}", f"https://rest.iad-0{n}.braze.com")
        for n in range(1, 9)
    )


# JP-01 and KR-01 are only known from third-party copies of Braze's docs (braze-api.md §5); they
# are kept because a wrong host merely answers 401, while a missing one blocks a real customer.
BRAZE_INSTANCES: Final[tuple[BrazeInstance, ...]] = (
    *_us_instances(),
    BrazeInstance("US-10", "US-10", "https://rest.us-10.braze.com"),
    BrazeInstance("EU-01", "EU-01", "https://rest.fra-01.braze.eu"),
    BrazeInstance("EU-02", "EU-02", "https://rest.fra-02.braze.eu"),
    BrazeInstance("AU-01", "AU-01", "https://rest.au-01.braze.com"),
    BrazeInstance("ID-01", "ID-01", "https://rest.id-01.braze.com"),
    BrazeInstance("JP-01", "JP-01", "https://rest.jp-01.braze.com"),
    BrazeInstance("KR-01", "KR-01", "https://rest.kr-01.braze.com"),
)

BRAZE_REST_HOSTS: Final[frozenset[str]] = frozenset(
    urlsplit(instance.rest_endpoint).netloc for instance in BRAZE_INSTANCES
)

# Characters that different URL parsers disagree about (or that smuggle a second URL).
_UNSAFE_CHARACTERS: Final = frozenset("\\?#") | frozenset(chr(c) for c in (*range(0x21), 0x7F))
_EXTRA_SCHEMES: Final = frozenset({"http", "https"})


def normalize_endpoint(url: str) -> str:
    """Return ``url`` stripped of whitespace and trailing slashes, scheme and host lower-cased.

    The path, query and userinfo keep their case. A string without ``scheme://host`` is returned
    only stripped, so callers can still show the user what they typed.
    """
    stripped = url.strip().rstrip("/")
    scheme, separator, rest = stripped.partition("://")
    if not separator or not scheme or not rest:
        return stripped
    authority_end = min((rest.find(c) for c in "/?#" if c in rest), default=len(rest))
    authority, tail = rest[:authority_end], rest[authority_end:]
    userinfo, at, hostport = authority.rpartition("@")
    return f"{scheme.lower()}://{userinfo}{at}{hostport.lower()}{tail}"


def instance_for_endpoint(url: str) -> BrazeInstance | None:
    """Return the Braze instance whose REST endpoint is ``url`` (after normalising), if any."""
    normalized = normalize_endpoint(url)
    return next((i for i in BRAZE_INSTANCES if i.rest_endpoint == normalized), None)


def endpoint_allowed(url: str, extra_prefixes: Sequence[str] = ()) -> bool:
    """Whether the portal may send requests (and an API key) to ``url``.

    True only for an https Braze REST host exactly, or for a URL under one of ``extra_prefixes``
    with the same scheme and host as the prefix (and the same port if the prefix names one).
    Anything with userinfo, a query, a fragment, a backslash, whitespace or control characters is
    refused, whatever the prefixes say.
    """
    if not isinstance(url, str):
        return False
    normalized = normalize_endpoint(url)
    if not normalized or any(c in _UNSAFE_CHARACTERS for c in normalized):
        return False
    parts = _split(normalized)
    if parts is None or "@" in parts.netloc:
        return False
    if _is_braze_host(parts):
        return True
    return any(_under_prefix(normalized, parts, prefix) for prefix in extra_prefixes)


def _split(url: str) -> SplitResult | None:
    """``urlsplit`` with the port validated; None when the URL cannot be parsed unambiguously."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a malformed port such as "9400.evil.com"
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    return parts


def _is_braze_host(parts: SplitResult) -> bool:
    return parts.scheme == "https" and parts.netloc in BRAZE_REST_HOSTS and parts.path == ""


def _under_prefix(url: str, parts: SplitResult, prefix: str) -> bool:
    """Whether ``url`` (already split into ``parts``) lies under the operator-given ``prefix``."""
    normalized_prefix = normalize_endpoint(prefix)
    if not normalized_prefix or not url.startswith(normalized_prefix):
        return False
    prefix_parts = _split(normalized_prefix)
    if prefix_parts is None or "@" in prefix_parts.netloc:
        return False
    if prefix_parts.scheme not in _EXTRA_SCHEMES or parts.scheme != prefix_parts.scheme:
        return False
    if parts.hostname != prefix_parts.hostname:
        return False
    if prefix_parts.port is not None and parts.port != prefix_parts.port:
        return False
    prefix_path = prefix_parts.path.rstrip("/")
    return not prefix_path or parts.path == prefix_path or parts.path.startswith(prefix_path + "/")
