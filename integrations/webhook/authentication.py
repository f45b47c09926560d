"""Who sent a webhook: the hub's ingest token (in the ``Authorization`` header or in the path)
and, for hubs that require it, the ``X-Komo-Signature`` over the body.

``request.auth`` is the hub, ``request.user`` an ``IngestSender`` for it. The token classes run
in DRF's authentication step, before the throttle, and never return ``None``: a webhook without
a usable token is refused there (401, or 404 for an unknown hub), so strangers learn nothing
about validation. The signature class needs the hub and the body, which is read only after the
rate limit, so the view runs it after the parser (DRF's own loop stops at the first class that
authenticates, so it cannot chain the two).
"""

from __future__ import annotations

import re
from typing import Any

from django.db import DatabaseError
from django.utils.translation import gettext as _
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, NotFound

from integrations import signatures
from integrations.models import Hub
from integrations.services.intake import (
    hub_authenticate_by_slug,
    hub_authenticate_by_token,
    hub_signature_check,
)
from integrations.webhook.errors import Unavailable

SLUG = re.compile(r"[-a-zA-Z0-9_]{1,80}")
REALM = 'realm="komo-webhook"'


class IngestSender:
    """``request.user`` of an authenticated webhook: whoever holds the hub's ingest token."""

    __slots__ = ("hub",)
    is_authenticated = True
    is_anonymous = False

    def __init__(self, hub: Hub) -> None:
        self.hub = hub


def _bearer(request: Any) -> str:
    scheme, _space, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class BearerTokenAuthentication(BaseAuthentication):
    """``POST /api/v1/hubs/<slug>/submissions`` with ``Authorization: Bearer <ingest token>``:
    404 for an unknown hub (also without a token), else 401 unless the token is the hub's."""

    def authenticate(self, request: Any) -> tuple[IngestSender, Hub]:
        slug = request.parser_context["kwargs"]["slug"]
        token = _bearer(request)
        if not SLUG.fullmatch(slug):
            raise NotFound(_("Unknown hub."))
        try:
            hub = hub_authenticate_by_slug(slug=slug, token=token)
        except Hub.DoesNotExist:
            raise NotFound(_("Unknown hub.")) from None
        except DatabaseError as exc:
            raise Unavailable(exc) from None
        if hub is None:
            raise AuthenticationFailed(
                _("Missing or invalid ingest token.")
                if token
                else _("Missing Authorization: Bearer <ingest token> header.")
            )
        return IngestSender(hub), hub

    def authenticate_header(self, request: Any) -> str:
        return f"Bearer {REALM}"


class PathTokenAuthentication(BaseAuthentication):
    """``POST /api/v1/ingest/<ingest token>`` (senders that cannot set headers; the token is
    redacted from every log line): 401 unless the path's token is a hub's."""

    def authenticate(self, request: Any) -> tuple[IngestSender, Hub]:
        try:
            hub = hub_authenticate_by_token(token=request.parser_context["kwargs"]["token"])
        except DatabaseError as exc:
            raise Unavailable(exc) from None
        if hub is None:
            raise AuthenticationFailed(_("Invalid ingest token."))
        return IngestSender(hub), hub

    def authenticate_header(self, request: Any) -> str:
        # Not "Bearer": this endpoint takes the token in its path only.
        return f"IngestToken {REALM}"


class KomoSignatureAuthentication(BaseAuthentication):
    """The hub's ``X-Komo-Signature`` over the body's exact bytes (``request.data``, as kept by
    ``KomoBodyParser``), when the hub requires signed webhooks; 401 naming the problem (missing,
    malformed, expired, wrong). Both secrets of a rotation are accepted."""

    def authenticate(self, request: Any) -> tuple[Any, Hub]:
        hub = request.auth
        try:
            hub_signature_check(
                hub=hub, header=request.META.get(signatures.META_KEY), body=request.data
            )
        except signatures.SignatureError as exc:
            raise AuthenticationFailed(exc.message) from None
        return request.user, hub

    def authenticate_header(self, request: Any) -> str:
        return f"KomoSignature {REALM}"
