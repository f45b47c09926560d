"""Komo webhook intake: two plain Django views, served by ``IntakeMiddleware``.

Contract (DESIGN.md): ``POST /api/v1/hubs/<slug>/submissions`` with ``Authorization: Bearer
<token>`` or ``POST /api/v1/ingest/<token>``; 202 new, 200 repeat of a Komo id, 400 bad body,
401 bad token or signature, 404 unknown hub, 405 not a POST, 413 too large, 415 not JSON, 429
over the hub's rate limit, 503 database unavailable. Never a 500: anything that cannot be stored
is a 400. Every answer is JSON ``{"submission", "status"}`` or ``{"detail": "<the problem>"}``.
Order: token → rate limit → size and type → signature (over the raw bytes) → JSON. Authentication
comes before the body is read, so strangers learn nothing about validation.

Plain views rather than DRF's ``APIView``: the webhook parses its body itself (the signature is
over the raw bytes) and answers two fixed shapes, so DRF's request wrapping, negotiation and
rendering did nothing for it but cost a tenth of its CPU (docs/decisions.md). Its OpenAPI
description is written out below (``WEBHOOK_PATHS``) and added to drf-spectacular's schema by
``schema_add_webhooks``; ``tests/test_schema.py`` runs schemathesis against it.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, DataError, IntegrityError
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations import signatures
from integrations.models import Hub, SubmissionStatus
from integrations.services.intake import (
    IntakeError,
    ReceiveResult,
    hub_authenticate_by_slug,
    hub_authenticate_by_token,
    hub_signature_check,
    submission_receive,
)
from integrations.services.intake_window import intake_rate_wait, intake_settle

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"
SLUG = re.compile(r"[-a-zA-Z0-9_]{1,80}")


def _json(status: int, data: dict[str, str], **headers: str) -> HttpResponse:
    body = json.dumps(data, ensure_ascii=False).encode()
    response = HttpResponse(body, status=status, content_type=JSON_TYPE, headers=headers or None)
    # Set here because the webhook's path skips CommonMiddleware, which would set it.
    response["Content-Length"] = str(len(body))
    return response


def _error(code: int, detail: str, **headers: str) -> HttpResponse:
    return _json(code, {"detail": detail}, **headers)


class _Refused(Exception):
    """Ends a webhook early with ``response``."""

    def __init__(self, response: HttpResponse) -> None:
        self.response = response


def _bearer(request: HttpRequest) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _space, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _too_large(limit: int) -> str:
    return _("The body is larger than %(limit)d bytes.") % {"limit": limit}


def _read_body(request: HttpRequest) -> bytes:
    """The raw body; raises ``_Refused`` naming the problem (size, content type, empty)."""
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise _Refused(_error(400, _("Content-Length is not a number."))) from None
    if declared > limit:
        raise _Refused(_error(413, _too_large(limit)))
    media_type = (request.content_type or "").split(";")[0].strip().lower()
    if media_type and media_type != JSON_TYPE and not media_type.endswith("+json"):
        raise _Refused(
            _error(
                415,
                _("Content-Type must be application/json, not %(type)s.")
                % {"type": media_type[:80]},
            )
        )
    try:
        raw = request.read(limit + 1)
    except RequestDataTooBig:
        raise _Refused(_error(413, _too_large(limit))) from None
    if len(raw) > limit:
        raise _Refused(_error(413, _too_large(limit)))
    if not raw.strip():
        raise _Refused(_error(400, _("The body is empty; expected a JSON object.")))
    return raw


def _parse_json(raw: bytes) -> tuple[Any, str]:
    """The parsed body and its text; raises ``_Refused`` naming the problem."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(_error(400, _("The body is not valid UTF-8."))) from None
    try:
        return json.loads(text, parse_constant=_reject_constant), text
    except (ValueError, RecursionError) as exc:
        raise _Refused(
            _error(400, _("The body is not valid JSON: %(error)s") % {"error": str(exc)[:120]})
        ) from None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in JSON")


