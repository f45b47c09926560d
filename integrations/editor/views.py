"""Portal pages that set a hub up: create it, edit each part of its configuration, import and
export its JSON, switch it on and off, issue its webhook token.

Every editor saves through ``hub_config_import`` (the JSON import), so the forms and the hub
JSON stay one thing; only the settings the JSON does not carry yet (Advanced) are saved as model
fields, with the same change record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from rest_framework.exceptions import ValidationError as DRFValidationError

from integrations import crypto
from integrations.editor.forms import (
    AdvancedForm,
    ConnectionForm,
    EngagementForm,
    EventKindsForm,
    GeneralForm,
    HubCreateForm,
    IdentityForm,
    MappingFormSet,
    MappingRowForm,
    mapping_rows,
)
from integrations.editor.properties import candidate_keys
from integrations.editor.rules import CARD_TYPES, LANDING_LABELS, EmailEditor, RuleEditor
from integrations.models import Hub, HubMembership, HubRole
from integrations.selectors import (
    can_create_hubs,
    hub_known_fields,
    hubs_visible_to,
    user_can_edit_hub,
)
from integrations.services.hubs import (
    NO_GRACE,
    TOKEN_GRACE_DEFAULT,
    config_change_record,
    hub_config_export,
    hub_config_import,
    hub_token_issue,
    hubs_active_set,
)
from integrations.spec import (
    DEFAULT_EVENTS,
    DOCUMENTED_EVENTS,
    UNKNOWN_EVENT_PROPERTIES,
    RulePatch,
    card_type_key,
    default_event_rule,
    event_rule_config,
    hub_spec_from_config,
    resolve_event_rule,
    transactional_for,
)
from integrations.views import hub_webhook_urls

SECTIONS = (
    ("general", gettext_lazy("Hub")),
    ("connection", gettext_lazy("Braze connection")),
    ("identity", gettext_lazy("Identity")),
    ("mappings", gettext_lazy("Field mappings")),
    ("events", gettext_lazy("Event kinds")),
    ("engagement", gettext_lazy("Engagement")),
    ("emails", gettext_lazy("Transactional emails")),
    ("advanced", gettext_lazy("Advanced")),
    ("json", gettext_lazy("JSON")),
)
KEPT_KEY = "editor-kept-api-key:{hub}"


# --- helpers ----------------------------------------------------------------------------------


def _editable_hub(request: HttpRequest, slug: str) -> Hub:
    hub = get_object_or_404(hubs_visible_to(request.user).select_related("connection"), slug=slug)
    if not user_can_edit_hub(request.user, hub):
        raise PermissionDenied
    return hub


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail → hub JSON path → messages."""
    if isinstance(detail, dict):
        found: dict[str, list[str]] = {}
        for key, value in detail.items():
            path = prefix if key == "non_field_errors" else (f"{prefix}.{key}" if prefix else key)
            for sub, texts in flatten_errors(value, path).items():
                found.setdefault(sub, []).extend(texts)
        return found
    if isinstance(detail, list) and detail and not all(isinstance(d, str) for d in detail):
        found = {}
        for index, item in enumerate(detail):
            for sub, texts in flatten_errors(item, f"{prefix}[{index}]").items():
                found.setdefault(sub, []).extend(texts)
        return found
    items = detail if isinstance(detail, list) else [detail]
    return {prefix: [str(item) for item in items]} if items else {}


def _save(request: HttpRequest, config: dict[str, Any], action: str) -> dict[str, list[str]]:
    try:
        hub_config_import(config=config, user=request.user, action=action)
    except DRFValidationError as exc:
        return flatten_errors(exc.detail)
    return {}


def _attach(form: forms.Form, paths: dict[str, str], errors: dict[str, list[str]]
            ) -> dict[str, list[str]]:
    left = {}
    for path, texts in errors.items():
        field = paths.get(path)
        if field is None:
            left[path] = texts
            continue
        for text in texts:
            form.add_error(field, text)
    return left


