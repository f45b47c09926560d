"""Komo webhook intake (DRF).

Contract (DESIGN.md): ``POST /api/v1/hubs/<slug>/submissions`` with ``Authorization: Bearer
<token>`` or ``POST /api/v1/ingest/<token>``; 202 new, 200 repeat of a Komo id, 400 bad body,
401 bad token or signature, 404 unknown hub, 413 too large, 415 not JSON, 429 over the hub's
rate limit, 503 database unavailable. Never a 500: anything that cannot be stored is a 400.
Order: token → rate limit → size and type → signature (over the raw bytes) → JSON. Authentication
comes before the body is read, so strangers learn nothing about validation.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, DataError, IntegrityError
from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations import signatures
from integrations.models import Hub
from integrations.services.intake import (
    IntakeError,
    hub_authenticate_by_slug,
    hub_authenticate_by_token,
    hub_signature_check,
    intake_rate_wait,
    submission_receive,
)

log = logging.getLogger(__name__)

JSON_TYPES = ("application/json",)
SLUG = re.compile(r"[-a-zA-Z0-9_]{1,80}")


class OutputSerializer(serializers.Serializer):
    submission = serializers.UUIDField(source="public_id")
    status = serializers.CharField()


ERROR = inline_serializer("WebhookError", fields={"detail": serializers.CharField()})


def _error(code: int, detail: str, **headers: str) -> Response:
    return Response({"detail": detail}, status=code, headers=headers or None)


def _bearer(request: Request) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _too_large(limit: int) -> str:
    return _("The body is larger than %(limit)d bytes.") % {"limit": limit}


def _read_body(request: Request) -> bytes | Response:
    """The raw body, or an error Response naming the problem (size, content type, empty)."""
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error(400, _("Content-Length is not a number."))
    if declared > limit:
        return _error(413, _too_large(limit))
    media_type = (request.content_type or "").split(";")[0].strip().lower()
    if media_type and media_type not in JSON_TYPES and not media_type.endswith("+json"):
        return _error(
            415,
            _("Content-Type must be application/json, not %(type)s.") % {"type": media_type[:80]},
        )
    try:
        raw = request._request.read(limit + 1)
    except RequestDataTooBig:
        return _error(413, _too_large(limit))
    if len(raw) > limit:
        return _error(413, _too_large(limit))
    if not raw.strip():
        return _error(400, _("The body is empty; expected a JSON object."))
    return raw


def _parse_json(raw: bytes) -> Any:
    """The parsed body, or an error Response naming the problem."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _error(400, _("The body is not valid UTF-8."))
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        return _error(400, _("The body is not valid JSON: %(error)s") % {"error": str(exc)[:120]})


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in JSON")


class _IntakeView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    parser_classes: list = []
    # JSON only: the webhook never answers with the browsable API, so there is nothing to
    # negotiate (DRF's Accept parsing was ~4 % of the webhook's CPU).
    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False):
        return JSONRenderer(), JSONRenderer.media_type

    def receive(self, request: Request, hub: Hub) -> Response:
        wait = intake_rate_wait(hub=hub)
        if wait:
            return _error(
                429,
                _("More webhooks than this hub accepts per minute; retry after %(seconds)d s.")
                % {"seconds": wait},
                **{"Retry-After": str(wait)},
            )
        raw = _read_body(request)
        if isinstance(raw, Response):
            return raw
        try:
            hub_signature_check(hub=hub, header=request.META.get(signatures.META_KEY), body=raw)
        except signatures.SignatureError as exc:
            return _error(401, exc.message)
        body = _parse_json(raw)
        if isinstance(body, Response):
            return body
        try:
            result = submission_receive(hub=hub, payload=body)
        except IntakeError as exc:
            return _error(400, exc.message)
        # The OutputSerializer's shape, built directly: the serializer cost ~2 % of the webhook.
        data = {"submission": str(result.submission.public_id), "status": result.submission.status}
        return Response(
            data, status=status.HTTP_202_ACCEPTED if result.created else status.HTTP_200_OK
        )

    def handle_exception(self, exc):
        if isinstance(exc, DataError | IntegrityError):
            # The database refused a value: retrying the same body can never succeed.
            log.error("webhook intake: body refused by the database: %s", type(exc).__name__)
            return _error(400, _("The body cannot be stored: the database refused a value."))
        if isinstance(exc, DatabaseError):
            log.error("webhook intake: database unavailable: %s", type(exc).__name__)
            return _error(
                503, _("Temporarily unavailable, please retry."), **{"Retry-After": "5"}
            )
        return super().handle_exception(exc)


