"""Editors of one event kind's rule (or one card type's override) and of one Komo moment's
transactional email. Each is a small group of forms that reads the hub JSON part it edits and
gives back the same JSON; errors from the hub validation land on the row they name."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from integrations.editor.properties import (
    PropertyFormSet,
    UpdateFormSet,
    properties_of,
    property_json,
    property_rows,
    update_rows,
    updates_of,
)
from integrations.spec import (
    LANDINGS,
    EventRule,
    PropertySpec,
    RulePatch,
    TransactionalSpec,
    trigger_properties_of,
)

LANDING_LABELS = {
    "event": _("a custom event"),
    "attributes": _("profile attributes"),
    "both": _("both: event and attributes"),
    "none": _("nowhere (held, not sent)"),
}
# Card types Komo's hub offers; any other can be typed.
CARD_TYPES = (
    "Quiz", "Poll", "Personality Test", "Survey", "Swiper", "Trivia", "Predictive",
    "Instant Win", "Scratch and Win", "Spin to Win", "Memory", "Hot or Not", "Countdown",
    "Video", "Form",
)
_ROW_PATH = re.compile(r"^(properties|attributes|trigger_properties)\[(\d+)\](?:\.(\w+))?")
_PROPERTY_FIELDS = {"field": "field", "property": "property", "type": "type"}
_UPDATE_FIELDS = {"attribute": "attribute", "mode": "mode", "field": "field", "type": "type",
                  "fields": "object_keys"}


def attach(form: forms.Form, field: str | None, messages: list[str]) -> None:
    for message in messages:
        form.add_error(field if field in form.fields else None, message)


class PatchForm(forms.Form):
    landing = forms.ChoiceField(label=_("Lands in Braze as"), required=False)
    event_name = forms.CharField(
        label=_("Braze event name"), required=False, max_length=255,
        widget=forms.TextInput(attrs={"spellcheck": "false", "size": 30}),
    )
    own_properties = forms.BooleanField(
        label=_("Choose the event properties myself"), required=False,
        help_text=_("Off: the properties shown ticked, as the default says."),
    )
    own_updates = forms.BooleanField(
        label=_("Attribute updates of its own"), required=False,
        help_text=_("Off with no rows: as the event kind (per card type) or none."),
    )

    def __init__(self, *args: Any, inherited: EventRule, card: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        default = format_lazy(
            _("As the event kind: {landing}") if card else _("Default: {landing}"),
            landing=LANDING_LABELS[inherited.landing],
        )
        self.fields["landing"].choices = [("", default), *(
            (landing, LANDING_LABELS[landing]) for landing in LANDINGS
            if card or landing != "none"
        )]
        self.fields["event_name"].widget.attrs["placeholder"] = inherited.event_name
        self.fields["event_name"].help_text = format_lazy(
            _("Empty: “{name}”."), name=inherited.event_name
        )


class RuleEditor:
    """The rule of an event kind (``card=False``) or a card type's override of it."""

    def __init__(self, data: Any, *, patch: RulePatch, inherited: EventRule,
                 candidates: list[str], card: bool) -> None:
        self.inherited = inherited
        self.form = PatchForm(data, prefix="rule", inherited=inherited, card=card, initial={
            "landing": patch.landing or "",
            "event_name": patch.event_name or "",
            "own_properties": patch.properties is not None,
            "own_updates": patch.updates is not None,
        })
        chosen = patch.properties if patch.properties is not None else inherited.properties
        self.properties = PropertyFormSet(data, prefix="prop",
                                          initial=property_rows(chosen, candidates))
        self.updates = UpdateFormSet(data, prefix="upd", initial=update_rows(patch.updates or ()))
        self._property_rows: list[forms.Form] = []
        self._update_rows: list[forms.Form] = []

    def is_valid(self) -> bool:
        return all([self.form.is_valid(), self.properties.is_valid(), self.updates.is_valid()])

    def patch_json(self) -> dict[str, Any]:
        data = self.form.cleaned_data
        patch: dict[str, Any] = {}
        if data.get("landing"):
            patch["landing"] = data["landing"]
        if (data.get("event_name") or "").strip():
            patch["event_name"] = data["event_name"].strip()
        properties, self._property_rows = properties_of(self.properties)
        inherited = [property_json(p) for p in self.inherited.properties]
        if data.get("own_properties") or properties != inherited:
            patch["properties"] = properties
        updates, self._update_rows = updates_of(self.updates)
        if data.get("own_updates") or updates:
            patch["attributes"] = updates
        return patch

    def attach_errors(self, errors: dict[str, list[str]], base: str) -> dict[str, list[str]]:
        """Put the errors under ``base`` on their fields; return the others."""
        left = {}
        for path, messages in errors.items():
            if path == base:
                attach(self.form, None, messages)
            elif path.startswith(f"{base}."):
                self._attach_one(path.removeprefix(f"{base}."), messages)
            else:
                left[path] = messages
        return left

    def _attach_one(self, rest: str, messages: list[str]) -> None:
        match = _ROW_PATH.match(rest)
        if match is None:
            key = rest.split(".")[0]
            field = {"properties": "own_properties", "attributes": "own_updates"}.get(key, key)
            attach(self.form, field, messages)
            return
        kind, index, key = match.group(1), int(match.group(2)), match.group(3) or ""
        rows = self._property_rows if kind == "properties" else self._update_rows
        names = _PROPERTY_FIELDS if kind == "properties" else _UPDATE_FIELDS
        if index < len(rows):
            attach(rows[index], names.get(key), messages)
        else:
            attach(self.form, None, messages)

    @property
    def all_forms(self) -> list[forms.Form]:
        return [self.form, *self.properties.forms, *self.updates.forms]


