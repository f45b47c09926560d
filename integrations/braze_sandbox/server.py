"""A local Braze look-alike: ``POST /users/track`` and transactional sends, with an inspection UI.

Contract (braze-api.md is the reference; where Braze's behaviour is UNCONFIRMED the sandbox picks
the stricter reading, so code that passes here should pass at Braze):

* Auth: ``Authorization: Bearer <key>``; unknown, missing or quoted key → 401, a key listed in
  ``forbidden_keys`` (it lacks ``users.track``) → 403 ``Access Denied``.
* ``/users/track``: body > 4 MiB → 413; not a JSON object → 400; no data → 400; an array with
  more than 75 objects (or more updates than ``max_updates_per_request``) → 400
  ``Max Input Length Exceeded``; otherwise 201 ``{"message": "success", "<array>_processed": n,
  "errors": [{"type", "input_array", "index"}]}`` where invalid objects are listed and not applied.
* Profiles are created and updated per Braze's identifier and ``_update_existing_only`` rules and
  attribute semantics (``null`` unsets, ``inc``, ``add``/``remove``, array limit, nested merge).
* One fixed-window rate limit shared by all keys; ``X-RateLimit-*`` headers on every
  ``/users/track`` response; 429 when exhausted.
* Injected faults (``fail_rate``, ``fail_next``, ``status_next``, ``latency_ms``, ``drop_rate``,
  ``drop_next``) apply before anything else, like an unhealthy edge in front of Braze.
* ``/_sandbox/`` shows requests and profiles; ``/_sandbox/api/...`` is the same as JSON and lets
  tests reconfigure or reset the sandbox. No full API key is ever stored, logged or returned.
* ``reset()`` starts a new generation: a request still in flight (e.g. sleeping in injected
  latency) when the sandbox is reset leaves no trace in the fresh state.

Modules, by role:

* ``rules``: Braze's validation rules as pure functions (identifiers, attributes, events,
  purchases, request limits, transactional bodies).
* ``profiles``: the profile store and attribute semantics.
* this module: configuration, request log, faults, rate window, transactional sends, the
  inspection page, the HTTP server and the ``BrazeSandbox`` facade. The public names of the other
  two modules are re-exported here, so ``from integrations.braze_sandbox import …`` keeps working.

Standard library HTTP server only; of Django just ``gettext`` and ``escape`` for the page.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import json
import logging
import math
import random
import re
import socket
import socketserver
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, NamedTuple
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.utils.html import escape
from django.utils.translation import gettext

from integrations.braze_sandbox.profiles import (
    Profile,
    ProfileStore,
    apply_attributes,
    apply_event,
    apply_purchase,
    apply_value,
    creation_refusal,
    iso_time,
)
from integrations.braze_sandbox.rules import (
    MAX_ARRAY_LIMIT,
    MAX_EVENT_PROPERTIES,
    MAX_INPUT_MESSAGE,
    MAX_NESTED_BYTES,
    MAX_OBJECTS_PER_ARRAY,
    MAX_STRING_LENGTH,
    MISSING_IDENTIFIER,
    NO_DATA_MESSAGE,
    OBJECT_VALIDATORS,
    TRACK_ARRAYS,
    Identity,
    attribute_error,
    attribute_object_error,
    event_object_error,
    identity_of,
    is_number,
    parse_braze_time,
    parse_json_object,
    purchase_object_error,
    track_request_problem,
    transactional_problem,
)

__all__ = [
    "MAX_ARRAY_LIMIT",
    "MAX_BODY_BYTES",
    "MAX_EVENT_PROPERTIES",
    "MAX_INPUT_MESSAGE",
    "MAX_NESTED_BYTES",
    "MAX_OBJECTS_PER_ARRAY",
    "MAX_STRING_LENGTH",
    "MISSING_IDENTIFIER",
    "NO_DATA_MESSAGE",
    "RATE_LIMIT_MESSAGE",
    "RESET_IN_FLIGHT_MESSAGE",
    "TRACK_ARRAYS",
    "TRANSACTIONAL_DEDUP_SECONDS",
    "ApiRequest",
    "BrazeSandbox",
    "Identity",
    "Profile",
    "ProfileStore",
    "Reply",
    "SandboxConfig",
    "SandboxConfigError",
    "SandboxState",
    "apply_attributes",
    "apply_event",
    "apply_purchase",
    "apply_value",
    "attribute_error",
    "attribute_object_error",
    "creation_refusal",
    "event_object_error",
    "identity_of",
    "mask_key",
    "parse_braze_time",
    "parse_json_object",
    "purchase_object_error",
    "render_page",
    "track_request_problem",
    "transactional_problem",
]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 4 * 1024 * 1024
TRANSACTIONAL_DEDUP_SECONDS: Final = 24 * 3600
RATE_LIMIT_MESSAGE: Final = "Rate limit exceeded"
RESET_IN_FLIGHT_MESSAGE: Final = "Sandbox was reset while this request was in flight; not applied"

# Bodies above the limit are still read (up to this much) so the client receives the 413 instead
# of a reset connection while it is still sending.
_DRAIN_LIMIT: Final = 64 * 1024 * 1024
_KEEP_BODY_LIMIT: Final = 1024 * 1024
_INSPECT_BODY_LIMIT: Final = 1024 * 1024
_PROFILE_HISTORY_LIMIT: Final = 1000
_SENDS_LIMIT: Final = 1000
_PAGE_REQUESTS: Final = 50
_PAGE_PROFILES: Final = 100
_SEND_PATH: Final = re.compile(r"/transactional/v1/campaigns/([^/]+)/send")


def _(message: str) -> str:
    """``gettext`` that also works when the sandbox runs without Django settings."""
    try:
        return gettext(message)
    except ImproperlyConfigured:
        return message


class SandboxConfigError(ValueError):
    """A setting passed to ``BrazeSandbox``/``configure``/``/_sandbox/api/config`` is invalid."""


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class SandboxConfig:
    """The sandbox's settings. ``*_next`` values are consumed as requests arrive."""

    api_keys: frozenset[str] = frozenset()
    forbidden_keys: frozenset[str] = frozenset()
    accept_any_key: bool = False
    rate_limit: int = 3000
    rate_window: float = 3.0
    array_limit: int = 25
    max_updates_per_request: int | None = None
    fail_rate: float = 0.0
    fail_next: int = 0
    status_next: tuple[int, ...] = ()
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    drop_rate: float = 0.0
    drop_next: int = 0
    log_limit: int = 500

    def updated(self, changes: Mapping[str, object]) -> SandboxConfig:
        """A copy with ``changes`` applied; raises ``SandboxConfigError`` naming a bad setting."""
        unknown = sorted(set(changes) - set(_COERCERS))
        if unknown:
            raise SandboxConfigError(f"unknown setting(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in changes.items():
            try:
                values[name] = _COERCERS[name](value)
            except (TypeError, ValueError) as exc:
                raise SandboxConfigError(f"{name}: {exc}") from exc
        return dataclasses.replace(self, **values)

    def public(self) -> dict[str, Any]:
        """The settings as JSON-ready data, keys masked to their last four characters."""
        data = dataclasses.asdict(self)
        data["api_keys"] = sorted(mask_key(key) for key in self.api_keys)
        data["forbidden_keys"] = sorted(mask_key(key) for key in self.forbidden_keys)
        data["status_next"] = list(self.status_next)
        return data


def _int_from(minimum: int, maximum: int | None = None) -> Callable[[object], int]:
    def coerce(value: object) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError("expected an integer")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be at most {maximum}")
        return value

    return coerce


def _optional_int_from(minimum: int) -> Callable[[object], int | None]:
    coerce = _int_from(minimum)
    return lambda value: None if value is None else coerce(value)


def _number_from(minimum: float, maximum: float | None = None) -> Callable[[object], float]:
    def coerce(value: object) -> float:
        if not is_number(value):
            raise TypeError("expected a number")
        number = float(value)  # type: ignore[arg-type]
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        if number < minimum:
            raise ValueError(f"must be at least {minimum}")
        if maximum is not None and number > maximum:
            raise ValueError(f"must be at most {maximum}")
        return number

    return coerce


def _positive_number(value: object) -> float:
    number = _number_from(0.0)(value)
    if number <= 0:
        raise ValueError("must be more than 0")
    return number


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def _key_set(value: object) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError("expected a list of keys")
    keys = frozenset(value)
    if not all(isinstance(key, str) and key for key in keys):
        raise TypeError("keys must be non-empty strings")
    return keys


def _status_codes(value: object) -> tuple[int, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError("expected a list of HTTP status codes")
    return tuple(_int_from(300, 599)(code) for code in value)


_COERCERS: Final[dict[str, Callable[[object], object]]] = {
    "api_keys": _key_set,
    "forbidden_keys": _key_set,
    "accept_any_key": _boolean,
    "rate_limit": _int_from(1),
    "rate_window": _positive_number,
    "array_limit": _int_from(1, MAX_ARRAY_LIMIT),
    "max_updates_per_request": _optional_int_from(1),
    "fail_rate": _number_from(0.0, 1.0),
    "fail_next": _int_from(0),
    "status_next": _status_codes,
    "latency_ms": _number_from(0.0),
    "latency_jitter_ms": _number_from(0.0),
    "drop_rate": _number_from(0.0, 1.0),
    "drop_next": _int_from(0),
    "log_limit": _int_from(1),
}


def mask_key(key: str) -> str:
    """The last four characters of ``key`` (nothing for keys too short to hide the rest)."""
    return key[-4:] if len(key) >= 8 else ""


# --------------------------------------------------------------------------------------------
# Request handling (HTTP-free, so it can be driven by the server or by tests directly)


@dataclass(frozen=True)
class Reply:
    """One HTTP answer. ``payload`` is JSON data, or HTML text when ``content_type`` says so."""

    status: int
    payload: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def body(self) -> bytes:
        if isinstance(self.payload, str):
            return self.payload.encode("utf-8")
        return json.dumps(self.payload, default=str).encode("utf-8")


class ApiRequest(NamedTuple):
    """A Braze API request as read from the wire. ``body`` is None when it was over 4 MiB."""

    route: str  # "track" or "send"
    path: str
    campaign_id: str
    authorization: str | None
    body: bytes | None
    size: int
    generation: int  # the state's generation when the request arrived (see SandboxState.reset)


_DROP: Final = object()


def _injected_reply(status: int) -> Reply:
    messages = {
        401: "Invalid API key: (injected)",
        403: "Access Denied",
        429: RATE_LIMIT_MESSAGE,
    }
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Injected failure"
    headers = {"Location": "https://example.invalid/"} if 300 <= status < 400 else {}
    return Reply(status, {"message": messages.get(status, phrase)}, headers)


class SandboxState:
    """Everything the sandbox knows, behind one lock: config, request log, profiles, sends."""

    def __init__(self, config: SandboxConfig) -> None:
        self._lock = threading.Lock()
        self._initial_config = config
        self._config = config
        self._random = random.Random()
        self._log: deque[dict[str, Any]] = deque(maxlen=config.log_limit)
        self._sequence = itertools.count(1)
        self._profiles = ProfileStore()
        self._sends: deque[dict[str, Any]] = deque(maxlen=_SENDS_LIMIT)
        self._send_ids: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._window_start: float | None = None
        self._window_count = 0
        # Bumped by reset(): a request carries the generation it started in and is not applied
        # (nor logged, nor counted) when that generation is over by the time it is handled.
        self._generation = 0

    # ---- settings and inspection

    def config(self) -> dict[str, Any]:
        with self._lock:
            return self._config.public()

    def configure(self, changes: Mapping[str, object]) -> dict[str, Any]:
        """Apply ``changes`` atomically (all or nothing) and return the public config."""
        with self._lock:
            self._set_config(self._config.updated(changes))
            return self._config.public()

    def reset(self, *, config: bool = False) -> None:
        """Forget requests, profiles, sends and the rate window; optionally restore the config.

        Requests still in flight (e.g. sleeping in injected latency) will not be applied."""
        with self._lock:
            self._generation += 1
            self._log.clear()
            self._profiles.clear()
            self._sends.clear()
            self._send_ids.clear()
            self._window_start, self._window_count = None, 0
            if config:
                self._set_config(self._initial_config)

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._log))

    def profiles(self) -> list[dict[str, Any]]:
        with self._lock:
            return [profile.as_dict() for profile in self._profiles.all()]

    def sends(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._sends))

    def find_profile(self, identity: Identity) -> dict[str, Any] | None:
        with self._lock:
            profile = self._profiles.find(identity)
            return profile.as_dict() if profile else None

    def stats(self) -> dict[str, Any]:
        with self._lock:
            by_status: dict[str, int] = {}
            for entry in self._log:
                status = str(entry["status"]) if entry["status"] is not None else "dropped"
                by_status[status] = by_status.get(status, 0) + 1
            return {
                "requests": len(self._log),
                "by_status": by_status,
                "profiles": len(self._profiles),
                "sends": len(self._sends),
            }

    def generation(self) -> int:
        """The current generation; take it when a request starts and pass it in ``ApiRequest``."""
        with self._lock:
            return self._generation

    def latency_seconds(self) -> float:
        with self._lock:
            jitter = self._random.uniform(0, self._config.latency_jitter_ms)
            return (self._config.latency_ms + jitter) / 1000.0

    def _set_config(self, config: SandboxConfig) -> None:
        if config.log_limit != self._config.log_limit:
            self._log = deque(self._log, maxlen=config.log_limit)
        self._config = config

    # ---- the API

    def handle(self, request: ApiRequest) -> Reply | None:
        """Answer one Braze API request; None means: drop the connection without answering."""
        now = time.time()
        with self._lock:
            if request.generation != self._generation:
                # Its state was reset while it was in flight: it must not touch the fresh one
                # (no profile, log entry, send, rate count or fault consumed).
                logger.debug("braze sandbox: %s started before a reset; not applied", request.path)
                reply = Reply(503, {"message": RESET_IN_FLIGHT_MESSAGE})
                return self._with_rate_headers(reply, now) if request.route == "track" else reply
            entry = self._new_entry(request, now)
            reply = self._dispatch(request, entry, now)
            if reply is not None and request.route == "track":
                reply = self._with_rate_headers(reply, now)
            if reply is not None:
                entry["status"], entry["response"] = reply.status, reply.payload
                entry["response_headers"] = dict(reply.headers)
            self._log.append(entry)
            return copy.deepcopy(reply)

    def _new_entry(self, request: ApiRequest, now: float) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": next(self._sequence),
            "time": iso_time(now),
            "method": "POST",
            "path": request.path,
            "status": None,
            "key_last4": "",
            "bytes": request.size,
            "body": None,
            "response": None,
            "response_headers": {},
            "counts": {},
            "notes": [],
        }
        if request.body is None or request.size > _KEEP_BODY_LIMIT:
            entry["notes"].append(f"body not kept ({request.size} bytes)")
            return entry
        payload, problem = parse_json_object(request.body)
        if payload is None:
            entry["body_text"] = request.body[:2000].decode("utf-8", errors="replace")
            return entry
        if "api_key" in payload:  # the legacy way of sending the key; never keep it
            payload["api_key"] = "[redacted]"
        entry["body"] = payload
        entry["counts"] = {
            name: len(payload[name]) for name in TRACK_ARRAYS if isinstance(payload.get(name), list)
        }
        return entry

    def _dispatch(self, request: ApiRequest, entry: dict[str, Any], now: float) -> Reply | None:
        fault = self._take_fault()
        if fault is _DROP:
            entry["notes"].append("connection dropped (injected)")
            return None
        if isinstance(fault, Reply):
            entry["notes"].append("failure injected")
            return fault
        if request.body is None:
            return Reply(413, {"message": "Request body exceeds the 4 MB limit"})
        key, refusal = self._authenticate(request.authorization)
        entry["key_last4"] = mask_key(key)
        if refusal is not None:
            return refusal
        if request.route == "track":
            return self._track(request.body, entry["notes"], now)
        return self._send(request.campaign_id, request.body, entry["notes"], now)

    def _take_fault(self) -> Reply | object | None:
        config = self._config
        if config.drop_next:
            self._config = dataclasses.replace(config, drop_next=config.drop_next - 1)
            return _DROP
        if config.status_next:
            self._config = dataclasses.replace(config, status_next=config.status_next[1:])
            return _injected_reply(config.status_next[0])
        if config.fail_next:
            self._config = dataclasses.replace(config, fail_next=config.fail_next - 1)
            return _injected_reply(500)
        if config.drop_rate and self._random.random() < config.drop_rate:
            return _DROP
        if config.fail_rate and self._random.random() < config.fail_rate:
            return _injected_reply(self._random.choice((500, 502, 503)))
        return None

    def _authenticate(self, header: str | None) -> tuple[str, Reply | None]:
        """The key sent (for masking) and the refusal, or None when the key may track users."""
        scheme, _space, key = (header or "").strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return "", Reply(401, {"message": "Invalid API key: missing Bearer token"})
        if key[0] in "\"'" or key[-1] in "\"'":
            return key, Reply(401, {"message": "Invalid API key: the key must not be quoted"})
        config = self._config
        if key in config.forbidden_keys:
            return key, Reply(403, {"message": "Access Denied"})
        if key not in config.api_keys and not config.accept_any_key:
            return key, Reply(401, {"message": f"Invalid API key: ****{mask_key(key)}"})
        return key, None

    def _consume_rate(self, now: float) -> bool:
        config = self._config
        if self._window_start is None or now >= self._window_start + config.rate_window:
            self._window_start, self._window_count = now, 0
        if self._window_count >= config.rate_limit:
            return False
        self._window_count += 1
        return True

    def _with_rate_headers(self, reply: Reply, now: float) -> Reply:
        config = self._config
        start = self._window_start
        if start is None or now >= start + config.rate_window:
            remaining, reset = config.rate_limit, now + config.rate_window
        else:
            remaining, reset = config.rate_limit - self._window_count, start + config.rate_window
        if reply.status == 429:
            remaining = 0
        headers = {
            "X-RateLimit-Limit": str(config.rate_limit),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": str(math.ceil(reset)),
            **reply.headers,
        }
        return dataclasses.replace(reply, headers=headers)

    def _track(self, body: bytes, notes: list[str], now: float) -> Reply:
        if not self._consume_rate(now):
            return Reply(429, {"message": RATE_LIMIT_MESSAGE})
        payload, problem = parse_json_object(body)
        if payload is None:
            return Reply(400, {"message": problem})
        refusal = track_request_problem(payload, max_updates=self._config.max_updates_per_request)
        if refusal is not None:
            return Reply(400, refusal)
        response: dict[str, Any] = {"message": "success"}
        errors: list[dict[str, Any]] = []
        for name in TRACK_ARRAYS:
            if name in payload:
                response[f"{name}_processed"] = self._apply_array(
                    name, payload[name], errors, notes, now
                )
        if errors:
            response["errors"] = errors
        return Reply(201, response)

    def _apply_array(
        self,
        name: str,
        objects: list[Any],
        errors: list[dict[str, Any]],
        notes: list[str],
        now: float,
    ) -> int:
        processed = 0
        for index, obj in enumerate(objects):
            error = OBJECT_VALIDATORS[name](obj)
            if error is not None:
                errors.append({"type": error, "input_array": name, "index": index})
                continue
            processed += 1
            object_notes: list[str] = []
            self._profiles.apply_object(
                name, obj, array_limit=self._config.array_limit, notes=object_notes, now=now
            )
            notes.extend(f"{name}[{index}]: {note}" for note in object_notes)
        return processed

    def _send(self, campaign_id: str, body: bytes, notes: list[str], now: float) -> Reply:
        payload, problem = parse_json_object(body)
        if payload is None:
            return Reply(400, {"message": problem})
        problem = transactional_problem(payload)
        if problem is not None:
            return Reply(400, {"message": problem})
        self._forget_old_send_ids(now)
        send_id = payload.get("external_send_id")
        if send_id is not None and (campaign_id, send_id) in self._send_ids:
            notes.append("duplicate external_send_id: not sent again")
            return Reply(201, copy.deepcopy(self._send_ids[(campaign_id, send_id)][1]))
        self._profiles.apply_recipient(
            payload["recipient"], array_limit=self._config.array_limit, notes=notes, now=now
        )
        response = {
            "dispatch_id": uuid.uuid4().hex,
            "status": "queued",
            "metadata": {"is_test_send": False, "type": "transactional"},
        }
        if send_id is not None:
            self._send_ids[(campaign_id, send_id)] = (now, copy.deepcopy(response))
        self._sends.append(
            {
                "time": iso_time(now),
                "campaign_id": campaign_id,
                "dispatch_id": response["dispatch_id"],
                "external_send_id": send_id,
                "recipient": copy.deepcopy(payload["recipient"]),
                "trigger_properties": copy.deepcopy(payload.get("trigger_properties") or {}),
            }
        )
        return Reply(201, response)

    def _forget_old_send_ids(self, now: float) -> None:
        expired = [
            key
            for key, (sent_at, _response) in self._send_ids.items()
            if now - sent_at >= TRANSACTIONAL_DEDUP_SECONDS
        ]
        for key in expired:
            del self._send_ids[key]