@dataclass(frozen=True)
class SummaryItem:
    anchor: str
    label: str
    message: str


def error_summary(all_forms: list[forms.Form], left: dict[str, list[str]]) -> list[SummaryItem]:
    """Every error on the page, each linking to its field (or the form's own messages)."""
    items = [SummaryItem("errors", path, text) for path, texts in left.items() for text in texts]
    for form in all_forms:
        for name, texts in form.errors.items():
            if name == forms.forms.NON_FIELD_ERRORS or name not in form.fields:
                items += [SummaryItem("errors", "", str(text)) for text in texts]
                continue
            bound = form[name]
            anchor = bound.auto_id or name
            if isinstance(bound.field.widget, forms.CheckboxSelectMultiple):
                anchor = f"{anchor}_0"
            items += [SummaryItem(anchor, str(bound.label), str(text)) for text in texts]
    return items


def _page(request: HttpRequest, hub: Hub, section: str, template: str,
          context: dict[str, Any], *, all_forms: list[forms.Form] = (),
          left: dict[str, list[str]] | None = None) -> HttpResponse:
    summary = error_summary(list(all_forms), left or {})
    status = 400 if summary else 200
    return render(request, template, {
        "hub": hub, "sections": SECTIONS, "section": section, "summary": summary,
        "komo_keys": sorted(hub_known_fields(hub) or ()) or list(UNKNOWN_EVENT_PROPERTIES),
        **context,
    }, status=status)


def _done(request: HttpRequest, hub: Hub, section: str, **kwargs: str) -> HttpResponse:
    messages.success(request, _("Saved."))
    return redirect(f"integrations:hub_edit_{section}", slug=hub.slug, **kwargs)


# --- create -----------------------------------------------------------------------------------


@login_required
def hub_create(request: HttpRequest) -> HttpResponse:
    if not can_create_hubs(request.user):
        raise PermissionDenied
    form = HubCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        config = {
            "slug": form.cleaned_data["slug"], "name": form.cleaned_data["name"],
            "active": False, "events": list(DEFAULT_EVENTS),
            "identity": {"type": "alias_email", "field": "email", "alias_label": "email"},
        }
        hub, _created = hub_config_import(config=config, user=request.user, action="created")
        if not request.user.is_superuser:
            HubMembership.objects.get_or_create(user=request.user, hub=hub,
                                                defaults={"role": HubRole.EDITOR})
        messages.success(request, _("Hub created. Follow the checklist to set it up."))
        return redirect("integrations:hub_dashboard", slug=hub.slug)
    return render(request, "integrations/hub_create.html", {
        "form": form, "summary": error_summary([form], {}) if form.is_bound else [],
    }, status=400 if form.errors else 200)


@login_required
def hub_edit(request: HttpRequest, slug: str) -> HttpResponse:
    hub = _editable_hub(request, slug)
    return redirect("integrations:hub_edit_general", slug=hub.slug)


# --- simple sections --------------------------------------------------------------------------


def _simple_section(request: HttpRequest, slug: str, section: str,
                    form_class: type[forms.Form]) -> HttpResponse:
    hub = _editable_hub(request, slug)
    config = hub_config_export(hub)
    form = form_class(request.POST or None, initial=form_class.initial_of(config))
    left: dict[str, list[str]] = {}
    if request.method == "POST" and form.is_valid():
        form.apply(config)
        left = _attach(form, form.paths, _save(request, config, f"edited-{section}"))
        if not left and not form.errors:
            return _done(request, hub, section)
    return _page(request, hub, section, "integrations/editor/simple.html", {"form": form},
                 all_forms=[form], left=left)


@login_required
def hub_edit_general(request: HttpRequest, slug: str) -> HttpResponse:
    return _simple_section(request, slug, "general", GeneralForm)


@login_required
def hub_edit_identity(request: HttpRequest, slug: str) -> HttpResponse:
    return _simple_section(request, slug, "identity", IdentityForm)


