"""Forms of the admin (hub configuration) and the portal pages (preview).

The hub configuration is validated as a whole by :func:`integrations.validation.validate_hub_spec`,
the same rules the hub JSON import applies. The hub form checks what depends on the hub alone
(identity, phone region); the mapping formset checks the mappings against the submitted hub. Each
error lands on the field it is about, in the reader's language.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput
from django.forms.models import BaseInlineFormSet
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from integrations.braze.instances import BRAZE_INSTANCES, instance_for_endpoint
from integrations.models import BrazeConnection, FieldMapping, Hub, default_events
from integrations.selectors import hub_known_fields
from integrations.serializers import MASK, rest_endpoint_validate
from integrations.services.intake import MAX_NESTING, storable_problem
from integrations.spec import (
    ConfigShapeError,
    FieldMappingSpec,
    HubSpec,
    IdentitySpec,
    engagement_from_config,
    event_rules_from_config,
    transactional_from_config,
)
from integrations.validation import ConfigError, validate_hub_spec

OTHER_ENDPOINT = "other"
# Braze keys are UUID-like; anything with spaces or non-ASCII cannot be sent in a header.
_API_KEY_PATTERN = re.compile(r"[\x21-\x7e]{8,500}")
_EVENT_NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,199}")
_EVENT_SEPARATORS = re.compile(r"[,\n\r]+")

# Hub-level paths of a ConfigError → the hub form field they are about.
HUB_FIELD_BY_PATH = {
    "identity.type": "identity_type",
    "identity.field": "identity_field",
    "identity.alias_label": "alias_label",
    "default_phone_region": "default_phone_region",
}
# Keys inside "mappings[i]." → the mapping form field.
MAPPING_FIELD_BY_KEY = {
    "field": "komo_field",
    "attribute": "attribute",
    "type": "value_type",
    "on_error": "on_error",
    "on_false": "on_false",
    "subscription_group_id": "subscription_group_id",
}
_MAPPING_PATH = re.compile(r"mappings\[(\d+)\]\.(\w+)")
# The hub JSON objects edited as JSON on the hub form; an error under one lands on its field.
HUB_JSON_FIELDS = ("event_rules", "engagement_attributes", "transactional")


# --- write-only secret ------------------------------------------------------------------------


class SecretInput(forms.PasswordInput):
    """A password box that is never pre-filled, not even after a failed submit."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        base = {"autocomplete": "new-password", "spellcheck": "false", "autocapitalize": "off"}
        super().__init__(attrs={**base, **(attrs or {})}, render_value=False)


class SecretField(forms.CharField):
    """Write-only: blank (or the export mask) means "keep what is stored"."""

    widget = SecretInput

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 500)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> str:
        text = super().to_python(value)
        return "" if text == MASK else text

    def bound_data(self, data: Any, initial: Any) -> str:
        return ""


# --- hub ------------------------------------------------------------------------------------