# --------------------------------------------------------------------------------------------
# Inspection page


def _pretty(value: Any) -> str:
    return escape(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str))


def _render_request(entry: Mapping[str, Any]) -> str:
    response = entry.get("response") or {}
    errors = response.get("errors") if isinstance(response, dict) else None
    counts = ", ".join(f"{name}: {count}" for name, count in entry.get("counts", {}).items())
    body = entry["body"] if entry.get("body") is not None else entry.get("body_text", "")
    status = entry["status"] if entry["status"] is not None else _("dropped")
    key = f"…{entry['key_last4']}" if entry.get("key_last4") else ""
    notes = "".join(f"<li>{escape(note)}</li>" for note in entry.get("notes", []))
    return (
        f"<tr><td>{escape(entry['time'])}</td><td>{escape(entry['path'])}</td>"
        f"<td>{escape(status)}</td><td>{escape(key)}</td><td>{escape(counts)}</td>"
        f"<td>{_pretty(errors) if errors else ''}<ul>{notes}</ul></td>"
        f"<td><details><summary>{escape(_('body'))}</summary><pre>{_pretty(body)}</pre>"
        f"<pre>{_pretty(response)}</pre></details></td></tr>"
    )


def _render_profile(profile: Mapping[str, Any]) -> str:
    events = [f"{e['time']} {e['name']}" for e in profile["events"][-20:]]
    return (
        f"<tr><td><pre>{_pretty(profile['identifiers'])}</pre></td>"
        f"<td><pre>{_pretty(profile['attributes'])}</pre>"
        f"<pre>{_pretty(profile['subscription_groups'])}</pre></td>"
        f"<td>{'<br>'.join(escape(line) for line in events)}</td>"
        f"<td>{escape(len(profile['purchases']))}</td>"
        f"<td>{escape(profile['updated_at'])}</td></tr>"
    )