def _receive(request: HttpRequest, hub: Hub) -> HttpResponse:
    """Everything after the hub is known; database trouble becomes 400 or 503, never 500."""
    wait = intake_rate_wait(hub=hub)
    if wait:
        return _error(
            429,
            _("More webhooks than this hub accepts per minute; retry after %(seconds)d s.")
            % {"seconds": wait},
            **{"Retry-After": str(wait)},
        )
    try:
        result = _store(request, hub)
    except _Refused as refused:
        intake_settle(hub=hub)  # a refused body counts towards the hub's limit too
        return refused.response
    except (DataError, IntegrityError) as exc:
        # The database refused a value: retrying the same body can never succeed.
        log.error("webhook intake: body refused by the database: %s", type(exc).__name__)
        return _error(400, _("The body cannot be stored: the database refused a value."))
    except DatabaseError as exc:
        return _unavailable(exc)
    return _json(
        202 if result.created else 200,
        {"submission": str(result.public_id), "status": result.status},
    )


def _store(request: HttpRequest, hub: Hub) -> ReceiveResult:
    raw = _read_body(request)
    try:
        hub_signature_check(hub=hub, header=request.META.get(signatures.META_KEY), body=raw)
    except signatures.SignatureError as exc:
        raise _Refused(_error(401, exc.message)) from None
    body, text = _parse_json(raw)
    try:
        return submission_receive(hub=hub, payload=body, text=text)
    except IntakeError as exc:
        raise _Refused(_error(400, exc.message)) from None


def _unavailable(exc: DatabaseError) -> HttpResponse:
    log.error("webhook intake: database unavailable: %s", type(exc).__name__)
    return _error(503, _("Temporarily unavailable, please retry."), **{"Retry-After": "5"})


@csrf_exempt
@require_POST
def hub_submissions(request: HttpRequest, slug: str) -> HttpResponse:
    token = _bearer(request)
    if not SLUG.fullmatch(slug):
        return _error(404, _("Unknown hub."))
    try:
        hub = hub_authenticate_by_slug(slug=slug, token=token)
    except Hub.DoesNotExist:
        return _error(404, _("Unknown hub."))
    except DatabaseError as exc:
        return _unavailable(exc)
    if hub is None:
        return _error(
            401,
            _("Missing or invalid ingest token.")
            if token
            else _("Missing Authorization: Bearer <ingest token> header."),
        )
    return _receive(request, hub)


@csrf_exempt
@require_POST
def ingest(request: HttpRequest, token: str) -> HttpResponse:
    try:
        hub = hub_authenticate_by_token(token=token)
    except DatabaseError as exc:
        return _unavailable(exc)
    if hub is None:
        return _error(401, _("Invalid ingest token."))
    return _receive(request, hub)


urlpatterns = [
    # <str:…>, not <slug:…>: any hub name reaches the view and gets the JSON 404 of the contract.
    path("hubs/<str:slug>/submissions", hub_submissions, name="hub_submissions"),
    path("hubs/<str:slug>/submissions/", hub_submissions),
    path("ingest/<str:token>", ingest, name="ingest"),
    path("ingest/<str:token>/", ingest),
]


# --- OpenAPI (added to drf-spectacular's /api/schema/) ----------------------------------------

