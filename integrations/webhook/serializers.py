"""The webhook's body and answers as DRF serializers.

``KomoWebhookSerializer`` checks Komo's envelope: the raw bytes are UTF-8 JSON, an object, storable
(no NUL, unpaired surrogate or infinite number, not too deep) with a usable ``id``, ``event`` and
``timestamp``; the first problem found is named (every missing key at once). The rules are
intake's own (``payload_check``, ``komo_timestamp_parse`` in ``services/intake.py``): one place
for them, also for other callers of ``submission_receive``. Its fields describe the body in the
OpenAPI schema; at run time the whole check is one pass over the parsed dict, because DRF's
per-field validation would copy every declared field for each request (``Serializer.fields``)
and build an ordered dict the webhook does not need (it stores the body as received).

The answer serializers only document the two shapes; the view answers with plain dicts.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from integrations.models import SubmissionStatus
from integrations.services.intake import IntakeError, komo_timestamp_parse, payload_check


@extend_schema_field(
    {"oneOf": [{"type": "string", "minLength": 1, "maxLength": 200}, {"type": "integer"}]}
)
class KomoKeyField(serializers.Field):
    """A string (or a number) of at most 200 characters: ``id`` and ``event`` (schema only)."""


@extend_schema_field(OpenApiTypes.ANY)
class KomoValueField(serializers.Field):
    """Any JSON value, kept as received (schema only)."""


def _refuse(message: str) -> serializers.ValidationError:
    # {"detail": …}: the shape of every webhook refusal (README, /api/schema/).
    return serializers.ValidationError({"detail": message})


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in JSON")


# Built once: json.loads with any option builds a new decoder per call (half of its time).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


class KomoWebhookSerializer(serializers.Serializer):
    """Komo's flat JSON body. Every captured form field (email, first_name, optin, …) is an extra
    top-level key, usually a string; all of them are stored as received."""

    id = KomoKeyField(help_text="Komo's event id (GUID); the idempotency key per hub.")
    event = KomoKeyField(help_text="e.g. CompetitionEntrySuccess, CardViewed, QuizStarted.")
    timestamp = serializers.DateTimeField(help_text="ISO 8601.")
    # Komo's other documented fields, kept as received whatever their type (Komo sends
    # strings; nothing is refused for it).
    site_id = KomoValueField(required=False)
    site_name = KomoValueField(required=False)
    user_session_id = KomoValueField(required=False)
    user_profile_id = KomoValueField(required=False)
    card_id = KomoValueField(required=False)
    card_name = KomoValueField(required=False)
    card_type = KomoValueField(required=False)
    score = KomoValueField(required=False)
    correct = KomoValueField(required=False)
    competition_entry_id = KomoValueField(required=False)
    submission_id = KomoValueField(required=False)

    text = ""  # the body's JSON text, once valid: stored as it is

    def __init__(self, instance: Any = None, data: Any = empty, **kwargs: Any) -> None:
        if data is empty or instance is not None or kwargs:  # the schema, or any other use
            super().__init__(instance, data, **kwargs)
            return
        # The webhook's instance per request: only what is_valid() and validated_data read
        # (Field.__init__ sets two dozen attributes for binding and rendering fields: a fifth
        # of the serializer's time for nothing here). tests/test_webhook_api.py covers both.
        self.instance, self.initial_data, self.partial, self._context = None, data, False, {}

    def run_validation(self, data: Any = empty) -> dict[str, Any]:
        """The whole check in one pass (see the module's docstring)."""
        return self.to_internal_value(data)

    def to_internal_value(self, data: bytes) -> dict[str, Any]:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _refuse(_("The body is not valid UTF-8.")) from None
        try:
            payload = _DECODER.decode(text)
        except (ValueError, RecursionError) as exc:
            raise _refuse(
                _("The body is not valid JSON: %(error)s") % {"error": str(exc)[:120]}
            ) from None
        try:
            payload_check(payload, text=text)
            self.komo_time = komo_timestamp_parse(payload["timestamp"])
        except IntakeError as exc:
            raise _refuse(exc.message) from None
        self.text = text
        return payload


class WebhookAcceptedSerializer(serializers.Serializer):
    submission = serializers.UUIDField()
    status = serializers.ChoiceField(choices=SubmissionStatus.choices)


class WebhookErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="The problem, in words.")
