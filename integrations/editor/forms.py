"""Section forms of the hub editor (hub, connection, identity, mappings, event kinds,
engagement, advanced). Each reads its part of the hub JSON and writes the same part back."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.text import format_lazy, slugify
from django.utils.translation import gettext_lazy as _

from integrations.braze.instances import instance_for_endpoint
from integrations.forms import (
    _API_KEY_PATTERN,
    OTHER_ENDPOINT,
    SecretField,
    _instance_choices,
)
from integrations.models import Hub, IdentityType, OnError, OnFalse, ValueType
from integrations.spec import DOCUMENTED_EVENTS, ENGAGEMENT_KEYS
from integrations.validation import _EVENT_KIND, event_kind_unknown_error

ENGAGEMENT_LABELS = {
    "hubs_engaged": _("Hubs a person took part in (a list of hub names)"),
    "first_engaged_at": _("When a person first took part"),
    "last_engaged_at": _("When a person last took part"),
    "entries": _("Number of competition entries"),
    "prizes_won": _("Prizes won (a list of prize names)"),
}
TEXT = {"spellcheck": "false", "autocapitalize": "off"}


class HubCreateForm(forms.Form):
    name = forms.CharField(label=_("Hub name"), max_length=200,
                           help_text=_("As your team calls it, e.g. “Autumn Footy Tipping”."))
    slug = forms.SlugField(
        label=_("Short name for web addresses"), max_length=80, required=False,
        widget=forms.TextInput(attrs=TEXT),
        help_text=_("Letters, digits and “-”. Empty: made from the name. Cannot be changed later."),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        slug = cleaned.get("slug") or slugify(cleaned.get("name") or "")[:80]
        if not slug:
            self.add_error("slug", _("Enter a short name with letters or digits."))
        elif slug == "new" or Hub.objects.filter(slug=slug).exists():
            self.add_error("slug" if cleaned.get("slug") else "name",
                           format_lazy(_("A hub called “{slug}” exists already; choose another "
                                         "short name."), slug=slug))
        cleaned["slug"] = slug
        return cleaned


class GeneralForm(forms.Form):
    name = forms.CharField(label=_("Hub name"), max_length=200)
    komo_site_id = forms.CharField(
        label=_("Komo site id"), max_length=64, required=False, widget=forms.TextInput(attrs=TEXT),
        help_text=_("Optional, for your reference: Komo's site_id of this hub."),
    )
    paths = {"name": "name", "komo_site_id": "komo_site_id"}

    @staticmethod
    def initial_of(config: dict[str, Any]) -> dict[str, Any]:
        return {"name": config["name"], "komo_site_id": config.get("komo_site_id") or ""}

    def apply(self, config: dict[str, Any]) -> None:
        config["name"] = self.cleaned_data["name"]
        config["komo_site_id"] = self.cleaned_data["komo_site_id"].strip()


class ConnectionForm(forms.Form):
    braze_instance = forms.ChoiceField(
        label=_("Braze instance"), required=False, choices=_instance_choices,
        help_text=_("Braze shows it under Settings › APIs and Identifiers."),
    )
    custom_endpoint = forms.CharField(
        label=_("Other REST endpoint"), required=False, max_length=200,
        widget=forms.TextInput(attrs={**TEXT, "size": 40, "placeholder": "https://"}),
        help_text=_("Only when the instance is not in the list (e.g. the Braze sandbox that "
                    "“make run” starts)."),
    )
    api_key = SecretField(label=_("Braze API key"))
    paths = {"braze.rest_endpoint": "custom_endpoint", "braze.api_key": "api_key",
             "braze": "api_key"}

    def __init__(self, *args: Any, stored_last4: str = "", kept_last4: str = "",
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stored_last4, self.kept_last4 = stored_last4, kept_last4
        if kept_last4:
            help_text = format_lazy(_("The key you typed (…{last4}) is kept while you fix the "
                                      "rest; leave this blank to use it."), last4=kept_last4)
        elif stored_last4:
            help_text = format_lazy(_("Stored key: …{last4}. Leave blank to keep it; type a new "
                                      "key to replace it."), last4=stored_last4)
        else:
            help_text = _("Needs the users.track permission (and transactional.send for "
                          "emails). It is stored encrypted and never shown again.")
        self.fields["api_key"].help_text = help_text

    @staticmethod
    def initial_of(config: dict[str, Any]) -> dict[str, Any]:
        endpoint = (config.get("braze") or {}).get("rest_endpoint") or ""
        if not endpoint:
            return {}
        instance = instance_for_endpoint(endpoint)
        if instance is not None:
            return {"braze_instance": instance.rest_endpoint, "custom_endpoint": ""}
        return {"braze_instance": OTHER_ENDPOINT, "custom_endpoint": endpoint}

    def clean_api_key(self) -> str:
        key = (self.cleaned_data.get("api_key") or "").strip()
        if key and not _API_KEY_PATTERN.fullmatch(key):
            raise forms.ValidationError(
                _("This does not look like a Braze API key (no spaces or special characters); "
                  "copy it again from Braze."))
        return key

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        choice = cleaned.get("braze_instance") or ""
        custom = (cleaned.get("custom_endpoint") or "").strip()
        endpoint = custom if choice in ("", OTHER_ENDPOINT) else choice
        if not endpoint:
            self.add_error("braze_instance",
                           _("Choose your Braze instance or enter its REST endpoint."))
        cleaned["rest_endpoint"] = endpoint
        if not (cleaned.get("api_key") or self.stored_last4 or self.kept_last4) \
                and "api_key" not in self.errors:
            self.add_error("api_key", _("A new connection needs an API key."))
        return cleaned

    def apply(self, config: dict[str, Any], *, kept_key: str = "") -> None:
        config["braze"] = {"rest_endpoint": self.cleaned_data["rest_endpoint"],
                           "api_key": self.cleaned_data.get("api_key") or kept_key}


class IdentityForm(forms.Form):
    identity_type = forms.ChoiceField(label=_("Identify people by"), choices=IdentityType.choices)
    identity_field = forms.CharField(
        label=_("Komo field holding the identity"), max_length=200,
        widget=forms.TextInput(attrs={**TEXT, "list": "komo-keys"}),
        help_text=_("Usually email; for an external ID often user_profile_id or a form field."),
    )
    alias_label = forms.CharField(
        label=_("Alias label"), max_length=200, required=False, widget=forms.TextInput(attrs=TEXT),
        help_text=_("Only for user aliases: Braze's alias_label, e.g. “email”."),
    )
    create_missing_users = forms.BooleanField(
        label=_("Create people Braze does not know yet"), required=False,
        help_text=_("Off: only update people Braze already knows."),
    )
    default_phone_region = forms.CharField(
        label=_("Default phone region"), max_length=2, required=False,
        widget=forms.TextInput(attrs={**TEXT, "size": 3}),
        help_text=_("Two-letter country code (e.g. AU) for numbers written without +."),
    )
    paths = {"identity.type": "identity_type", "identity.field": "identity_field",
             "identity.alias_label": "alias_label", "identity": "identity_type",
             "default_phone_region": "default_phone_region"}

    @staticmethod
    def initial_of(config: dict[str, Any]) -> dict[str, Any]:
        identity = config["identity"]
        return {"identity_type": identity["type"], "identity_field": identity["field"],
                "alias_label": identity.get("alias_label") or "",
                "create_missing_users": config.get("create_missing_users", True),
                "default_phone_region": config.get("default_phone_region") or ""}

    def apply(self, config: dict[str, Any]) -> None:
        data = self.cleaned_data
        config["identity"] = {"type": data["identity_type"],
                              "field": data["identity_field"].strip(),
                              "alias_label": data["alias_label"].strip()}
        config["create_missing_users"] = data["create_missing_users"]
        config["default_phone_region"] = data["default_phone_region"].strip().upper()


class MappingRowForm(forms.Form):
    komo_field = forms.CharField(label=_("Komo field"), max_length=200, required=False,
                                 widget=forms.TextInput(attrs={**TEXT, "list": "komo-keys"}))
    attribute = forms.CharField(label=_("Braze attribute"), max_length=255, required=False,
                                widget=forms.TextInput(attrs={**TEXT, "list": "braze-standard"}))
    value_type = forms.ChoiceField(label=_("type"), choices=ValueType.choices,
                                   initial=ValueType.STRING)
    on_error = forms.ChoiceField(label=_("when the value is invalid"), choices=OnError.choices,
                                 initial=OnError.SKIP)
    on_false = forms.ChoiceField(label=_("unticked box sends"), choices=OnFalse.choices,
                                 required=False)
    subscription_group_id = forms.CharField(
        label=_("subscription group"), max_length=100, required=False,
        widget=forms.TextInput(attrs=TEXT),
    )
    keys = {"field": "komo_field", "attribute": "attribute", "type": "value_type",
            "on_error": "on_error", "on_false": "on_false",
            "subscription_group_id": "subscription_group_id"}

    def mapping_json(self) -> dict[str, Any] | None:
        data = getattr(self, "cleaned_data", None) or {}
        if data.get("DELETE") or not ((data.get("komo_field") or "").strip()
                                      or (data.get("attribute") or "").strip()):
            return None
        item = {"field": data["komo_field"].strip(), "attribute": data["attribute"].strip(),
                "type": data["value_type"], "on_error": data["on_error"]}
        if data.get("on_false"):
            item["on_false"] = data["on_false"]
        if (data.get("subscription_group_id") or "").strip():
            item["subscription_group_id"] = data["subscription_group_id"].strip()
        return item


MappingFormSet = forms.formset_factory(MappingRowForm, extra=3, can_delete=True)


def mapping_rows(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"komo_field": m["field"], "attribute": m["attribute"],
             "value_type": m.get("type") or "string", "on_error": m.get("on_error") or "skip",
             "on_false": m.get("on_false") or "",
             "subscription_group_id": m.get("subscription_group_id") or ""}
            for m in config.get("mappings") or []]


class EventKindsForm(forms.Form):
    delivered = forms.MultipleChoiceField(
        label=_("Delivered to Braze"), required=False, widget=forms.CheckboxSelectMultiple,
    )
    new_kind = forms.CharField(
        label=_("Add an event kind"), required=False, max_length=200,
        widget=forms.TextInput(attrs={**TEXT, "size": 28, "placeholder": "CouponRedeemed"}),
        help_text=_("Exactly as Komo names it."),
    )
    confirm_new = forms.BooleanField(
        label=_("This is a new Komo event kind (not one of those listed)"), required=False,
    )

    def __init__(self, *args: Any, kinds: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["delivered"].choices = [(kind, kind) for kind in kinds]

    def clean_new_kind(self) -> str:
        kind = (self.cleaned_data.get("new_kind") or "").strip()
        if kind and not _EVENT_KIND.fullmatch(kind):
            raise forms.ValidationError(
                _("Komo event names have letters and digits only, as in CouponRedeemed."))
        return kind

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        kind = cleaned.get("new_kind") or ""
        if kind and kind not in DOCUMENTED_EVENTS and not cleaned.get("confirm_new"):
            error = event_kind_unknown_error(kind)
            if error is not None:
                self.add_error("new_kind", error)
        if not cleaned.get("delivered") and not kind:
            self.add_error("delivered", _("Deliver at least one event kind, for example "
                                          "CompetitionEntrySuccess."))
        return cleaned

    def apply(self, config: dict[str, Any]) -> None:
        delivered = list(self.cleaned_data.get("delivered") or [])
        kind = self.cleaned_data.get("new_kind") or ""
        if kind and kind not in delivered:
            delivered.append(kind)
        order = list(dict.fromkeys([*config.get("events", []), *delivered]))
        config["events"] = [event for event in order if event in delivered]
        if kind and kind not in DOCUMENTED_EVENTS and self.cleaned_data.get("confirm_new"):
            config["new_event_kinds"] = list(dict.fromkeys(
                [*(config.get("new_event_kinds") or []), kind]))


class EngagementForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for key in ENGAGEMENT_KEYS:
            self.fields[f"on_{key}"] = forms.BooleanField(label=ENGAGEMENT_LABELS[key],
                                                          required=False)
            self.fields[f"name_{key}"] = forms.CharField(
                label=_("Braze attribute"), required=False, max_length=255,
                widget=forms.TextInput(attrs={**TEXT, "placeholder": f"komo_{key}"}),
            )
        self.paths = {f"engagement_attributes.{key}": f"name_{key}" for key in ENGAGEMENT_KEYS}

    def rows(self) -> list[tuple[forms.BoundField, forms.BoundField]]:
        return [(self[f"on_{key}"], self[f"name_{key}"]) for key in ENGAGEMENT_KEYS]

    @staticmethod
    def initial_of(config: dict[str, Any]) -> dict[str, Any]:
        current = config.get("engagement_attributes") or {}
        initial: dict[str, Any] = {}
        for key in ENGAGEMENT_KEYS:
            initial[f"on_{key}"] = bool(current.get(key))
            initial[f"name_{key}"] = current.get(key) or f"komo_{key}"
        return initial

    def apply(self, config: dict[str, Any]) -> None:
        data = self.cleaned_data
        config["engagement_attributes"] = {
            key: (data[f"name_{key}"] or "").strip() or f"komo_{key}"
            for key in ENGAGEMENT_KEYS if data.get(f"on_{key}")
        }


class AdvancedForm(forms.ModelForm):
    class Meta:
        model = Hub
        fields = ("retention_days", "intake_rate_per_minute", "skip_unchanged")
