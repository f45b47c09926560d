"""HTTP client for Braze's ``/users/track``, ``/users/delete`` and transactional send endpoints.

Contract:

* No Django here (no settings, no models): callers pass the endpoint, the key and the body, and
  must have checked the endpoint with ``instances.endpoint_allowed`` first.
* ``track`` and ``send_transactional`` never raise for HTTP or network problems; every outcome,
  including timeouts, dropped connections and redirects (never followed), comes back as a frozen
  ``TrackResult`` that the retry policy can classify without looking at exceptions.
* The API key never appears in a ``TrackResult`` (message, response text), even if a server or an
  exception echoes it.
* The body is serialised once (compact JSON, UTF-8) and those exact bytes are sent, so
  ``body_size`` and ``serialize_body`` tell the caller precisely what goes over the wire.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final
from urllib.parse import quote

import requests
import urllib3

RESPONSE_TEXT_LIMIT: Final = 16 * 1024
# /users/delete: exactly one kind of identifier per request, at most 50 of them (braze-api.md §10).
DELETE_KINDS: Final = ("external_ids", "user_aliases", "braze_ids", "email_addresses",
                       "phone_numbers")
DELETE_BATCH_LIMIT: Final = 50
# Enough for a 201 listing errors for all 225 objects; anything beyond is not a Braze answer.
RESPONSE_READ_LIMIT: Final = 1024 * 1024
MESSAGE_LIMIT: Final = 500
REDACTED: Final = "[redacted]"
_BEARER_PATTERN: Final = re.compile(r"(?i)(bearer\s+)\S+")
# Header values may only hold visible ASCII; anything else could not be sent (or would be sent
# mangled), and Braze rejects quoted keys with 401 (braze-api.md §3).
_SENDABLE_KEY: Final = re.compile(r"[\x21-\x7e]+")


class Outcome(StrEnum):
    """What happened to one request, in the terms the delivery and retry logic need."""

    SUCCESS = "success"
    PARTIAL = "partial"  # 2xx with a non-empty errors[]: the listed objects were not processed
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    BAD_REQUEST = "bad_request"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    REDIRECT = "redirect"


@dataclass(frozen=True)
class ItemError:
    """One entry of Braze's ``errors[]``: which array, which 0-based index, and Braze's text.

    ``input_array`` is "" and ``index`` is None when Braze's entry does not say.
    """

    input_array: str
    index: int | None
    type: str


@dataclass(frozen=True)
class RateLimit:
    """Braze's ``X-RateLimit-*`` headers; ``reset`` is UTC epoch seconds. None = header absent."""

    limit: int | None
    remaining: int | None
    reset: int | None


@dataclass(frozen=True)
class TrackResult:
    """Everything the caller needs to record an attempt and decide what to do next.

    ``status_code`` is None when no HTTP answer arrived (timeout, connection error, or a request
    that could not be sent at all). ``message`` is Braze's ``message`` or a short description of
    the problem; ``response_text`` is the raw answer cut to 16 KiB. Neither holds the API key.
    """

    status_code: int | None
    outcome: Outcome
    message: str
    item_errors: tuple[ItemError, ...] = ()
    response_text: str = ""
    rate_limit: RateLimit | None = None
    duration_ms: float = 0.0
    request_bytes: int = 0

    @property
    def ok(self) -> bool:
        """True when Braze accepted the request (possibly with per-item errors)."""
        return self.outcome in (Outcome.SUCCESS, Outcome.PARTIAL)


