"""The hub JSON (import/export) as DRF serializers; also the validation base of the UI forms."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from integrations.braze.instances import endpoint_allowed, normalize_endpoint
from integrations.models import (
    DEFAULT_RETENTION_DAYS,
    MAX_RETENTION_DAYS,
    IdentityType,
    OnError,
    OnFalse,
    ValueType,
)
from integrations.spec import DEFAULT_EVENTS, ConfigShapeError, hub_spec_from_config
from integrations.validation import validate_hub_spec

MASK = "********"


def rest_endpoint_validate(value: str) -> str:
    value = normalize_endpoint(value)
    if not endpoint_allowed(value, settings.BRAZE_EXTRA_ENDPOINTS):
        raise serializers.ValidationError(
            _(
                "%(url)s is not a Braze REST endpoint. Use the one shown under Settings > APIs and "
                "Identifiers in Braze, e.g. https://rest.iad-01.braze.com."
            )
            % {"url": value[:200]}
        )
    return value


class BrazeSerializer(serializers.Serializer):
    rest_endpoint = serializers.CharField(max_length=200)
    api_key = serializers.CharField(max_length=500, required=False, allow_blank=True)

    def validate_rest_endpoint(self, value: str) -> str:
        return rest_endpoint_validate(value)

    def validate_api_key(self, value: str) -> str:
        value = value.strip()
        return "" if value == MASK else value


class IdentitySerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=IdentityType.choices)
    field = serializers.CharField(max_length=200)
    alias_label = serializers.CharField(max_length=200, required=False, allow_blank=True)


class MappingSerializer(serializers.Serializer):
    field = serializers.CharField(max_length=200)
    attribute = serializers.CharField(max_length=255)
    type = serializers.ChoiceField(choices=ValueType.choices, default=ValueType.STRING)
    on_error = serializers.ChoiceField(choices=OnError.choices, default=OnError.SKIP)
    on_false = serializers.ChoiceField(
        choices=[c for c in OnFalse.values if c], required=False, allow_null=True
    )
    subscription_group_id = serializers.CharField(
        max_length=100, required=False, allow_blank=True, trim_whitespace=True
    )


class HubConfigSerializer(serializers.Serializer):
    slug = serializers.SlugField(max_length=80)
    name = serializers.CharField(max_length=200)
    active = serializers.BooleanField(default=False)
    komo_site_id = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default=""
    )
    braze = BrazeSerializer(required=False)
    identity = IdentitySerializer()
    create_missing_users = serializers.BooleanField(default=True)
    default_phone_region = serializers.CharField(
        max_length=2, required=False, allow_blank=True, default=""
    )
    events = serializers.ListField(
        child=serializers.CharField(max_length=200), default=list(DEFAULT_EVENTS)
    )
    mappings = MappingSerializer(many=True, default=list)
    # How each Komo event kind lands in Braze, segmenting attributes, transactional emails: their
    # shape is read by integrations.spec and their meaning checked by integrations.validation.
    event_rules = serializers.JSONField(required=False, default=dict)
    engagement_attributes = serializers.JSONField(required=False, default=dict)
    transactional = serializers.JSONField(required=False, default=dict)
    new_event_kinds = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list
    )
    retention_days = serializers.IntegerField(
        required=False,
        default=DEFAULT_RETENTION_DAYS,
        min_value=1,
        max_value=MAX_RETENTION_DAYS,
        error_messages={
            "min_value": _("Personal data is kept for at least {min_value} day."),
            "max_value": _("Personal data is kept for at most {max_value} days (10 years)."),
            "invalid": _("retention_days must be a whole number of days."),
        },
    )

    def validate(self, attrs):
        config = {
            **attrs,
            "default_phone_region": (attrs.get("default_phone_region") or "").upper(),
        }
        try:
            spec = hub_spec_from_config(config)
        except ConfigShapeError as error:
            raise serializers.ValidationError({error.path: [str(error.message)]}) from None
        errors: dict[str, list[str]] = {}
        for error in validate_hub_spec(spec):
            errors.setdefault(error.path or "non_field_errors", []).append(str(error.message))
        if errors:
            raise serializers.ValidationError(errors)
        return config