@login_required
def hub_edit_engagement(request: HttpRequest, slug: str) -> HttpResponse:
    return _simple_section(request, slug, "engagement", EngagementForm)


@login_required
def hub_edit_connection(request: HttpRequest, slug: str) -> HttpResponse:
    """The API key is write-only. A key typed into a form that failed for another reason is
    kept (encrypted, in the session) instead of being sent back into the page."""
    hub = _editable_hub(request, slug)
    config = hub_config_export(hub)
    session_key = KEPT_KEY.format(hub=hub.pk)
    kept = crypto.decrypt(request.session[session_key]) if session_key in request.session else ""
    connection = getattr(hub, "connection", None)
    form = ConnectionForm(request.POST or None, initial=ConnectionForm.initial_of(config),
                          stored_last4=connection.api_key_last4 if connection else "",
                          kept_last4=kept[-4:] if kept else "")
    left: dict[str, list[str]] = {}
    if request.method == "POST":
        if form.is_valid():
            form.apply(config, kept_key=kept)
            left = _attach(form, form.paths, _save(request, config, "edited-connection"))
            if not left and not form.errors:
                request.session.pop(session_key, None)
                messages.info(request, _("Now test the connection from the hub's page."))
                return _done(request, hub, "connection")
        typed = form.cleaned_data.get("api_key") if hasattr(form, "cleaned_data") else ""
        if typed and "api_key" not in form.errors:
            request.session[session_key] = crypto.encrypt(typed)
            form = ConnectionForm(request.POST, initial=ConnectionForm.initial_of(config),
                                  stored_last4=connection.api_key_last4 if connection else "",
                                  kept_last4=typed[-4:])
            form.is_valid()
            form.apply(config, kept_key=typed)
            left = _attach(form, form.paths, _save(request, config, "edited-connection"))
    return _page(request, hub, "connection", "integrations/editor/simple.html", {"form": form},
                 all_forms=[form], left=left)


@login_required
def hub_edit_advanced(request: HttpRequest, slug: str) -> HttpResponse:
    hub = _editable_hub(request, slug)
    before = {name: getattr(hub, name) for name in AdvancedForm._meta.fields}
    form = AdvancedForm(request.POST or None, instance=hub)
    if request.method == "POST" and form.is_valid():
        form.save()
        after = {name: getattr(hub, name) for name in AdvancedForm._meta.fields}
        config_change_record(hub=hub, user=request.user, action="edited-advanced",
                             before=before, after=after)
        return _done(request, hub, "advanced")
    return _page(request, hub, "advanced", "integrations/editor/simple.html", {"form": form},
                 all_forms=[form])


# --- mappings ---------------------------------------------------------------------------------


@login_required
def hub_edit_mappings(request: HttpRequest, slug: str) -> HttpResponse:
    hub = _editable_hub(request, slug)
    config = hub_config_export(hub)
    formset = MappingFormSet(request.POST or None, prefix="map", initial=mapping_rows(config))
    left: dict[str, list[str]] = {}
    if request.method == "POST" and formset.is_valid():
        rows = [(form, form.mapping_json()) for form in formset.forms]
        rows = [(form, item) for form, item in rows if item is not None]
        config["mappings"] = [item for _form, item in rows]
        for path, texts in _save(request, config, "edited-mappings").items():
            form, field = _mapping_target(path, rows)
            if form is None:
                left[path] = texts
            else:
                for text in texts:
                    form.add_error(field, text)
        if not left and not any(form.errors for form in formset.forms):
            return _done(request, hub, "mappings")
    return _page(request, hub, "mappings", "integrations/editor/mappings.html",
                 {"formset": formset}, all_forms=list(formset.forms), left=left)