# --- transactional email of one Komo moment ----------------------------------------------------


class EmailForm(forms.Form):
    campaign_id = forms.CharField(
        label=_("Braze campaign ID"), max_length=100,
        widget=forms.TextInput(attrs={"spellcheck": "false", "size": 40}),
        help_text=_("The API-triggered transactional email campaign's ID, from Braze "
                    "(Messaging › Campaigns › the campaign › API identifier)."),
    )
    own_trigger = forms.BooleanField(
        label=_("Choose the trigger properties myself"), required=False,
        help_text=_("Off: the properties shown ticked, as the default says."),
    )


class EmailEditor:
    def __init__(self, data: Any, *, event: str, item: TransactionalSpec | None,
                 candidates: list[str]) -> None:
        default = trigger_properties_of(TransactionalSpec(event=event, campaign_id=""))
        self.default: tuple[PropertySpec, ...] = default
        chosen = item.trigger_properties if item and item.trigger_properties is not None \
            else default
        self.form = EmailForm(data, prefix="email", initial={
            "campaign_id": item.campaign_id if item else "",
            "own_trigger": bool(item and item.trigger_properties is not None),
        })
        self.properties = PropertyFormSet(data, prefix="trig",
                                          initial=property_rows(chosen, candidates))
        self._rows: list[forms.Form] = []

    def is_valid(self) -> bool:
        return all([self.form.is_valid(), self.properties.is_valid()])

    def email_json(self) -> dict[str, Any]:
        item: dict[str, Any] = {"campaign_id": self.form.cleaned_data["campaign_id"].strip()}
        properties, self._rows = properties_of(self.properties)
        if self.form.cleaned_data.get("own_trigger") or properties != [
            property_json(p) for p in self.default
        ]:
            item["trigger_properties"] = properties
        return item

    def attach_errors(self, errors: dict[str, list[str]], base: str) -> dict[str, list[str]]:
        left = {}
        for path, messages in errors.items():
            rest = path.removeprefix(f"{base}.") if path.startswith(f"{base}.") else None
            if path in (base, "transactional"):
                attach(self.form, None, messages)
            elif rest is None:
                left[path] = messages
            elif (match := _ROW_PATH.match(rest)) and int(match.group(2)) < len(self._rows):
                attach(self._rows[int(match.group(2))], match.group(3), messages)
            else:
                attach(self.form, "campaign_id" if rest == "campaign_id" else "own_trigger",
                       messages)
        return left

    @property
    def all_forms(self) -> list[forms.Form]:
        return [self.form, *self.properties.forms]