def serialize_body(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent for ``body``: compact UTF-8 JSON.

    Raises ``TypeError``/``ValueError`` for values JSON cannot hold (objects, NaN, infinity).
    """
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def body_size(body: Mapping[str, Any]) -> int:
    """Size in bytes of ``body`` as sent (see ``serialize_body``, which may raise the same way)."""
    return len(serialize_body(body))


class BrazeClient:
    """A Braze REST client holding one ``requests.Session`` (connection reuse, one User-Agent).

    ``requests`` does not promise that a session is thread-safe; use one client per thread.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        session: requests.Session | None = None,
        user_agent: str = "komo-braze-portal/1.0",
        endpoint_guard: Callable[[str], bool] | None = None,
    ) -> None:
        self.timeout = (connect_timeout, read_timeout)
        self.session = session if session is not None else requests.Session()
        self.user_agent = user_agent
        # Last line of the SSRF defence: every call, whoever makes it, is checked here too.
        self.endpoint_guard = endpoint_guard

    def track(self, *, endpoint: str, api_key: str, body: Mapping[str, Any]) -> TrackResult:
        """POST ``body`` to ``{endpoint}/users/track``. Never raises for HTTP/network problems."""
        return self._post(
            endpoint=endpoint, url=_join(endpoint, "/users/track"), api_key=api_key, body=body
        )

    def send_transactional(
        self, *, endpoint: str, api_key: str, campaign_id: str, body: Mapping[str, Any]
    ) -> TrackResult:
        """POST ``body`` to ``{endpoint}/transactional/v1/campaigns/{campaign_id}/send``.

        Never raises for HTTP/network problems; the campaign id is percent-encoded into the path.
        """
        path = f"/transactional/v1/campaigns/{quote(campaign_id, safe='')}/send"
        return self._post(endpoint=endpoint, url=_join(endpoint, path), api_key=api_key, body=body)

    def users_delete(
        self, *, endpoint: str, api_key: str, identifiers: Mapping[str, Sequence[Any]]
    ) -> tuple[TrackResult, ...]:
        """Ask Braze to delete profiles: ``identifiers`` maps a kind (``DELETE_KINDS``) to its
        values; one ``POST {endpoint}/users/delete`` per at most 50 values of one kind.

        Never raises for HTTP/network problems. Stops after a refused key (401/403): the other
        requests would be refused alike. Returns the results in request order.
        """
        results: list[TrackResult] = []
        for body in delete_bodies(identifiers):
            result = self._post(
                endpoint=endpoint, url=_join(endpoint, "/users/delete"), api_key=api_key,
                body=body,
            )
            results.append(result)
            if result.outcome in (Outcome.UNAUTHORIZED, Outcome.FORBIDDEN):
                break
        return tuple(results)

    def close(self) -> None:
        """Close the underlying session and its pooled connections."""
        self.session.close()

    def __enter__(self) -> BrazeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _post(
        self, *, endpoint: str, url: str, api_key: str, body: Mapping[str, Any]
    ) -> TrackResult:
        if self.endpoint_guard is not None and not self.endpoint_guard(endpoint):
            return TrackResult(
                status_code=None,
                outcome=Outcome.CONNECTION_ERROR,
                message="Endpoint is not an allowed Braze host; nothing was sent",
            )
        try:
            data = serialize_body(body)
        except (TypeError, ValueError) as exc:
            return TrackResult(
                status_code=None,
                outcome=Outcome.BAD_REQUEST,
                message=f"Body is not valid JSON, not sent: {_redact(str(exc), api_key)}",
            )
        if not _SENDABLE_KEY.fullmatch(api_key):
            return TrackResult(
                status_code=None,
                outcome=Outcome.UNAUTHORIZED,
                message="API key is empty or contains spaces or non-ASCII characters; not sent",
                request_bytes=len(data),
            )
        started = time.perf_counter()
        try:
            status_code, headers, content = self._send(url=url, api_key=api_key, data=data)
        except requests.RequestException as exc:
            return _network_failure(exc, api_key=api_key, started=started, request_bytes=len(data))
        return _interpret(
            status_code,
            headers,
            content,
            api_key=api_key,
            duration_ms=_elapsed_ms(started),
            request_bytes=len(data),
        )

    def _send(self, *, url: str, api_key: str, data: bytes) -> tuple[int, Mapping[str, str], bytes]:
        headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": self.user_agent,
        }
        response = self.session.post(
            url,
            data=data,
            headers=headers,
            timeout=self.timeout,
            allow_redirects=False,
            stream=True,
        )
        try:
            return response.status_code, response.headers, _read_limited(response)
        finally:
            response.close()


def delete_bodies(identifiers: Mapping[str, Sequence[Any]]) -> list[dict[str, list[Any]]]:
    """The ``/users/delete`` bodies for these identifiers: one kind each, ≤ 50 values each,
    duplicates dropped. Raises ``ValueError`` for a kind Braze does not know."""
    bodies: list[dict[str, list[Any]]] = []
    for kind, values in identifiers.items():
        if kind not in DELETE_KINDS:
            raise ValueError(f"Unknown /users/delete identifier kind: {kind!r}")
        unique: dict[str, Any] = {}
        for value in values:
            unique.setdefault(json.dumps(value, sort_keys=True), value)
        distinct = list(unique.values())
        for start in range(0, len(distinct), DELETE_BATCH_LIMIT):
            bodies.append({kind: distinct[start : start + DELETE_BATCH_LIMIT]})
    return bodies