_KOMO_KEY = {"oneOf": [{"type": "string", "minLength": 1, "maxLength": 200}, {"type": "integer"}]}
WEBHOOK_COMPONENTS: dict[str, Any] = {
    "KomoWebhook": {
        "type": "object",
        "description": "Komo's flat JSON body. Every captured form field (email, first_name, "
        "optin, …) is an extra top-level key, usually a string; all of them are stored as "
        "received.",
        "properties": {
            "id": {**_KOMO_KEY, "description": "Komo's event id (GUID); the idempotency key "
                   "per hub."},  # fmt: skip
            "event": {**_KOMO_KEY, "description": "e.g. CompetitionEntrySuccess, CardViewed, "
                      "QuizStarted."},  # fmt: skip
            "timestamp": {"type": "string", "format": "date-time", "description": "ISO 8601."},
            # Kept as received whatever their type (Komo sends strings; nothing is refused for it).
            **{
                name: {}
                for name in (
                    "site_id", "site_name", "user_session_id", "user_profile_id", "card_id",
                    "card_name", "card_type", "score", "correct", "competition_entry_id",
                    "submission_id",
                )  # fmt: skip
            },
        },
        "required": ["id", "event", "timestamp"],
    },
    "WebhookAccepted": {
        "type": "object",
        "properties": {
            "submission": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": list(SubmissionStatus.values)},
        },
        "required": ["submission", "status"],
    },
    "WebhookError": {
        "type": "object",
        "properties": {"detail": {"type": "string", "description": "The problem, in words."}},
        "required": ["detail"],
    },
}
_ERRORS = {
    "400": "The body is not a storable Komo webhook (the detail names the problem).",
    "401": "Missing or invalid ingest token, or a missing, expired or wrong signature.",
    "404": "Unknown hub.",
    "413": "The body is larger than the limit (1 MB by default).",
    "415": "The Content-Type is not JSON.",
    "429": "More webhooks per minute than the hub accepts; retry after Retry-After seconds.",
    "503": "Temporarily unavailable (the database); retry after Retry-After seconds.",
}


def _ref(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _operation(
    operation_id: str, summary: str, extra: str, path_parameter: str, security: list
) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "description": "Receive one Komo webhook body; it is stored once per hub and Komo "
            "id, then delivered to Braze as the hub is configured." + extra,
            "tags": ["webhook"],
            "parameters": [
                {"in": "path", "name": path_parameter, "required": True,
                 "schema": {"type": "string"}},  # fmt: skip
                {
                    "in": "header",
                    "name": signatures.HEADER,
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.' + body>; "
                    "required by hubs that require signed webhooks (five-minute window).",
                },
            ],
            "requestBody": {"required": True, "content": _ref("KomoWebhook")},
            "security": security,
            "responses": {
                "202": {"description": "Stored; delivery follows.", "content": _ref(
                    "WebhookAccepted")},  # fmt: skip
                "200": {"description": "Repeat of a known Komo id: the stored submission.",
                        "content": _ref("WebhookAccepted")},  # fmt: skip
                **{
                    code: {
                        "description": text,
                        "content": _ref("WebhookError"),
                        **(
                            {"headers": {"Retry-After": {"schema": {"type": "integer"}}}}
                            if code in ("429", "503")
                            else {}
                        ),
                    }
                    for code, text in _ERRORS.items()
                },
            },
        }
    }


WEBHOOK_PATHS: dict[str, Any] = {
    "/api/v1/hubs/{slug}/submissions": _operation(
        "hub_submission_create",
        "Receive a Komo webhook body (token in header)",
        "",
        "slug",
        [{"ingestToken": []}],
    ),
    "/api/v1/ingest/{token}": _operation(
        "ingest_create",
        "Receive a Komo webhook body (token in path)",
        " The ingest token is the last path segment (for senders that cannot set headers).",
        "token",
        [],
    ),
}


def schema_add_webhooks(result: dict[str, Any], generator: Any, request: Any, public: bool):
    """drf-spectacular postprocessing hook: the two webhook endpoints (plain Django views, which
    it cannot inspect) and their components. The trailing-slash aliases are accepted but not
    documented."""
    result.setdefault("paths", {}).update(WEBHOOK_PATHS)
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(WEBHOOK_COMPONENTS)
    components.setdefault("securitySchemes", {})["ingestToken"] = {
        "type": "http",
        "scheme": "bearer",
    }
    return result
