"""Middleware: the webhook's short path past the page stack, headers Django does not set itself
(a strict Content-Security-Policy and friends) and sign-in throttling."""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
import time
import unicodedata
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.core.cache import caches
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse
from django.urls import resolve, reverse
from django.utils import translation
from django.utils.translation import gettext as _

from integrations import metrics
from integrations.logging import context_hub, context_request_begin, context_request_end

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
# Sign-in failures: Redis when configured, else the database cache, so every process shares them.
LOGIN_THROTTLE_CACHE = "login_throttle"

GetResponse = Callable[[HttpRequest], HttpResponse]


class IntakeMiddleware:
    """Serves the webhook's paths (``settings.INTAKE_PATH_PREFIXES``) itself, past the rest of the
    middleware stack, the way WhiteNoise serves static files.

    Sessions, CSRF, authentication, messages, clickjacking and sign-in throttling are for people in
    browsers; a webhook uses none of them, and running them was a third of its CPU
    (docs/scaling.md). Only the middleware above this one (HTTPS redirect, HSTS and the security
    headers) applies. The view is resolved and called as Django's handler would; the language of
    its messages comes from the request as LocaleMiddleware would choose it, and is reset after,
    so a webhook never inherits the language of the page the same process served before.
    """

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.prefixes = tuple(settings.INTAKE_PATH_PREFIXES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(self.prefixes):
            return self.get_response(request)
        match = resolve(request.path_info)  # Resolver404 becomes the usual 404 answer
        request.resolver_match = match
        started, status = time.perf_counter(), 500
        try:
            with translation.override(translation.get_language_from_request(request)):
                response = match.func(request, *match.args, **match.kwargs)
                if callable(getattr(response, "render", None)):
                    response = response.render()
            status = response.status_code
            return response
        finally:  # the hub is known once authenticated (services/intake.py binds it)
            metrics.webhook_observed(context_hub(), status, time.perf_counter() - started)


REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestIdMiddleware:
    """Gives every request an id for the log lines it causes: the proxy's ``X-Request-ID`` when
    it looks like one (letters, digits, ``._:-``, at most 128), else a new random one; answered
    in the same header. The id and (once known) the hub go on every log record
    (``integrations.logging.RequestContextFilter``)."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = given if _SANE_REQUEST_ID.fullmatch(given) else secrets.token_hex(16)
        request.request_id = request_id
        context_request_begin(request_id)  # ended by request_finished, after Django's own
        response = self.get_response(request)  # "Bad Request: …" line (django.request)
        response.headers.setdefault(REQUEST_ID_HEADER, request_id)
        return response


def _request_context_end(**kwargs: object) -> None:
    context_request_end()


request_finished.connect(_request_context_end, dispatch_uid="portal-request-context-end")


class SecurityHeadersMiddleware:
    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


@lru_cache(maxsize=1)
def _login_paths() -> frozenset[str]:
    return frozenset({reverse("admin:login")})


def _client_address(request: HttpRequest) -> str:
    # REMOTE_ADDR only: a client-supplied X-Forwarded-For would let anyone pick a fresh bucket.
    return request.META.get("REMOTE_ADDR", "") or "-"


def login_throttle_username(raw: str) -> str:
    """The bucket name of a typed username: every spelling Django's sign-in form authenticates as
    one account shares it. The form strips the text and NFKC-normalises it (``UsernameField``,
    as ``AbstractBaseUser.normalize_username`` does on save), so ``ｃarol`` and ``𝐜arol`` are
    ``carol``; case is folded on top, so ``Carol`` counts against ``carol`` too (stricter)."""
    text = unicodedata.normalize("NFKC", raw).strip().casefold()
    return unicodedata.normalize("NFKC", text)


def _window() -> tuple[int, float]:
    """The current fixed window's number and the seconds left in it."""
    seconds = max(1, settings.LOGIN_THROTTLE_SECONDS)
    now = time.time()
    window = int(now // seconds)
    return window, (window + 1) * seconds - now


def _throttle_key(request: HttpRequest, window: int) -> str:
    username = login_throttle_username(str(request.POST.get("username", "")))
    identity = f"{username}\x00{_client_address(request)}".encode()
    return f"login-fail:{window}:{hashlib.sha256(identity).hexdigest()[:40]}"


def _slots(key: str) -> list[str]:
    return [f"{key}:{slot}" for slot in range(max(1, settings.LOGIN_THROTTLE_ATTEMPTS))]


def _reserve(key: str) -> str | None:
    """Takes a free attempt slot of this window, or ``None`` when all are used (throttled).

    Each slot is an ``add`` (atomic in Redis and in the database cache, whose key is unique), so
    however many processes answer at once, at most ``LOGIN_THROTTLE_ATTEMPTS`` passwords are
    checked per window; a read-then-increment count would let a parallel burst through. A cache
    that fails gives an empty string: not throttled, never everybody locked out."""
    cache = caches[LOGIN_THROTTLE_CACHE]
    try:
        for slot in _slots(key):
            if cache.add(slot, 1, settings.LOGIN_THROTTLE_SECONDS + 5):
                return slot
    except Exception:  # throttling must never lock everybody out because a cache is down
        log.warning("sign-in throttling: cache unavailable; not throttling", exc_info=True)
        return ""
    return None


def _release(*slots: str) -> None:
    try:
        caches[LOGIN_THROTTLE_CACHE].delete_many([slot for slot in slots if slot])
    except Exception:
        log.warning("sign-in throttling: cache unavailable", exc_info=True)


def _too_many(retry_after: float) -> HttpResponse:
    minutes = max(1, math.ceil(retry_after / 60))
    message = _(
        "Too many failed sign-ins for this username from your address. "
        "Try again in %(minutes)d minute(s)."
    ) % {"minutes": minutes}
    response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return response


class LoginThrottleMiddleware:
    """Failed sign-ins are counted per username (as Django matches it, see
    ``login_throttle_username``) + client address in a fixed window (``LOGIN_THROTTLE_ATTEMPTS``
    per ``LOGIN_THROTTLE_SECONDS``) in the ``login_throttle`` cache, shared by every process
    (Redis, else the database); beyond that, sign-in POSTs are answered 429 with ``Retry-After``
    without checking the password. A successful sign-in clears the count. The admin's login view
    re-renders the form (200) on failure and redirects on success, which is what is counted."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or request.path_info not in _login_paths():
            return self.get_response(request)
        window, left = _window()
        key = _throttle_key(request, window)
        slot = _reserve(key)
        if slot is None:
            log.warning("sign-in throttled for %s", _client_address(request))
            return _too_many(left)
        response = self.get_response(request)
        if 300 <= response.status_code < 400:
            _release(*_slots(key))  # signed in: the count starts again
        elif response.status_code != 200:
            _release(slot)  # not a password refused (e.g. CSRF failure): no guess was made
        return response