def render_page(requests: list[dict[str, Any]], profiles: list[dict[str, Any]]) -> str:
    """The ``/_sandbox/`` page: newest requests and profiles first, every value escaped."""
    request_rows = "".join(_render_request(e) for e in reversed(requests[-_PAGE_REQUESTS:]))
    newest_profiles = sorted(profiles, key=lambda p: p["updated_at"], reverse=True)
    profile_rows = "".join(_render_profile(p) for p in newest_profiles[:_PAGE_PROFILES])
    request_headings = (
        _("Time"),
        _("Path"),
        _("Status"),
        _("Key"),
        _("Objects"),
        _("Errors and notes"),
        "",
    )
    profile_headings = (
        _("Identifiers"),
        _("Attributes"),
        _("Events"),
        _("Purchases"),
        _("Updated"),
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='2'>"
        f"<title>{escape(_('Braze sandbox'))}</title>"
        "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;width:100%}"
        "td,th{border:1px solid #ccc;padding:4px;vertical-align:top;text-align:left}"
        "pre{margin:0;white-space:pre-wrap;max-width:60em}</style></head><body>"
        f"<h1>{escape(_('Braze sandbox'))}</h1>"
        f"<h2>{escape(_('Requests'))} ({len(requests)})</h2>"
        f"{_table(request_headings, request_rows, _('No requests yet.'))}"
        f"<h2>{escape(_('Profiles'))} ({len(profiles)})</h2>"
        f"{_table(profile_headings, profile_rows, _('No profiles yet.'))}"
        "</body></html>"
    )