def _mapping_target(path: str, rows: list[tuple[forms.Form, dict]]
                    ) -> tuple[forms.Form | None, str | None]:
    if not path.startswith("mappings["):
        return None, None
    index_text, _sep, rest = path.removeprefix("mappings[").partition("]")
    if not index_text.isdigit() or int(index_text) >= len(rows):
        return None, None
    return rows[int(index_text)][0], MappingRowForm.keys.get(rest.lstrip("."))


# --- event kinds ------------------------------------------------------------------------------


def _kinds(hub: Hub, config: dict[str, Any]) -> list[str]:
    """Komo's documented kinds, then any other the hub delivers, configures or confirmed."""
    other = [*config.get("events", []), *(config.get("event_rules") or {}),
             *(config.get("new_event_kinds") or []), *(config.get("transactional") or {})]
    return list(dict.fromkeys([*DOCUMENTED_EVENTS, *other]))


@dataclass(frozen=True)
class KindRow:
    kind: str
    delivered: bool
    landing: str
    event_name: str
    overrides: list[str]
    configured: bool


@login_required
def hub_edit_events(request: HttpRequest, slug: str) -> HttpResponse:
    hub = _editable_hub(request, slug)
    config = hub_config_export(hub)
    kinds = _kinds(hub, config)
    form = EventKindsForm(request.POST or None, kinds=kinds,
                          initial={"delivered": config.get("events", [])})
    left: dict[str, list[str]] = {}
    if request.method == "POST" and form.is_valid():
        form.apply(config)
        left = _save(request, config, "edited-events")
        if not left:
            return _done(request, hub, "events")
    spec = hub_spec_from_config(hub_config_export(hub))
    rows = []
    for kind in kinds:
        rule = resolve_event_rule(spec, event=kind)
        configured = event_rule_config(spec, kind)
        rows.append(KindRow(
            kind=kind, delivered=kind in spec.events, landing=LANDING_LABELS[rule.landing],
            event_name=rule.event_name, configured=configured is not None,
            overrides=[o.card_type for o in configured.card_types] if configured else [],
        ))
    return _page(request, hub, "events", "integrations/editor/events.html",
                 {"form": form, "rows": rows}, all_forms=[form], left=left)


def _rule_context(hub: Hub, kind: str) -> tuple[dict[str, Any], list[str]]:
    config = hub_config_export(hub)
    if kind not in _kinds(hub, config):
        raise Http404
    documented = DOCUMENTED_EVENTS.get(kind)
    candidates = candidate_keys(documented.properties if documented else
                                UNKNOWN_EVENT_PROPERTIES, hub_known_fields(hub))
    return config, candidates


@login_required
def hub_edit_event(request: HttpRequest, slug: str, kind: str) -> HttpResponse:
    hub = _editable_hub(request, slug)
    config, candidates = _rule_context(hub, kind)
    spec = hub_spec_from_config(config)
    configured = event_rule_config(spec, kind)
    editor = RuleEditor(request.POST or None, patch=configured.patch if configured else
                        RulePatch(), inherited=default_event_rule(kind),
                        candidates=candidates, card=False)
    is_delivered = kind in config.get("events", [])
    left: dict[str, list[str]] = {}
    if request.method == "POST" and "add_card_type" in request.POST:
        card = (request.POST.get("card_type_other") or request.POST.get("card_type") or "")
        card = card.strip()[:100]
        if card:
            return redirect("integrations:hub_edit_card", slug=hub.slug, kind=kind,
                            card_type=card)
    elif request.method == "POST" and editor.is_valid():
        rules = dict(config.get("event_rules") or {})
        body = editor.patch_json()
        card_types = (rules.get(kind) or {}).get("card_types")
        if card_types:
            body["card_types"] = card_types
        if body:
            rules[kind] = body
        else:
            rules.pop(kind, None)
        config["event_rules"] = rules
        wanted = request.POST.get("delivered") == "on"
        events = list(config.get("events", []))
        if wanted and kind not in events:
            events.append(kind)
        config["events"] = events if wanted else [e for e in events if e != kind]
        errors = _save(request, config, "edited-event-rule")
        left = editor.attach_errors(errors, f"event_rules.{kind}")
        if not left and not any(f.errors for f in editor.all_forms):
            return _done(request, hub, "event", kind=kind)
        is_delivered = wanted
    overrides = [o.card_type for o in configured.card_types] if configured else []
    return _page(request, hub, "events", "integrations/editor/rule.html", {
        "kind": kind, "editor": editor, "delivered": is_delivered, "overrides": overrides,
        "card_types": [c for c in CARD_TYPES
                       if card_type_key(c) not in {card_type_key(o) for o in overrides}],
        "documented": kind in DOCUMENTED_EVENTS,
    }, all_forms=editor.all_forms, left=left)