class EventsField(forms.CharField):
    """Komo event names, one per line or comma-separated; stored as a list."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 40, "spellcheck": "false"})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list | tuple):
            return [str(item) for item in value]
        text = super().to_python(value) or ""
        names = [part.strip() for part in _EVENT_SEPARATORS.split(text)]
        return list(dict.fromkeys(name for name in names if name))

    def validate(self, value: list[str]) -> None:
        if not value:
            raise ValidationError(
                _("Name at least one Komo event, for example CompetitionEntrySuccess."),
                code="required",
            )
        wrong = [name for name in value if not _EVENT_NAME_PATTERN.fullmatch(name)]
        if wrong:
            raise ValidationError(
                format_lazy(
                    _("“{name}” is not a Komo event name: use letters and digits only, as in "
                      "CompetitionEntrySuccess."),
                    name=wrong[0][:200],
                ),
                code="invalid",
            )


def json_loaded(text: str) -> Any:
    """``json.loads`` for text people paste, refusing what the webhook would refuse.

    Python's parser itself fails on very deep nesting (``RecursionError`` at ~100,000 levels);
    the intake's ``storable_problem`` refuses nesting deeper than ``MAX_NESTING``, unpaired
    surrogates, NUL characters and infinite numbers, which the database (or the page showing
    them) cannot take. Raises ``ValueError`` for text that is not JSON, ``ValidationError``
    naming the problem for the rest."""
    try:
        value = json.loads(text)
    except RecursionError:
        # The intake's own sentence (storable_problem says it for depths Python can parse).
        raise ValidationError(
            _("The body is nested deeper than %(levels)d levels.") % {"levels": MAX_NESTING},
            code="too_deep",
        ) from None
    problem = storable_problem(value, text=text)
    if problem:
        raise ValidationError(problem, code="not_storable")
    return value


class HubJSONField(forms.JSONField):
    """One object of the hub JSON, shown indented; empty means {} (the defaults)."""

    widget = forms.Textarea(attrs={"rows": 8, "cols": 80, "spellcheck": "false", "class": "code"})

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def bound_data(self, data: Any, initial: Any) -> Any:
        # What was typed is shown again as typed: parsing it here would crash on the input
        # to_python refuses (too deep for Python, or a surrogate the page cannot encode).
        if self.disabled:
            return initial
        return None if data is None else InvalidJSONInput(data)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return json.dumps(value, indent=2, ensure_ascii=False) if value else ""
        return super().prepare_value(value)

    def to_python(self, value: Any) -> Any:
        if self.disabled:
            return value
        if value is None or (isinstance(value, str) and not value.strip()):
            return {}
        if isinstance(value, str):
            try:
                value = json_loaded(value)
            except ValueError:
                raise ValidationError(self.error_messages["invalid"], code="invalid",
                                      params={"value": value}) from None
        if value is None or value == "":  # "null" (a new hub's empty field) or '""'
            return {}
        if not isinstance(value, dict):
            raise ValidationError(_("Enter a JSON object ({…}), or leave it empty."),
                                  code="invalid")
        return value


class HubForm(forms.ModelForm):
    event_rules = HubJSONField(
        label=_("Event rules"),
        help_text=_("How each Komo event kind lands in Braze: a custom event, attributes, both "
                    "or nothing, with properties and attribute updates; per card type if needed. "
                    "Empty: the defaults. See docs/hub-config.md."),
    )
    engagement_attributes = HubJSONField(
        label=_("Engagement attributes"),
        help_text=_("Optional attributes for segmenting, e.g. {\"hubs_engaged\": "
                    "\"komo_hubs_engaged\", \"entries\": \"komo_entries\"}."),
    )
    transactional = HubJSONField(
        label=_("Transactional emails"),
        help_text=_("Komo moment → Braze transactional campaign, e.g. {\"PrizeAwarded\": "
                    "{\"campaign_id\": \"…\"}}. Needs an external ID or user alias identity."),
    )
    events = EventsField(
        label=_("Komo events delivered"),
        initial=default_events,
        help_text=_("One per line (or separated by commas), exactly as Komo names them, e.g. "
                    "CompetitionEntrySuccess, PrizeAwarded, SignUpSuccess. Other events are "
                    "stored as ignored."),
    )

    class Meta:
        model = Hub
        fields = (
            "name", "slug", "komo_site_id", "active", "identity_type", "identity_field",
            "alias_label", "events", "create_missing_users", "default_phone_region",
            "event_rules", "engagement_attributes", "transactional", "retention_days",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "retention_days" in self.fields:  # left out (an older form, a script): unchanged
            self.fields["retention_days"].required = False

    def clean_retention_days(self) -> int:
        days = self.cleaned_data.get("retention_days")
        return self.instance.retention_days if days is None else days

    def clean_default_phone_region(self) -> str:
        return (self.cleaned_data.get("default_phone_region") or "").strip().upper()

    def clean_event_rules(self) -> dict[str, Any]:
        return _shape_checked(self.cleaned_data.get("event_rules"), event_rules_from_config)

    def clean_engagement_attributes(self) -> dict[str, Any]:
        return _shape_checked(self.cleaned_data.get("engagement_attributes"),
                              engagement_from_config)

    def clean_transactional(self) -> dict[str, Any]:
        return _shape_checked(self.cleaned_data.get("transactional"), transactional_from_config)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        required = ("identity_type", "identity_field")
        if all(name in cleaned for name in required):
            spec = hub_spec_build({**cleaned, "new_event_kinds": self.instance.new_event_kinds},
                                  mappings=())
            errors = validate_hub_spec(spec, hub_known_fields(self.instance))
            for error in errors:
                field = HUB_FIELD_BY_PATH.get(error.path)
                if field is not None and field in cleaned:
                    self.add_error(field, ValidationError(error.message))
                json_field = _hub_json_field(error.path)
                if json_field is not None and json_field in cleaned:
                    self.add_error(json_field, ValidationError(_located(error.path,
                                                                        error.message)))
        return cleaned


def _shape_checked(value: Any, reader: Callable[[Any], object]) -> dict[str, Any]:
    """``value`` if the hub JSON reader accepts its shape, else the error at its path."""
    value = value or {}
    try:
        reader(value)
    except ConfigShapeError as error:
        raise ValidationError(_located(error.path, error.message), code="invalid") from None
    return value


def _hub_json_field(path: str) -> str | None:
    return next((name for name in HUB_JSON_FIELDS
                 if path == name or path.startswith((f"{name}.", f"{name}["))), None)


def _located(path: str, message: Any) -> Any:
    return format_lazy("{path}: {message}", path=path, message=message)


def hub_spec_build(values: dict[str, Any], *, mappings: Iterable[FieldMappingSpec]) -> HubSpec:
    """A HubSpec from hub field values (form cleaned_data or model attributes)."""
    return HubSpec(
        identity=IdentitySpec(
            type=values.get("identity_type") or "",
            field=values.get("identity_field") or "",
            alias_label=values.get("alias_label") or "",
        ),
        mappings=tuple(mappings),
        events=tuple(values.get("events") or ()),
        create_missing_users=bool(values.get("create_missing_users", True)),
        default_phone_region=(values.get("default_phone_region") or "").upper(),
        event_rules=event_rules_from_config(values.get("event_rules")),
        engagement=engagement_from_config(values.get("engagement_attributes")),
        transactional=transactional_from_config(values.get("transactional")),
        new_event_kinds=tuple(values.get("new_event_kinds") or ()),
    )


def _hub_values(hub: Hub) -> dict[str, Any]:
    return {name: getattr(hub, name) for name in (
        "identity_type", "identity_field", "alias_label", "events", "create_missing_users",
        "default_phone_region", "event_rules", "engagement_attributes", "transactional",
        "new_event_kinds",
    )}


# --- Braze connection -------------------------------------------------------------------------


def _instance_choices() -> list[tuple[str, str]]:
    # Instance codes and hosts are Braze's own names: never translated.
    return [
        ("", _("— choose your Braze instance —")),
        *((i.rest_endpoint, f"{i.label} · {i.rest_endpoint}") for i in BRAZE_INSTANCES),
        (OTHER_ENDPOINT, _("Other: enter the REST endpoint below")),
    ]


class BrazeConnectionForm(forms.ModelForm):
    braze_instance = forms.ChoiceField(
        label=_("Braze instance"), required=False, choices=_instance_choices,
        help_text=_("Braze shows it under Settings › APIs and Identifiers."),
    )
    custom_endpoint = forms.CharField(
        label=_("Other REST endpoint"), required=False, max_length=200,
        widget=forms.TextInput(attrs={"size": 40, "spellcheck": "false",
                                      "placeholder": "https://"}),
        help_text=_("Only when the instance is not in the list."),
    )
    new_api_key = SecretField(label=_("Braze API key"))

    class Meta:
        model = BrazeConnection
        fields: tuple[str, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_changed = False
        self.endpoint_changed = False
        stored = self.instance.rest_endpoint if self.instance.pk else ""
        if stored:
            instance = instance_for_endpoint(stored)
            self.initial["braze_instance"] = instance.rest_endpoint if instance else OTHER_ENDPOINT
            self.initial["custom_endpoint"] = "" if instance else stored
        self.fields["new_api_key"].help_text = self._key_help()

    def _key_help(self) -> Any:
        if self.is_bound and not self.instance.pk:
            return _("Enter the key again: for safety, a typed key is never sent back to the page.")
        if self.instance.pk and self.instance.api_key_last4:
            return format_lazy(
                _("Stored key: …{last4}. Leave blank to keep it; type a new key to replace it."),
                last4=self.instance.api_key_last4,
            )
        return _("Needs the users.track permission. It is stored encrypted and never shown again.")

    def clean_new_api_key(self) -> str:
        key = self.cleaned_data.get("new_api_key") or ""
        if key and not _API_KEY_PATTERN.fullmatch(key):
            raise ValidationError(
                _("This does not look like a Braze API key (no spaces or special characters); "
                  "copy it again from Braze."),
                code="invalid",
            )
        return key

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        choice = cleaned.get("braze_instance") or ""
        field = "braze_instance" if choice not in ("", OTHER_ENDPOINT) else "custom_endpoint"
        endpoint = choice if field == "braze_instance" else (cleaned.get("custom_endpoint") or "")
        if not endpoint.strip():
            self.add_error("braze_instance",
                           _("Choose your Braze instance or enter its REST endpoint."))
        else:
            try:
                cleaned["rest_endpoint"] = rest_endpoint_validate(endpoint)
            except serializers.ValidationError as exc:
                self.add_error(field, [str(message) for message in _detail_messages(exc.detail)])
        if not self.instance.pk and not cleaned.get("new_api_key"):
            self.add_error("new_api_key", _("A new connection needs an API key."))
        return cleaned

    def save(self, commit: bool = True) -> BrazeConnection:
        endpoint = self.cleaned_data["rest_endpoint"]
        key = self.cleaned_data.get("new_api_key") or ""
        self.endpoint_changed = endpoint != self.instance.rest_endpoint
        self.instance.rest_endpoint = endpoint
        if key:
            self.instance.set_api_key(key)
            self.key_changed = True
        return super().save(commit=commit)


def _detail_messages(detail: Any) -> list[str]:
    if isinstance(detail, list | tuple):
        return [str(item) for item in detail]
    return [str(detail)]


# --- field mappings ---------------------------------------------------------------------------


class FieldMappingForm(forms.ModelForm):
    class Meta:
        model = FieldMapping
        fields = (
            "position", "komo_field", "attribute", "value_type", "on_error", "on_false",
            "subscription_group_id",
        )
        widgets = {
            "position": forms.NumberInput(attrs={"style": "width: 4em"}),
            "komo_field": forms.TextInput(attrs={"size": 18, "spellcheck": "false"}),
            "attribute": forms.TextInput(attrs={"size": 20, "spellcheck": "false"}),
            "subscription_group_id": forms.TextInput(attrs={"size": 14, "spellcheck": "false"}),
        }


class FieldMappingFormSet(BaseInlineFormSet):
    """Validates the submitted mappings together with the submitted hub (``self.instance``).

    A mapping of a field never seen in the hub's recent submissions is only a warning: the
    marketer may be preparing for a form field that Komo has not sent yet, and an absent field
    is simply skipped. An unknown identity field is an error (every submission would be held),
    checked by :class:`HubForm`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warnings: list[str] = []

    def clean(self) -> None:
        rows = self._rows()
        hub_values = _hub_values(self.instance)
        spec = hub_spec_build(hub_values, mappings=(mapping for _form, mapping in rows))
        errors = validate_hub_spec(spec)
        strict_paths = {
            error.path for error in validate_hub_spec(spec, hub_known_fields(self.instance))
        } - {error.path for error in errors}
        self.warnings = self._unknown_field_warnings(rows, strict_paths)
        mapping_errors = [e for e in errors if _MAPPING_PATH.fullmatch(e.path)]
        for error in mapping_errors:
            self._attach(rows, error)
        hub_errors = self._errors_caused_by_mappings(errors, hub_values)
        if hub_errors:
            raise ValidationError(hub_errors)
        if not mapping_errors:
            super().clean()

    def _rows(self) -> list[tuple[forms.Form, FieldMappingSpec]]:
        """The forms that will be saved, in page order, with their mapping spec."""
        rows = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or self._should_delete_form(form):
                continue
            if not data.get("komo_field") or not data.get("attribute"):
                continue
            spec = FieldMappingSpec(
                field=data["komo_field"], attribute=data["attribute"],
                type=data.get("value_type") or "string", on_error=data.get("on_error") or "skip",
                on_false=data.get("on_false") or None,
                subscription_group_id=(data.get("subscription_group_id") or "").strip(),
            )
            rows.append((form, spec))
        return rows

    @staticmethod
    def _attach(rows: list[tuple[forms.Form, FieldMappingSpec]], error: ConfigError) -> None:
        match = _MAPPING_PATH.fullmatch(error.path)
        if match is None:
            return
        form = rows[int(match.group(1))][0]
        field = MAPPING_FIELD_BY_KEY.get(match.group(2))
        form.add_error(field if field in form.fields else None, ValidationError(error.message))

    @staticmethod
    def _unknown_field_warnings(
        rows: list[tuple[forms.Form, FieldMappingSpec]], strict_paths: set[str]
    ) -> list[str]:
        warnings = []
        for path in sorted(strict_paths):
            match = _MAPPING_PATH.fullmatch(path)
            if match and match.group(2) == "field":
                field = rows[int(match.group(1))][1].field
                warnings.append(str(format_lazy(
                    _("No recent submission contains the Komo field “{field}”; it is mapped "
                      "anyway and sends nothing until Komo sends it."),
                    field=field,
                )))
        return warnings

    @staticmethod
    def _errors_caused_by_mappings(
        errors: list[ConfigError], hub_values: dict[str, Any]
    ) -> list[str]:
        """Hub-level errors that only the mappings trigger (the hub form reports the others)."""
        alone = {e.path for e in validate_hub_spec(hub_spec_build(hub_values, mappings=()))}
        return [
            str(format_lazy("{label}: {message}", label=_label_of(error.path),
                            message=_located(error.path, error.message)
                            if _hub_json_field(error.path) else error.message))
            for error in errors
            if (error.path in HUB_FIELD_BY_PATH or _hub_json_field(error.path))
            and error.path not in alone
        ]


def _label_of(path: str) -> Any:
    field = Hub._meta.get_field(HUB_FIELD_BY_PATH.get(path) or _hub_json_field(path) or "")
    return field.verbose_name


# --- preview ----------------------------------------------------------------------------------


class PreviewForm(forms.Form):
    payload = forms.CharField(
        label=_("Komo payload (JSON)"),
        widget=forms.Textarea(attrs={"rows": 16, "cols": 80, "spellcheck": "false",
                                     "wrap": "off", "class": "code"}),
        help_text=_("Paste a webhook body as Komo sends it: one flat JSON object."),
    )

    def clean_payload(self) -> dict[str, Any]:
        text = self.cleaned_data["payload"]
        if len(text.encode("utf-8")) > settings.WEBHOOK_MAX_BODY_BYTES:
            raise ValidationError(_("The payload is larger than the webhook accepts."),
                                  code="too_large")
        try:
            payload = json_loaded(text)
        except ValueError as exc:
            raise ValidationError(
                format_lazy(_("This is not valid JSON: {error}"), error=str(exc)), code="invalid"
            ) from exc
        if not isinstance(payload, dict):
            raise ValidationError(
                _("The payload must be a JSON object ({…}), as Komo sends it."), code="invalid"
            )
        return payload