def _table(headings: Iterable[str], rows: str, empty: str) -> str:
    if not rows:
        return f"<p>{escape(empty)}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


# --------------------------------------------------------------------------------------------
# HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: SandboxState) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can stall start-up.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
    # Headers and body go out in two writes; without TCP_NODELAY, delayed ACKs add ~40 ms each.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("braze sandbox: " + format, *args)

    def _route(self, method: str) -> None:
        path = urlsplit(self.path).path
        try:
            send = _SEND_PATH.fullmatch(path)
            if method == "POST" and (path == "/users/track" or send):
                self._api(path, unquote(send[1]) if send else "")
            elif path == "/_sandbox" or path.startswith("/_sandbox/"):
                self._inspect(method, path)
            else:
                self._read_small_body()
                self._write(Reply(404, {"message": "Not Found"}))
        except Exception:
            logger.exception("braze sandbox: error while answering %s %s", method, path)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._write(Reply(500, {"message": "Sandbox internal error"}))

    def _api(self, path: str, campaign_id: str) -> None:
        state = self.server.state
        generation = state.generation()
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._write(Reply(411, {"message": "Length Required"}))
            return
        size = self._content_length()
        if size is None:
            self.close_connection = True
            self._write(Reply(400, {"message": "Invalid Content-Length"}))
            return
        body = self._read_api_body(size)
        delay = state.latency_seconds()
        if delay > 0:
            time.sleep(delay)
        route = "send" if campaign_id else "track"
        request = ApiRequest(
            route, path, campaign_id, self.headers.get("Authorization"), body, size, generation
        )
        reply = state.handle(request)
        if reply is None:
            self._drop()
        else:
            self._write(reply)

    def _content_length(self) -> int | None:
        raw = self.headers.get("Content-Length", "0").strip()
        return int(raw) if raw.isdigit() else None

    def _read_api_body(self, size: int) -> bytes | None:
        if size <= MAX_BODY_BYTES:
            return self.rfile.read(size)
        if size > _DRAIN_LIMIT:
            self.close_connection = True
            return None
        remaining = size
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1024 * 1024))
            if not chunk:
                break
            remaining -= len(chunk)
        return None

    def _read_small_body(self) -> bytes:
        size = self._content_length()
        if size is None or size > _INSPECT_BODY_LIMIT:
            self.close_connection = True
            return b""
        return self.rfile.read(size) if size else b""

    def _inspect(self, method: str, path: str) -> None:
        state = self.server.state
        body = self._read_small_body()
        route = path.removeprefix("/_sandbox").strip("/")
        getters: dict[str, Callable[[], Any]] = {
            "api/requests": state.requests,
            "api/profiles": state.profiles,
            "api/sends": state.sends,
            "api/stats": state.stats,
            "api/config": state.config,
        }
        if method == "GET" and route == "":
            page = render_page(state.requests(), state.profiles())
            self._write(Reply(200, page, _PAGE_HEADERS, "text/html; charset=utf-8"))
        elif method == "GET" and route in getters:
            self._write(Reply(200, getters[route]()))
        elif method == "POST" and route in ("api/config", "api/reset"):
            self._write(self._inspect_post(route, body))
        else:
            self._write(Reply(404, {"message": "Not Found"}))

    def _inspect_post(self, route: str, body: bytes) -> Reply:
        state = self.server.state
        payload, problem = parse_json_object(body) if body.strip() else ({}, "")
        if payload is None:
            return Reply(400, {"message": problem})
        if route == "api/reset":
            state.reset(config=payload.get("config") is True)
            return Reply(200, {"status": "reset", "config": state.config()})
        try:
            return Reply(200, state.configure(payload))
        except SandboxConfigError as exc:
            return Reply(400, {"message": str(exc)})

    def _write(self, reply: Reply) -> None:
        body = reply.body()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        try:
            self.end_headers()  # the first actual write: status line and headers
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (e.g. its read timeout during injected latency). Only
            # these two, and only here: anything else is a sandbox bug and is logged as one.
            self.close_connection = True
            logger.debug(
                "braze sandbox: client went away before the %s answer to %s %s was written",
                reply.status,
                self.command,
                urlsplit(self.path).path,
            )

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may already be gone
            self.connection.shutdown(socket.SHUT_RDWR)


