"""Komo webhook intake: two DRF views, served by ``IntakeMiddleware``.

Contract (DESIGN.md, README "Webhook"): ``POST /api/v1/hubs/<slug>/submissions`` with
``Authorization: Bearer <token>`` or ``POST /api/v1/ingest/<token>``; 202 new, 200 repeat of a
Komo id, 400 bad body, 401 bad token or signature, 404 unknown hub, 405 not a POST, 413 too large,
415 not JSON, 429 over the hub's rate limit, 503 database unavailable. Never a 500: anything that
cannot be stored is a 400. Every answer is JSON ``{"submission", "status"}`` or ``{"detail":
"<the problem>"}``.

Order: method → token (authentication class) → rate limit (throttle class) → type and size
(negotiation, parser) → signature (over the raw bytes) → JSON and envelope (serializer) → one
INSERT. Authentication comes before the body is read, so strangers learn nothing about
validation. The parts are in ``integrations/webhook/``; each does only what the webhook needs
(docs/decisions.md). drf-spectacular describes both views at ``/api/schema/``;
``tests/test_schema.py`` runs schemathesis against it.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import DatabaseError, DataError, IntegrityError
from django.http import HttpResponse
from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema_view
from rest_framework.exceptions import APIException, MethodNotAllowed, ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.services.intake import IntakeError, submission_receive
from integrations.services.intake_window import intake_settle
from integrations.webhook.authentication import (
    BearerTokenAuthentication,
    KomoSignatureAuthentication,
    PathTokenAuthentication,
)
from integrations.webhook.errors import RateLimited, Unavailable
from integrations.webhook.io import (
    KomoBodyParser,
    WebhookJSONRenderer,
    WebhookNegotiation,
    body_empty,
)
from integrations.webhook.schema import webhook_schema
from integrations.webhook.serializers import KomoWebhookSerializer
from integrations.webhook.throttling import HubIntakeThrottle

log = logging.getLogger(__name__)
_RENDERER = WebhookJSONRenderer()


def _answer(public_id: uuid.UUID, state: str, *, status: int) -> HttpResponse:
    """The answer to a stored body, ``{"submission": "<uuid>", "status": "<status>"}``, without
    DRF's ``Response`` (a template response that renders itself later: a tenth of DRF's cost
    per webhook, for two strings that need no escaping: a UUID and a status code). Refusals go
    through DRF's exception handler and its ``Response``."""
    content = b'{"submission":"%s","status":"%s"}' % (str(public_id).encode(), state.encode())
    response = HttpResponse(content, status=status, content_type=_RENDERER.media_type)
    response["Content-Length"] = str(len(content))
    return response