@login_required
def hub_edit_card(request: HttpRequest, slug: str, kind: str, card_type: str) -> HttpResponse:
    hub = _editable_hub(request, slug)
    config, candidates = _rule_context(hub, kind)
    spec = hub_spec_from_config(config)
    configured = event_rule_config(spec, kind)
    existing = next((o for o in (configured.card_types if configured else ())
                     if card_type_key(o.card_type) == card_type_key(card_type)), None)
    name = existing.card_type if existing else card_type
    kind_rule = resolve_event_rule(spec, event=kind)
    editor = RuleEditor(request.POST or None, patch=existing.patch if existing else
                        RulePatch(), inherited=kind_rule, candidates=candidates, card=True)
    left: dict[str, list[str]] = {}
    if request.method == "POST":
        rules = dict(config.get("event_rules") or {})
        body = dict(rules.get(kind) or {})
        removing = "remove" in request.POST
        if removing or editor.is_valid():
            cards = _cards_with(body.get("card_types") or {}, name,
                                None if removing else editor.patch_json())
            if cards:
                body["card_types"] = cards
            else:
                body.pop("card_types", None)
            if body:
                rules[kind] = body
            else:
                rules.pop(kind, None)
            config["event_rules"] = rules
            errors = _save(request, config, "edited-card-type-rule")
            left = editor.attach_errors(errors, f"event_rules.{kind}.card_types.{name}")
            if not left and not any(f.errors for f in editor.all_forms):
                if removing:
                    messages.success(request, _("Removed."))
                    return redirect("integrations:hub_edit_event", slug=hub.slug, kind=kind)
                return _done(request, hub, "card", kind=kind, card_type=name)
    return _page(request, hub, "events", "integrations/editor/rule.html", {
        "kind": kind, "card_type": name, "editor": editor, "existing": existing is not None,
    }, all_forms=editor.all_forms, left=left)


def _cards_with(cards: dict[str, Any], name: str, patch: dict[str, Any] | None
                ) -> dict[str, Any]:
    """The card-type overrides with ``name``'s replaced in place (added last; None removes)."""
    result: dict[str, Any] = {}
    for key, value in cards.items():
        if card_type_key(key) != card_type_key(name):
            result[key] = value
        elif patch is not None:
            result[name] = patch
    if patch is not None and name not in result:
        result[name] = patch
    return result


# --- transactional emails ---------------------------------------------------------------------


@login_required
def hub_edit_emails(request: HttpRequest, slug: str) -> HttpResponse:
    hub = _editable_hub(request, slug)
    config = hub_config_export(hub)
    spec = hub_spec_from_config(config)
    moments = list(dict.fromkeys([*spec.events, *(item.event for item in spec.transactional)]))
    rows = [(kind, transactional_for(spec, kind)) for kind in moments]
    return _page(request, hub, "emails", "integrations/editor/emails.html", {
        "rows": rows, "identity_ok": spec.identity.type in ("external_id", "alias_email",
                                                            "alias_phone"),
    })