@extend_schema_field(
    {"oneOf": [{"type": "string", "minLength": 1, "maxLength": 200}, {"type": "integer"}]}
)
class _KomoKeyField(serializers.Field):
    """Documentation only: ``id`` and ``event`` are strings (a number is accepted too)."""


KOMO_WEBHOOK = inline_serializer(
    "KomoWebhook",
    fields={
        "id": _KomoKeyField(help_text="Komo's event id (GUID); the idempotency key per hub."),
        "event": _KomoKeyField(help_text="e.g. CompetitionEntrySuccess, CardViewed, QuizStarted."),
        "timestamp": serializers.DateTimeField(help_text="ISO 8601."),
        # Kept as received whatever their type (Komo sends strings; nothing is refused for it).
        **{
            name: serializers.JSONField(required=False)
            for name in (
                "site_id", "site_name", "user_session_id", "user_profile_id", "card_id",
                "card_name", "card_type", "score", "correct", "competition_entry_id",
                "submission_id",
            )
        },
    },
)
KOMO_WEBHOOK_DESCRIPTION = (
    "Komo's flat JSON body. Every captured form field (email, first_name, optin, …) is an extra "
    "top-level key, usually a string; all of them are stored as received. Bodies over the size "
    "limit (1 MB by default) get 413; more webhooks per minute than the hub accepts get 429 "
    "with Retry-After; 503 with Retry-After means retry later."
)
INTAKE_RESPONSES = {
    202: OutputSerializer,
    200: OpenApiResponse(OutputSerializer, description="Repeat of a known Komo id"),
    400: ERROR,
    401: ERROR,
    404: ERROR,
    413: ERROR,
    415: ERROR,
    429: ERROR,
    503: ERROR,
}
SIGNATURE_PARAMETER = OpenApiParameter(
    name=signatures.HEADER,
    type=str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.' + body>; required by hubs that "
    "require signed webhooks (five-minute window).",
)


class HubSubmissionsApi(_IntakeView):
    @extend_schema(
        operation_id="hub_submission_create",
        request={"application/json": KOMO_WEBHOOK},
        parameters=[SIGNATURE_PARAMETER],
        auth=[{"ingestToken": []}],
        description=KOMO_WEBHOOK_DESCRIPTION,
        responses=INTAKE_RESPONSES,
        summary="Receive a Komo webhook body (token in header)",
    )
    def post(self, request: Request, slug: str) -> Response:
        token = _bearer(request)
        if not SLUG.fullmatch(slug):
            return _error(404, _("Unknown hub."))
        try:
            hub = hub_authenticate_by_slug(slug=slug, token=token)
        except Hub.DoesNotExist:
            return _error(404, _("Unknown hub."))
        if hub is None:
            return _error(
                401,
                _("Missing or invalid ingest token.")
                if token
                else _("Missing Authorization: Bearer <ingest token> header."),
            )
        return self.receive(request, hub)


class TokenIngestApi(_IntakeView):
    @extend_schema(
        operation_id="ingest_create",
        request={"application/json": KOMO_WEBHOOK},
        parameters=[SIGNATURE_PARAMETER],
        auth=[],
        description=KOMO_WEBHOOK_DESCRIPTION
        + " The ingest token is the last path segment (for senders that cannot set headers).",
        responses=INTAKE_RESPONSES,
        summary="Receive a Komo webhook body (token in path)",
    )
    def post(self, request: Request, token: str) -> Response:
        hub = hub_authenticate_by_token(token=token)
        if hub is None:
            return _error(401, _("Invalid ingest token."))
        return self.receive(request, hub)


urlpatterns = [
    # <str:…>, not <slug:…>: any hub name reaches the view and gets the JSON 404 of the contract.
    path("hubs/<str:slug>/submissions", HubSubmissionsApi.as_view(), name="hub_submissions"),
    path("hubs/<str:slug>/submissions/", HubSubmissionsApi.as_view()),
    path("ingest/<str:token>", TokenIngestApi.as_view(), name="ingest"),
    path("ingest/<str:token>/", TokenIngestApi.as_view()),
]


def schema_without_slash_aliases(endpoints, **kwargs):
    """drf-spectacular preprocessing hook: document each webhook once, without the trailing slash
    alias that is accepted as well."""
    return [e for e in endpoints if not (e[0].startswith("/api/v1/") and e[0].endswith("/"))]
