"""Request handling without HTTP: the sandbox's state (config, request log, profiles, sends),
faults, the rate window, ``/users/track`` and transactional sends. The server drives it; tests can
drive it directly."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import logging
import math
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final, NamedTuple

from integrations.braze_sandbox.config import SandboxConfig, mask_key
from integrations.braze_sandbox.profiles import ProfileStore, iso_time
from integrations.braze_sandbox.rules import (
    DELETE_KINDS,
    OBJECT_VALIDATORS,
    TRACK_ARRAYS,
    Identity,
    delete_request_problem,
    parse_json_object,
    track_request_problem,
    transactional_problem,
)

logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 4 * 1024 * 1024
TRANSACTIONAL_DEDUP_SECONDS: Final = 24 * 3600
RATE_LIMIT_MESSAGE: Final = "Rate limit exceeded"
RESET_IN_FLIGHT_MESSAGE: Final = "Sandbox was reset while this request was in flight; not applied"
_KEEP_BODY_LIMIT: Final = 1024 * 1024
_PROFILE_HISTORY_LIMIT: Final = 1000
_SENDS_LIMIT: Final = 1000


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

    route: str  # "track", "delete" or "send"
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
        if request.route == "delete":
            return self._delete(request.body, entry["notes"])
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

    def _delete(self, body: bytes, notes: list[str]) -> Reply:
        """``/users/delete``: the named profiles go. UNCONFIRMED: Braze's status code for it;
        the answer's ``deleted`` count is the documented one."""
        payload, problem = parse_json_object(body)
        if payload is None:
            return Reply(400, {"message": problem})
        problem = delete_request_problem(payload)
        if problem is not None:
            return Reply(400, {"message": problem})
        [(kind, values)] = [(k, v) for k, v in payload.items() if k in DELETE_KINDS]
        deleted = sum(self._profiles.delete(kind, value) for value in values)
        notes.append(f"{deleted} profile(s) deleted by {kind}")
        return Reply(200, {"deleted": deleted, "message": "success"})

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