_PAGE_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


# --------------------------------------------------------------------------------------------
# Public facade


class BrazeSandbox:
    """A Braze look-alike listening on ``host:port`` (port 0 picks a free one).

    Use as ``with BrazeSandbox(api_keys={"k"}) as sandbox: ...`` or ``start()``/``stop()``;
    ``serve_forever()`` serves in the calling thread instead. ``**config`` takes any
    ``SandboxConfig`` setting (``rate_limit``, ``fail_rate``, ``latency_ms``, …).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 9400,
        api_keys: Iterable[str] = (),
        forbidden_keys: Iterable[str] = (),
        accept_any_key: bool = False,
        **config: Any,
    ) -> None:
        settings = SandboxConfig().updated(
            {
                "api_keys": tuple(api_keys),
                "forbidden_keys": tuple(forbidden_keys),
                "accept_any_key": accept_any_key,
                **config,
            }
        )
        self.host = host
        self._requested_port = port
        self._state = SandboxState(settings)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._serving_in_caller = threading.Event()

    @property
    def port(self) -> int:
        """The bound port (the requested one until the server is bound)."""
        return self._server.server_address[1] if self._server else self._requested_port

    @property
    def url(self) -> str:
        """Base URL to use as the Braze REST endpoint, e.g. ``http://127.0.0.1:9400``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> BrazeSandbox:
        """Bind and serve in a daemon thread; returns self. Raises OSError if the port is taken."""
        server = self._bind()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"braze-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Bind (if needed) and serve in the calling thread until ``KeyboardInterrupt`` or until
        ``stop()`` is called from another thread."""
        server = self._server or self._bind()
        self._serving_in_caller.set()
        try:
            server.serve_forever(poll_interval=0.05)
        finally:
            self._serving_in_caller.clear()
            self._close()

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call more than once."""
        server, thread = self._server, self._thread
        if server is None:
            return
        # shutdown() waits for the serving loop, so only call it when one runs (or is starting).
        if thread is not None or self._serving_in_caller.is_set():
            server.shutdown()
        if thread is not None:
            thread.join(timeout=5)
        self._close()

    def __enter__(self) -> BrazeSandbox:
        return self if self.running else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def requests(self) -> list[dict[str, Any]]:
        """The request log, oldest first (copies)."""
        return self._state.requests()

    def profiles(self) -> list[dict[str, Any]]:
        """All profiles as JSON-ready dicts (copies)."""
        return self._state.profiles()

    def sends(self) -> list[dict[str, Any]]:
        """Transactional sends, oldest first (duplicates by external_send_id are not listed)."""
        return self._state.sends()

    def stats(self) -> dict[str, Any]:
        """Counts: requests, by_status, profiles, sends."""
        return self._state.stats()

    def find_profile(self, **identifier: Any) -> dict[str, Any] | None:
        """The profile for exactly one of ``external_id``, ``braze_id``, ``email``, ``phone``,
        ``user_alias={"alias_name", "alias_label"}`` (or ``alias_name`` + ``alias_label``)."""
        if set(identifier) == {"alias_name", "alias_label"}:
            identifier = {"user_alias": identifier}
        identity = identity_of(identifier) if len(identifier) == 1 else None
        if not isinstance(identity, Identity):
            raise ValueError(f"not one valid identifier: {sorted(identifier)}")
        return self._state.find_profile(identity)

    def config(self) -> dict[str, Any]:
        """The current settings, keys masked."""
        return self._state.config()

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change settings at runtime (all or nothing); returns the new settings, keys masked."""
        return self._state.configure(changes)

    def reset(self, *, config: bool = False) -> None:
        """Forget requests, profiles and sends; with ``config=True`` also restore the settings."""
        self._state.reset(config=config)

    def _bind(self) -> _Server:
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        self._server = _Server((self.host, self._requested_port), self._state)
        return self._server

    def _close(self) -> None:
        server, self._server, self._thread = self._server, None, None
        if server is not None:
            server.server_close()
