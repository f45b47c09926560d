"""A configuration change in words: "field: before → after", in the reader's language.

``ConfigChange.changes`` / ``AuditEvent.changes`` map a path of the hub JSON (``identity.type``,
``event_rules.Poll.land``) to ``[before, after]``; secrets only to "changed". Pure (gettext only).
"""

from __future__ import annotations

from typing import Any

from django.utils.text import capfirst
from django.utils.translation import gettext as _

# Top-level paths → the model's own verbose names (already in the catalogues).
_LABELS = {
    "slug": "slug",
    "name": "name",
    "active": "active",
    "komo_site_id": "Komo site id",
    "braze.rest_endpoint": "Braze REST endpoint",
    "braze.api_key": "Braze API key",
    "identity.type": "identify people by",
    "identity.field": "Komo field holding the identity",
    "identity.alias_label": "alias label",
    "create_missing_users": "create missing users",
    "default_phone_region": "default phone region",
    "events": "Komo events delivered",
    "mappings": "field mappings",
    "event_rules": "event rules",
    "engagement_attributes": "engagement attributes",
    "transactional": "transactional emails",
    "new_event_kinds": "new Komo event kinds",
    "retention_days": "keep personal data for (days)",
    "intake_rate_per_minute": "intake limit per minute",
    "skip_unchanged": "skip unchanged attributes",
}
_SHOWN_CHARS = 160


def path_label(path: str) -> str:
    if path in _LABELS:
        return capfirst(_(_LABELS[path]))
    head, _sep, rest = path.partition(".")
    if head in _LABELS and rest:
        return f"{capfirst(_(_LABELS[head]))} › {rest.replace('.', ' › ')}"
    return path


def value_words(value: Any, path: str = "") -> str:
    if value is None or value == "" or value == [] or value == {}:
        return _("(not set)")
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if path == "identity.type":
        from integrations.models import IdentityType

        return str(dict(IdentityType.choices).get(value, value))
    if path == "mappings" and isinstance(value, list):
        return "; ".join(_mapping_words(item) for item in value)
    if isinstance(value, list):
        return ", ".join(value_words(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}: {value_words(item)}" for key, item in value.items())
    return str(value)


def _mapping_words(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    return f"{item.get('field', '?')} → {item.get('attribute', '?')} ({item.get('type', '')})"


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def change_lines(changes: Any) -> list[str]:
    """One line per changed path: "Label: before → after" (a secret: "Label: changed")."""
    lines = []
    for path, change in (changes or {}).items() if isinstance(changes, dict) else ():
        if change == "changed":
            lines.append(_("%(label)s: changed") % {"label": path_label(path)})
            continue
        if path == "mappings" and isinstance(change, list) and len(change) == 2:
            lines.extend(_mapping_lines(*change))
            continue
        before, after = change if isinstance(change, list) and len(change) == 2 else (None, change)
        if value_words(before, path) == value_words(after, path):
            continue  # e.g. absent → empty: nothing a person would call a change
        lines.append(_("%(label)s: %(before)s → %(after)s") % {
            "label": path_label(path),
            "before": _clip(value_words(before, path)),
            "after": _clip(value_words(after, path)),
        })
    return lines


def _mapping_lines(before: Any, after: Any) -> list[str]:
    """Mappings are a list: say which were added and removed rather than two long lists."""
    old = [_mapping_words(item) for item in before or ()]
    new = [_mapping_words(item) for item in after or ()]
    label = path_label("mappings")
    lines = [_("%(label)s: added %(what)s") % {"label": label, "what": item}
             for item in new if item not in old]
    lines += [_("%(label)s: removed %(what)s") % {"label": label, "what": item}
              for item in old if item not in new]
    if not lines:  # same mappings, another order or another error handling
        lines.append(_("%(label)s: %(before)s → %(after)s") % {
            "label": label, "before": _clip("; ".join(old)), "after": _clip("; ".join(new))})
    return lines


def action_words(action: str) -> str:
    """What a recorded action (``token-issued``, ``edited-mappings`` …) means, in words."""
    words = {
        "created": _("Hub created"),
        "imported": _("Hub imported from JSON"),
        "import-updated": _("Configuration imported from JSON"),
        "changed": _("Configuration changed"),
        "edited": _("Configuration changed"),
        "edited-general": _("Hub settings changed"),
        "edited-connection": _("Braze connection changed"),
        "edited-identity": _("Identity changed"),
        "edited-mappings": _("Field mappings changed"),
        "edited-events": _("Event kinds changed"),
        "edited-event-rule": _("Event rule changed"),
        "edited-card-type-rule": _("Card type rule changed"),
        "edited-engagement": _("Engagement attributes changed"),
        "edited-email": _("Transactional email changed"),
        "edited-emails": _("Transactional emails changed"),
        "edited-advanced": _("Advanced settings changed"),
        "edited-json": _("Configuration changed as JSON"),
        "token-issued": _("Webhook token issued"),
        "signing-secret-issued": _("Signing secret issued"),
        "signing-secret-previous-dropped": _("Previous signing secret revoked"),
        "signatures-required": _("Signed webhooks required"),
        "signatures-optional": _("Signed webhooks optional"),
        "switched-on": _("Switched on"),
        "switched-off": _("Switched off"),
        "redelivered": _("Submissions redelivered"),
        "paused": _("Connection paused"),
        "resumed": _("Connection resumed"),
        "alert-sent": _("Alert mailed"),
        "alert-recovered": _("Recovery mailed"),
        "person-erased": _("Person erased"),
    }
    return str(words.get(action, action))