@login_required
def hub_edit_email(request: HttpRequest, slug: str, kind: str) -> HttpResponse:
    hub = _editable_hub(request, slug)
    config, candidates = _rule_context(hub, kind)
    spec = hub_spec_from_config(config)
    editor = EmailEditor(request.POST or None, event=kind, item=transactional_for(spec, kind),
                         candidates=candidates)
    left: dict[str, list[str]] = {}
    if request.method == "POST":
        emails = dict(config.get("transactional") or {})
        removing = "remove" in request.POST
        if removing or editor.is_valid():
            if removing:
                emails.pop(kind, None)
            else:
                emails[kind] = editor.email_json()
            config["transactional"] = emails
            errors = _save(request, config, "edited-email")
            left = editor.attach_errors(errors, f"transactional.{kind}")
            if not left and not any(f.errors for f in editor.all_forms):
                if removing:
                    messages.success(request, _("Removed."))
                    return redirect("integrations:hub_edit_emails", slug=hub.slug)
                return _done(request, hub, "email", kind=kind)
    return _page(request, hub, "emails", "integrations/editor/email.html", {
        "kind": kind, "editor": editor, "existing": transactional_for(spec, kind) is not None,
    }, all_forms=editor.all_forms, left=left)


# --- JSON -------------------------------------------------------------------------------------


class ImportForm(forms.Form):
    config = forms.CharField(
        label=_("Hub JSON"), widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false"}),
        help_text=gettext_lazy("The same JSON the export gives. Its slug must be this hub's."),
    )


@login_required
def hub_edit_json(request: HttpRequest, slug: str) -> HttpResponse:
    hub = _editable_hub(request, slug)
    form = ImportForm(request.POST or None)
    left: dict[str, list[str]] = {}
    if request.method == "POST" and form.is_valid():
        try:
            config = json.loads(form.cleaned_data["config"])
        except ValueError as exc:
            form.add_error("config", _("This is not valid JSON: %(error)s") % {"error": exc})
        else:
            if not isinstance(config, dict) or config.get("slug") != hub.slug:
                form.add_error("config", _("Paste one hub object whose slug is “%(slug)s”.")
                               % {"slug": hub.slug})
            else:
                left = _save(request, config, "import-updated")
                if not left:
                    return _done(request, hub, "json")
    export = json.dumps(hub_config_export(hub), indent=2, ensure_ascii=False)
    return _page(request, hub, "json", "integrations/editor/json.html",
                 {"form": form, "export": export}, all_forms=[form], left=left)


@login_required
def hub_export(request: HttpRequest, slug: str) -> HttpResponse:
    hub = get_object_or_404(hubs_visible_to(request.user), slug=slug)
    response = HttpResponse(json.dumps(hub_config_export(hub), indent=2, ensure_ascii=False),
                            content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{hub.slug}.json"'
    return response


# --- one-click actions from the dashboard -----------------------------------------------------


@login_required
@require_POST
def hub_switch(request: HttpRequest, slug: str) -> HttpResponse:
    hub = _editable_hub(request, slug)
    active = request.POST.get("active") == "on"
    hubs_active_set(hubs=[hub], active=active, user=request.user)
    messages.success(request, _("The hub is on: it delivers to Braze.") if active else
                     _("The hub is off: it stores what Komo sends, and delivers nothing."))
    return redirect("integrations:hub_dashboard", slug=hub.slug)


@login_required
@require_POST
def hub_token(request: HttpRequest, slug: str) -> HttpResponse:
    """A new ingest token, shown once on a page that is never cached or stored."""
    hub = _editable_hub(request, slug)
    rotate = request.POST.get("rotate") == "1" and bool(hub.ingest_token_hash)
    token = hub_token_issue(hub=hub, user=request.user,
                            grace=TOKEN_GRACE_DEFAULT if rotate else NO_GRACE)
    response = render(request, "integrations/token_issued.html", {
        "hub": hub, "token": token, "rotated": rotate, "webhook": hub_webhook_urls(request, hub),
        "dashboard_url": reverse("integrations:hub_dashboard", args=[hub.slug]),
    })
    add_never_cache_headers(response)
    patch_cache_control(response, no_store=True, private=True)
    return response