def _join(endpoint: str, path: str) -> str:
    return endpoint.strip().rstrip("/") + path


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _read_limited(response: requests.Response) -> bytes:
    """Read at most ``RESPONSE_READ_LIMIT`` bytes, so a hostile server cannot exhaust memory."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=16 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= RESPONSE_READ_LIMIT:
            break
    return b"".join(chunks)[:RESPONSE_READ_LIMIT]


def _network_failure(
    exc: requests.RequestException, *, api_key: str, started: float, request_bytes: int
) -> TrackResult:
    outcome, what = _classify_exception(exc)
    return TrackResult(
        status_code=None,
        outcome=outcome,
        message=_clip(f"{what}: {_redact(_innermost_text(exc), api_key)}"),
        duration_ms=_elapsed_ms(started),
        request_bytes=request_bytes,
    )


def _classify_exception(exc: requests.RequestException) -> tuple[Outcome, str]:
    if isinstance(exc, requests.ConnectTimeout):
        return Outcome.TIMEOUT, "Connect timeout"
    # requests reports a read timeout while streaming the body as a ConnectionError.
    if isinstance(exc, requests.Timeout) or _wraps(exc, urllib3.exceptions.ReadTimeoutError):
        return Outcome.TIMEOUT, "Read timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return Outcome.CONNECTION_ERROR, "TLS error"
    if isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return Outcome.CONNECTION_ERROR, "Connection error"
    # Invalid URL, invalid header and the like: nothing reached the server, no HTTP status exists.
    return Outcome.CONNECTION_ERROR, f"Request not sent ({type(exc).__name__})"


def _wraps(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(arg, kind) for arg in exc.args)


def _innermost_text(exc: BaseException) -> str:
    """The innermost wrapped exception's text: "Connection refused", not urllib3's wrapping."""
    current = exc
    for _ in range(8):
        reason = getattr(current, "reason", None)
        inner = (
            reason
            if isinstance(reason, BaseException)
            else next((arg for arg in current.args if isinstance(arg, BaseException)), None)
        )
        if inner is None:
            break
        current = inner
    return str(current) or type(current).__name__


def _interpret(
    status_code: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    api_key: str,
    duration_ms: float,
    request_bytes: int,
) -> TrackResult:
    text = _redact(content[:RESPONSE_TEXT_LIMIT].decode("utf-8", errors="replace"), api_key)
    payload = _json_object(content)
    item_errors = _item_errors(payload.get("errors"))
    outcome = _outcome(status_code, item_errors)
    if outcome is Outcome.REDIRECT:
        message = f"Redirect to {headers.get('Location', '?')!r} not followed"
    else:
        message = payload.get("message")
        if not isinstance(message, str) or not message:
            message = f"HTTP {status_code}"
    return TrackResult(
        status_code=status_code,
        outcome=outcome,
        message=_clip(_redact(message, api_key)),
        item_errors=tuple(_redact_item(e, api_key) for e in item_errors),
        response_text=text,
        rate_limit=_rate_limit(headers),
        duration_ms=duration_ms,
        request_bytes=request_bytes,
    )


def _outcome(status_code: int, item_errors: tuple[ItemError, ...]) -> Outcome:
    if 200 <= status_code < 300:
        return Outcome.PARTIAL if item_errors else Outcome.SUCCESS
    if 300 <= status_code < 400:
        return Outcome.REDIRECT
    specific = {
        401: Outcome.UNAUTHORIZED,
        403: Outcome.FORBIDDEN,
        404: Outcome.NOT_FOUND,
        413: Outcome.TOO_LARGE,
        429: Outcome.RATE_LIMITED,
    }
    if status_code in specific:
        return specific[status_code]
    if 400 <= status_code < 500:
        return Outcome.BAD_REQUEST
    # 5xx, and nonsense such as 1xx or 600: the far side is broken, so treat it as a server error.
    return Outcome.SERVER_ERROR


def _json_object(content: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(content)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _item_errors(raw: object) -> tuple[ItemError, ...]:
    """Parse Braze's ``errors`` list, whatever its shape (dicts, strings, or something else)."""
    if not isinstance(raw, list):
        return ()
    return tuple(_item_error(entry) for entry in raw)


def _item_error(entry: object) -> ItemError:
    if isinstance(entry, str):
        return ItemError(input_array="", index=None, type=entry)
    if not isinstance(entry, dict):
        return ItemError(input_array="", index=None, type=json.dumps(entry))
    kind = entry.get("type")
    if not isinstance(kind, str) or not kind:
        kind = entry.get("message") if isinstance(entry.get("message"), str) else None
    input_array = entry.get("input_array")
    return ItemError(
        input_array=input_array if isinstance(input_array, str) else "",
        index=_as_index(entry.get("index")),
        type=kind or json.dumps(entry, sort_keys=True),
    )


def _as_index(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _rate_limit(headers: Mapping[str, str]) -> RateLimit | None:
    """Parse ``X-RateLimit-*``; ``requests`` headers are case-insensitive (HTTP/2 is lower-case)."""
    values = [
        _header_int(headers, name)
        for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
    ]
    if all(value is None for value in values):
        return None
    return RateLimit(limit=values[0], remaining=values[1], reset=values[2])


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return int(float(raw.strip()))
    except (ValueError, OverflowError):
        return None


def _redact(text: str, api_key: str) -> str:
    if api_key:
        text = text.replace(api_key, REDACTED)
    return _BEARER_PATTERN.sub(r"\1" + REDACTED, text)


def _redact_item(error: ItemError, api_key: str) -> ItemError:
    return ItemError(
        input_array=_redact(error.input_array, api_key),
        index=error.index,
        type=_redact(error.type, api_key),
    )


def _clip(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
