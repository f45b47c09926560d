"""JSON in, JSON out: the parser that keeps the body's raw bytes, the one renderer, and a content
negotiation that picks them at once.

The signature is over the exact bytes received, and the body is stored as the JSON text it
arrived as, so the parser does not parse: it reads the bytes within ``WEBHOOK_MAX_BODY_BYTES``
and hands them on unchanged (``request.data`` is ``bytes``); the envelope serializer parses them
once, after the signature. Every answer is JSON whatever the sender accepts, so no ``Accept``
header is consulted.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer

from integrations.webhook.errors import PayloadTooLarge

JSON_TYPE = "application/json"
# Built once: json.dumps with any option builds a new encoder per call (a third of its time).
_ENCODER = json.JSONEncoder(ensure_ascii=False)


def body_empty() -> ParseError:
    return ParseError(_("The body is empty; expected a JSON object."))


class KomoBodyParser(BaseParser):
    """The body as received (``bytes``): 413 over the limit (by the declared length before
    reading anything, and by what was read, so a lying ``Content-Length`` cannot sneak more in),
    400 when it is blank."""

    media_type = JSON_TYPE

    def parse(self, stream: Any, media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> bytes:  # fmt: skip
        limit = settings.WEBHOOK_MAX_BODY_BYTES
        request = parser_context["request"] if parser_context else None
        if request is not None and int(request.META.get("CONTENT_LENGTH") or 0) > limit:
            raise PayloadTooLarge(limit)  # (DRF has checked that it is a number)
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(limit)
        if not raw.strip():
            raise body_empty()
        return raw


def json_media_type(content_type: str) -> bool:
    """``application/json``, any ``+json`` type, or none at all (senders that set no type)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return not media_type or media_type == JSON_TYPE or media_type.endswith("+json")


class WebhookNegotiation(BaseContentNegotiation):
    """The webhook's one parser for JSON bodies (else 415 naming the type), its one renderer."""

    def select_parser(self, request: Any, parsers: list[BaseParser]) -> BaseParser:
        content_type = request.content_type or ""
        if json_media_type(content_type):
            return parsers[0]
        media_type = content_type.split(";", 1)[0].strip().lower()[:80]
        raise UnsupportedMediaType(
            media_type,
            detail=_("Content-Type must be application/json, not %(type)s.") % {"type": media_type},
        )

    def select_renderer(self, request: Any, renderers: list[BaseRenderer],
                        format_suffix: str | None = None) -> tuple[BaseRenderer, str]:  # fmt: skip
        renderer = renderers[0]
        return renderer, renderer.media_type


class WebhookJSONRenderer(BaseRenderer):
    """``json.dumps`` of the answer's small dict, UTF-8, nothing else (DRF's ``JSONRenderer``
    also handles indentation, encoders for every type and the browsable API's needs)."""

    media_type = JSON_TYPE
    format = "json"
    charset = None  # JSON is UTF-8; the answer says "application/json" as before

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: dict[str, Any] | None = None) -> bytes:  # fmt: skip
        if data is None:
            return b""
        return _ENCODER.encode(data).encode()
