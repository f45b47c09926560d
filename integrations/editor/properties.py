"""Form pieces shared by the event-rule and email editors: picking Komo keys as properties, and
attribute updates. Each turns hub JSON into form rows and rows back into the same JSON."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from integrations.spec import (
    KOMO_FIXED_KEYS,
    PROPERTY_TYPES,
    VALUE_TYPES,
    AttributeUpdateSpec,
    PropertySpec,
    default_property,
)

PROPERTY_TYPE_LABELS = {
    "string": _("Text"),
    "number": _("Number"),
    "boolean": _("Yes/no"),
    "date": _("Date"),
    "array": _("List of texts"),
    "phone": _("Phone number (E.164)"),
    "email": _("Email address"),
    "country": _("Country (ISO code)"),
    "gender": _("Gender"),
}
MODE_CHOICES = (
    ("set", _("Set: the latest value")),
    ("inc", _("Add up: a running total (or a count)")),
    ("add", _("Collect: add the answer to a list")),
    ("object", _("Per card: one object per card")),
)
_TOKEN = re.compile(r"^\s*([^=:\s]+)\s*(?:=\s*([^:\s]+)\s*)?(?::\s*(\w+)\s*)?$")


def candidate_keys(defaults: Iterable[str], known_fields: Iterable[str] | None) -> list[str]:
    """Komo keys offered as properties: the kind's defaults, Komo's fixed keys, then the fields
    seen in this hub's submissions."""
    keys = list(dict.fromkeys([*defaults, *sorted(KOMO_FIXED_KEYS - {"id", "event"})]))
    extra = sorted(set(known_fields or ()) - set(keys) - {"id", "event", "timestamp"})
    return keys + extra


class PropertyRowForm(forms.Form):
    include = forms.BooleanField(label=_("send"), required=False)
    known = forms.BooleanField(required=False, widget=forms.HiddenInput)
    field = forms.CharField(label=_("Komo key"), required=False, max_length=200,
                            widget=forms.TextInput(attrs={"spellcheck": "false", "size": 14}))
    property = forms.CharField(label=_("named"), required=False, max_length=255,
                               widget=forms.TextInput(attrs={"spellcheck": "false", "size": 14}))
    type = forms.ChoiceField(label=_("as"), choices=[(t, PROPERTY_TYPE_LABELS[t])
                                                      for t in PROPERTY_TYPES])

    def chosen(self) -> PropertySpec | None:
        data = self.cleaned_data
        field = (data.get("field") or "").strip()
        if not field or not (data.get("include") or not data.get("known")):
            return None
        return PropertySpec(field=field, property=(data.get("property") or "").strip() or field,
                            type=data.get("type") or "string")


PropertyFormSet = forms.formset_factory(PropertyRowForm, extra=0)


def property_rows(chosen: tuple[PropertySpec, ...], candidates: list[str]) -> list[dict[str, Any]]:
    rows = [{"include": True, "known": True, "field": p.field, "property": p.property,
             "type": p.type} for p in chosen]
    taken = {p.field for p in chosen}
    rows += [{"include": False, "known": True, "field": key, "property": key,
              "type": default_property(key).type} for key in candidates if key not in taken]
    rows.append({"include": False, "known": False, "field": "", "property": "", "type": "string"})
    return rows


def property_json(prop: PropertySpec) -> str | dict[str, str]:
    """The shortest hub JSON for a property: the bare key when name and type are the default."""
    if prop.property == prop.field and prop.type == default_property(prop.field).type:
        return prop.field
    return {"field": prop.field, "property": prop.property, "type": prop.type}


def properties_of(formset: forms.BaseFormSet) -> tuple[list[Any], list[forms.Form]]:
    """The chosen properties as hub JSON, and the row form of each (for errors by index)."""
    items, rows = [], []
    for form in formset.forms:
        prop = form.chosen()
        if prop is not None:
            items.append(property_json(prop))
            rows.append(form)
    return items, rows


# --- attribute updates ------------------------------------------------------------------------


def object_fields_text(fields: tuple[PropertySpec, ...]) -> str:
    """``card_name, score=points:number``: a card object's keys, readable and typeable."""
    parts = []
    for prop in fields:
        part = prop.field
        if prop.property != prop.field:
            part += f"={prop.property}"
        if prop.type != default_property(prop.field).type:
            part += f":{prop.type}"
        parts.append(part)
    return ", ".join(parts)


def object_fields_json(text: str) -> list[Any]:
    items: list[Any] = []
    for token in (part for part in text.split(",") if part.strip()):
        match = _TOKEN.match(token)
        if match is None:
            raise forms.ValidationError(
                format_lazy(_("“{token}” is not a Komo key; write keys separated by commas, "
                              "e.g. card_name, score."), token=token.strip()))
        field, name, kind = match.groups()
        items.append(property_json(PropertySpec(field=field, property=name or field,
                                                type=kind or default_property(field).type)))
    return items


class UpdateRowForm(forms.Form):
    attribute = forms.CharField(label=_("Braze attribute"), required=False, max_length=255,
                                widget=forms.TextInput(attrs={"spellcheck": "false", "size": 18}))
    mode = forms.ChoiceField(label=_("how"), choices=MODE_CHOICES, initial="set")
    field = forms.CharField(label=_("from the Komo key"), required=False, max_length=200,
                            widget=forms.TextInput(attrs={"spellcheck": "false", "size": 16,
                                                          "list": "komo-keys"}))
    type = forms.ChoiceField(
        label=_("as"), required=False,
        choices=[("", _("automatic")), *((t, PROPERTY_TYPE_LABELS[t]) for t in VALUE_TYPES
                                        if t not in ("subscription",))],
    )
    object_keys = forms.CharField(
        label=_("card object keys"), required=False, max_length=2000,
        widget=forms.TextInput(attrs={"spellcheck": "false", "size": 22}),
        help_text=_("Per card only; empty: card_name, card_type, score, correct."),
    )

    def clean_object_keys(self) -> list[Any]:
        return object_fields_json(self.cleaned_data.get("object_keys") or "")

    def update_json(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        attribute = (data.get("attribute") or "").strip()
        if not attribute or data.get("DELETE"):
            return None
        item: dict[str, Any] = {"attribute": attribute, "mode": data.get("mode") or "set"}
        if (data.get("field") or "").strip():
            item["field"] = data["field"].strip()
        if data.get("type"):
            item["type"] = data["type"]
        if data.get("object_keys"):
            item["fields"] = data["object_keys"]
        return item


UpdateFormSet = forms.formset_factory(UpdateRowForm, extra=2, can_delete=True)


def update_rows(updates: tuple[AttributeUpdateSpec, ...]) -> list[dict[str, Any]]:
    return [{"attribute": u.attribute, "mode": u.mode, "field": u.field, "type": u.type,
             "object_keys": object_fields_text(u.fields)} for u in updates]


def updates_of(formset: forms.BaseFormSet) -> tuple[list[dict[str, Any]], list[forms.Form]]:
    items, rows = [], []
    for form in formset.forms:
        item = form.update_json() if hasattr(form, "cleaned_data") else None
        if item is not None:
            items.append(item)
            rows.append(form)
    return items, rows
