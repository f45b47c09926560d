"""Komo webhook intake (DRF).

Contract (DESIGN.md): ``POST /api/v1/hubs/<slug>/submissions`` with ``Authorization: Bearer
<token>`` or ``POST /api/v1/ingest/<token>``; 202 new, 200 repeat of a Komo id, 400 bad body,
401 bad token, 404 unknown hub, 413 too large, 415 not JSON, 503 database unavailable.
Authentication comes before the body is read, so strangers learn nothing about validation.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.models import Hub
from integrations.services.intake import (
    IntakeError,
    hub_authenticate_by_slug,
    hub_authenticate_by_token,
    submission_receive,
)

log = logging.getLogger(__name__)

JSON_TYPES = ("application/json",)


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


def _read_json(request: Request):
    """The parsed body, or an error Response naming the problem."""
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error(400, "Content-Length is not a number.")
    if declared > limit:
        return _error(413, f"The body is larger than {limit} bytes.")
    media_type = (request.content_type or "").split(";")[0].strip().lower()
    if media_type and media_type not in JSON_TYPES and not media_type.endswith("+json"):
        return _error(415, f"Content-Type must be application/json, not {media_type[:80]}.")
    try:
        raw = request._request.read(limit + 1)
    except RequestDataTooBig:
        return _error(413, f"The body is larger than {limit} bytes.")
    if len(raw) > limit:
        return _error(413, f"The body is larger than {limit} bytes.")
    if not raw.strip():
        return _error(400, "The body is empty; expected a JSON object.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _error(400, "The body is not valid UTF-8.")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        return _error(400, f"The body is not valid JSON: {str(exc)[:120]}")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in JSON")


class _IntakeView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    parser_classes: list = []

    def receive(self, request: Request, hub: Hub) -> Response:
        body = _read_json(request)
        if isinstance(body, Response):
            return body
        try:
            result = submission_receive(hub=hub, payload=body)
        except IntakeError as exc:
            return _error(400, exc.message)
        data = OutputSerializer(result.submission).data
        return Response(
            data, status=status.HTTP_202_ACCEPTED if result.created else status.HTTP_200_OK
        )

    def handle_exception(self, exc):
        if isinstance(exc, DatabaseError):
            log.error("webhook intake: database unavailable: %s", type(exc).__name__)
            return _error(503, "Temporarily unavailable, please retry.", **{"Retry-After": "5"})
        return super().handle_exception(exc)


INTAKE_RESPONSES = {
    202: OutputSerializer,
    200: OpenApiResponse(OutputSerializer, description="Repeat of a known Komo id"),
    400: ERROR,
    401: ERROR,
    404: ERROR,
    413: ERROR,
    415: ERROR,
    503: ERROR,
}


class HubSubmissionsApi(_IntakeView):
    @extend_schema(
        operation_id="hub_submission_create",
        request=OpenApiTypes.OBJECT,
        responses=INTAKE_RESPONSES,
        summary="Receive a Komo webhook body (token in header)",
    )
    def post(self, request: Request, slug: str) -> Response:
        token = _bearer(request)
        try:
            hub = hub_authenticate_by_slug(slug=slug, token=token)
        except Hub.DoesNotExist:
            return _error(404, "Unknown hub.")
        if hub is None:
            return _error(
                401,
                "Missing or invalid ingest token."
                if token
                else "Missing Authorization: Bearer <ingest token> header.",
            )
        return self.receive(request, hub)


class TokenIngestApi(_IntakeView):
    @extend_schema(
        operation_id="ingest_create",
        request=OpenApiTypes.OBJECT,
        responses=INTAKE_RESPONSES,
        summary="Receive a Komo webhook body (token in path)",
    )
    def post(self, request: Request, token: str) -> Response:
        hub = hub_authenticate_by_token(token=token)
        if hub is None:
            return _error(401, "Invalid ingest token.")
        return self.receive(request, hub)


urlpatterns = [
    path("hubs/<slug:slug>/submissions", HubSubmissionsApi.as_view(), name="hub_submissions"),
    path("hubs/<slug:slug>/submissions/", HubSubmissionsApi.as_view()),
    path("ingest/<str:token>", TokenIngestApi.as_view(), name="ingest"),
    path("ingest/<str:token>/", TokenIngestApi.as_view()),
]


def schema_without_slash_aliases(endpoints, **kwargs):
    """drf-spectacular preprocessing hook: document each webhook once, without the trailing slash
    alias that is accepted as well."""
    return [e for e in endpoints if not (e[0].startswith("/api/v1/") and e[0].endswith("/"))]