class KomoWebhookView(APIView):
    """Receive one Komo webhook body for the hub its token names (``request.auth``)."""

    http_method_names = ["post"]  # OPTIONS and HEAD too are "not a POST": 405
    parser_classes = [KomoBodyParser]
    renderer_classes = [WebhookJSONRenderer]
    content_negotiation_class = WebhookNegotiation
    permission_classes: list[type] = []  # the token classes refuse or authenticate; nothing else
    throttle_classes = [HubIntakeThrottle]
    signature_authentication_class = KomoSignatureAuthentication
    metadata_class = None
    versioning_class = None

    # DRF instantiates these classes for every request; they keep no state, so once is enough.
    _parsers = [KomoBodyParser()]
    _renderers = [_RENDERER]
    _negotiator = WebhookNegotiation()
    _authenticators: list[Any] = []  # set per subclass from authentication_classes

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._authenticators = [auth() for auth in cls.authentication_classes]

    def get_authenticators(self) -> list[Any]:
        return self._authenticators

    def get_parsers(self) -> list[KomoBodyParser]:
        return self._parsers

    def get_renderers(self) -> list[WebhookJSONRenderer]:
        return self._renderers

    def get_content_negotiator(self) -> WebhookNegotiation:
        return self._negotiator

    @property
    def default_response_headers(self) -> dict[str, str]:
        return {"Allow": "POST"}  # (DRF derives it from http_method_names on every request)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """DRF's ``initial`` without the steps that do nothing for this view (format suffixes,
        versioning, and permissions while it has no permission classes): the method, the one
        renderer, then authentication and the throttle, as DRF orders them."""
        if request.method != "POST":  # before the token, as the contract says: not a POST is 405
            raise MethodNotAllowed(request.method)
        self.format_kwarg = None
        request.accepted_renderer, request.accepted_media_type = (
            self._negotiator.select_renderer(request, self._renderers)
        )
        request.version, request.versioning_scheme = None, None
        self.perform_authentication(request)
        if self.permission_classes:
            self.check_permissions(request)
        self.check_throttles(request)

    def throttled(self, request: Request, wait: float | None) -> None:
        raise RateLimited(int(wait or 1))

    def post(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        hub = request.auth
        try:
            body = self.body_accept(request)
            result = submission_receive(
                hub=hub, payload=body.validated_data, text=body.text, komo_time=body.komo_time
            )
        except (APIException, IntakeError) as exc:
            intake_settle(hub=hub)  # a refused body counts towards the hub's limit too
            if isinstance(exc, IntakeError):
                raise ParseError(exc.message) from None
            raise
        except (DataError, IntegrityError) as exc:
            # The database refused a value: retrying the same body can never succeed.
            log.error("webhook intake: body refused by the database: %s", type(exc).__name__)
            refused = _("The body cannot be stored: the database refused a value.")
            raise ParseError(refused) from None
        except DatabaseError as exc:
            raise Unavailable(exc) from None
        return _answer(result.public_id, result.status, status=202 if result.created else 200)

    def body_accept(self, request: Request) -> KomoWebhookSerializer:
        """The body, read (type, size), its signature checked and its envelope validated."""
        if not request.data:  # no body at all: DRF answers {} without asking the parser
            raise body_empty()
        self.signature_authentication_class().authenticate(request)
        body = KomoWebhookSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return body

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any):
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response):  # a refusal, from DRF's exception handler
            # Rendered here to set the length: the webhook's path skips CommonMiddleware.
            response.render()
            response["Content-Length"] = str(len(response.content))
        # DRF's request, view and response refer to one another (the parser's and the renderer's
        # contexts); nothing reads those after rendering. Left to the garbage collector, these
        # cycles cost more CPU than the rest of DRF together (docs/decisions.md), so the last
        # references to them are dropped here and everything is freed as the request ends.
        request.parser_context = {}
        if isinstance(response, Response):
            response.renderer_context = None
        return response


@extend_schema_view(post=webhook_schema(
    operation_id="hub_submission_create",
    summary="Receive a Komo webhook body (token in header)",
    path_parameter=OpenApiParameter("slug", str, OpenApiParameter.PATH, description="The hub."),
))
class HubSubmissionsView(KomoWebhookView):
    authentication_classes = [BearerTokenAuthentication]


@extend_schema_view(post=webhook_schema(
    operation_id="ingest_create",
    summary="Receive a Komo webhook body (token in path)",
    path_parameter=OpenApiParameter(
        "token", str, OpenApiParameter.PATH, description="The hub's ingest token."
    ),
    extra=" The ingest token is the last path segment (for senders that cannot set headers).",
))
class IngestView(KomoWebhookView):
    authentication_classes = [PathTokenAuthentication]


urlpatterns = [
    # <str:…>, not <slug:…>: any hub name reaches the view and gets the JSON 404 of the contract.
    path("hubs/<str:slug>/submissions", HubSubmissionsView.as_view(), name="hub_submissions"),
    path("ingest/<str:token>", IngestView.as_view(), name="ingest"),
    # The trailing-slash aliases are accepted but not documented (schema=None).
    path("hubs/<str:slug>/submissions/", HubSubmissionsView.as_view(schema=None)),
    path("ingest/<str:token>/", IngestView.as_view(schema=None)),
]
