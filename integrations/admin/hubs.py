"""Hub configuration in the admin: hubs with their Braze connection and field mappings, and
who may see or edit which hub (memberships).

Secrets never reach a page: the Braze API key is write-only and shown as "…last4"; a freshly
issued ingest token is shown once, to the person who issued it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from integrations.admin.common import HubChildInlineMixin
from integrations.admin_guard import SafeChangeListMixin
from integrations.explain import outcome_explain
from integrations.forms import BrazeConnectionForm, FieldMappingForm, FieldMappingFormSet, HubForm
from integrations.models import BrazeConnection, FieldMapping, Hub, HubMembership, HubRole
from integrations.selectors import (
    can_create_hubs,
    can_edit_hub,
    can_view_hub,
    hub_health,
    hubs_editable_by,
    hubs_health,
    hubs_visible_to,
)
from integrations.services.hubs import (
    NO_GRACE,
    TOKEN_GRACE_DEFAULT,
    SignatureSetupError,
    config_change_record,
    connection_resume,
    connection_test,
    hub_config_export,
    hub_signature_requirement_set,
    hub_signing_secret_issue,
    hub_signing_secret_previous_drop,
    hub_token_issue,
    hubs_active_set,
)
from integrations.templatetags.portal_counts import capped
from integrations.views import HEALTH_LABELS, hub_page_links, hub_webhook_urls


class BrazeConnectionInline(HubChildInlineMixin, admin.StackedInline):
    model = BrazeConnection
    form = BrazeConnectionForm
    extra = 1
    max_num = 1
    can_delete = False
    edit_fields = ("braze_instance", "custom_endpoint", "new_api_key")
    status_fields = ("key_hint", "status", "status_reason", "last_success_at")

    def get_fields(self, request: HttpRequest, obj: Hub | None = None) -> tuple[str, ...]:
        if obj is None:
            return self.edit_fields
        if self.has_change_permission(request, obj):
            return self.edit_fields + self.status_fields
        # View-only: the model's own endpoint, never a form field that could hold the key.
        return ("rest_endpoint", *self.status_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Hub | None = None) -> tuple[str, ...]:
        if self.has_change_permission(request, obj):
            return self.status_fields
        return ("rest_endpoint", *self.status_fields)

    @admin.display(description=_("stored API key"))
    def key_hint(self, connection: BrazeConnection) -> str:
        return f"…{connection.api_key_last4}" if connection.api_key_last4 else "—"


class FieldMappingInline(HubChildInlineMixin, admin.TabularInline):
    model = FieldMapping
    form = FieldMappingForm
    formset = FieldMappingFormSet
    ordering = ("position", "id")

    def get_extra(self, request: HttpRequest, obj: Hub | None = None, **kwargs: Any) -> int:
        return 1 if obj else 3


@admin.register(Hub)
class HubAdmin(SafeChangeListMixin, admin.ModelAdmin):
    form = HubForm
    inlines = (BrazeConnectionInline, FieldMappingInline)
    change_form_template = "admin/integrations/hub/change_form.html"
    list_display = (
        "name", "active", "health_badge", "pending_count", "held_count", "failed_count",
        "connection_status", "pages",
    )
    list_filter = ("active",)
    search_fields = ("name", "slug", "komo_site_id")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("ingest_token", "signature_status")
    fieldsets = (
        (_("Hub"), {"fields": ("name", "slug", "komo_site_id", "active", "ingest_token")}),
        (_("Identity"), {
            "fields": ("identity_type", "identity_field", "alias_label"),
            "description": _("How a Komo submission finds its person in Braze."),
        }),
        (_("Delivery"), {"fields": ("events", "create_missing_users", "default_phone_region",
                                    "retention_days")}),
        (_("Event kinds, engagement and transactional emails"), {
            "fields": ("event_rules", "engagement_attributes", "transactional"),
            "classes": ("collapse",),
            "description": _("Where each Komo event kind lands in Braze (custom event, attributes, "
                             "both or nowhere), optional segmenting attributes, and Braze "
                             "transactional emails for Komo moments. Empty boxes keep the "
                             "defaults listed in docs/hub-config.md."),
        }),
        (
            _("Webhook security"),
            {
                "fields": ("signature_status", "intake_rate_per_minute"),
                "description": _(
                    "Signing secrets and signature checks are managed with the actions "
                    "in the hub list (a new secret is shown once)."
                ),
            },
        ),
    )
    actions = (
        "test_connection",
        "issue_token",
        "revoke_token",
        "export_json",
        "switch_on",
        "switch_off",
        "issue_signing_secret",
        "drop_previous_signing_secret",
        "require_signatures",
        "accept_unsigned",
    )

    class Media:
        css = {"all": ("integrations/admin.css",)}

    # permissions

    def get_queryset(self, request: HttpRequest) -> QuerySet[Hub]:
        return hubs_visible_to(request.user).select_related("connection")

    def has_module_permission(self, request: HttpRequest) -> bool:
        # Marketers set hubs up in the portal's editors; the admin's hub pages are for superusers.
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Hub | None = None) -> bool:
        return can_view_hub(request.user, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return can_create_hubs(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Hub | None = None) -> bool:
        return can_edit_hub(request.user, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Hub | None = None) -> bool:
        return request.user.is_superuser

    def has_edit_permission(self, request: HttpRequest) -> bool:
        return can_edit_hub(request.user, None)

    # saving

    def save_model(self, request: HttpRequest, obj: Hub, form: HubForm, change: bool) -> None:
        # The stored state before this save, inlines included (they are saved after the hub).
        form.config_before = hub_config_export(Hub.objects.get(pk=obj.pk)) if change else {}
        super().save_model(request, obj, form, change)
        if not change and not request.user.is_superuser:
            HubMembership.objects.get_or_create(
                user=request.user, hub=obj, defaults={"role": HubRole.EDITOR}
            )

    def save_related(self, request: HttpRequest, form: HubForm, formsets: list[BaseInlineFormSet],
                     change: bool) -> None:
        super().save_related(request, form, formsets, change)
        hub = form.instance
        connection_form = _connection_form(formsets)
        key_changed = bool(connection_form and connection_form.key_changed)
        config_change_record(
            hub=hub, user=request.user, action="changed" if change else "created",
            before=getattr(form, "config_before", {}),
            after=hub_config_export(Hub.objects.get(pk=hub.pk)), secret_changed=key_changed,
        )
        if connection_form and (key_changed or connection_form.endpoint_changed):
            connection = connection_form.instance
            if connection.is_paused:
                connection_resume(connection)
                messages.info(request, _("The Braze connection was paused; it is resumed and "
                                         "waiting submissions are delivered again."))
        for formset in formsets:
            for warning in getattr(formset, "warnings", ()):
                messages.warning(request, warning)

    # list columns

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        hubs = list(changelist.result_list)  # evaluated once; the template reuses these objects
        for hub_id, health in hubs_health(hubs=hubs).items():
            next(h for h in hubs if h.pk == hub_id).__dict__["_health"] = health
        return changelist

    @admin.display(description=_("health"))
    def health_badge(self, hub: Hub) -> SafeString:
        level = _health(hub).level
        return format_html('<span class="kb-badge kb-badge--{}">{}</span>', level,
                           HEALTH_LABELS[level])

    @admin.display(description=_("pending"))
    def pending_count(self, hub: Hub) -> str:
        return capped(_health(hub).pending)

    @admin.display(description=_("held"))
    def held_count(self, hub: Hub) -> str:
        return capped(_health(hub).held)

    @admin.display(description=_("failed"))
    def failed_count(self, hub: Hub) -> str:
        return capped(_health(hub).failed)

    @admin.display(description=_("Braze connection"))
    def connection_status(self, hub: Hub) -> SafeString | str:
        connection = getattr(hub, "connection", None)
        if connection is None:
            return format_html('<span class="kb-badge kb-badge--none">{}</span>',
                               _("not connected"))
        return format_html('<span class="kb-badge kb-badge--conn-{}">{}</span>',
                           connection.status, connection.get_status_display())

    @admin.display(description=_("pages"))
    def pages(self, hub: Hub) -> SafeString:
        links = format_html_join("", '<a href="{}">{}</a>', hub_page_links(hub))
        return format_html('<span class="kb-links">{}</span>', links)

    @admin.display(description=_("ingest token"))
    def ingest_token(self, hub: Hub) -> str:
        if not hub.pk or not hub.ingest_token_hint:
            return _("None yet: use the action “Issue new ingest token” in the hub list.")
        return format_lazy(_("…{hint} (the full token was shown once when it was issued)"),
                           hint=hub.ingest_token_hint)

    def render_change_form(self, request: HttpRequest, context: dict[str, Any], add: bool = False,
                           change: bool = False, form_url: str = "", obj: Hub | None = None
                           ) -> HttpResponse:
        context["hub_links"] = hub_page_links(obj) if obj else ()
        return super().render_change_form(request, context, add, change, form_url, obj)

    # actions

    @admin.action(description=_("Test Braze connection"), permissions=("edit",))
    def test_connection(self, request: HttpRequest, queryset: QuerySet[Hub]) -> None:
        for hub in queryset.filter(pk__in=hubs_editable_by(request.user)):
            connection = BrazeConnection.objects.filter(hub=hub).first()
            if connection is None:
                messages.warning(request, format_lazy(_("{hub}: no Braze connection yet."),
                                                      hub=hub.name))
                continue
            result = connection_test(connection=connection)
            explanation = outcome_explain(result.outcome, status_code=result.status_code,
                                          message=result.message)
            level = messages.SUCCESS if result.ok else messages.ERROR
            messages.add_message(request, level, f"{hub.name}: {explanation}")

    @admin.display(description=_("signed webhooks"))
    def signature_status(self, hub: Hub) -> str:
        if not hub.pk or not hub.signing_secret:
            return _("No signing secret yet: unsigned webhooks are accepted.")
        parts = [
            _("Required: unsigned webhooks are refused.")
            if hub.require_signature
            else _("A secret is set, but signatures are not required yet.")
        ]
        if hub.signing_secret_previous:
            parts.append(_("The previous secret is still accepted (rotation in progress)."))
        return " ".join(str(part) for part in parts)

    @admin.action(
        description=_("Issue new ingest token (the old one works 24 more hours)"),
        permissions=("edit",),
    )
    def issue_token(self, request: HttpRequest, queryset: QuerySet[Hub]) -> HttpResponse:
        return self._tokens_issued(request, queryset, grace=TOKEN_GRACE_DEFAULT)

    @admin.action(
        description=_("Revoke ingest token now and issue a new one"), permissions=("edit",)
    )
    def revoke_token(self, request: HttpRequest, queryset: QuerySet[Hub]) -> HttpResponse:
        return self._tokens_issued(request, queryset, grace=NO_GRACE)

    def _tokens_issued(
        self, request: HttpRequest, queryset: QuerySet[Hub], *, grace: timedelta
    ) -> HttpResponse:
        issued = [
            (hub, hub_token_issue(hub=hub, user=request.user, grace=grace))
            for hub in queryset.filter(pk__in=hubs_editable_by(request.user))
        ]
        # The one accepted exception to "secrets never appear in HTML": a freshly issued token,
        # shown once to the person who issued it, on a page that is never cached or stored.
        response = TemplateResponse(request, "admin/integrations/hub/token_issued.html", {
            **self.admin_site.each_context(request),
            "title": _("New ingest tokens"),
            "opts": self.model._meta,
            "issued": [(hub, token, hub_webhook_urls(request, hub)) for hub, token in issued],
        })
        add_never_cache_headers(response)
        patch_cache_control(response, no_store=True, private=True)
        return response

    @admin.action(
        description=_("Issue new signing secret (the previous one stays valid)"),
        permissions=("edit",),
    )
    def issue_signing_secret(self, request: HttpRequest, queryset: QuerySet[Hub]) -> HttpResponse:
        issued = [
            (hub, hub_signing_secret_issue(hub=hub, user=request.user, keep_previous=True))
            for hub in queryset.filter(pk__in=hubs_editable_by(request.user))
        ]
        # Like a new ingest token: shown once, to the person who issued it, never cached.
        response = TemplateResponse(
            request,
            "admin/integrations/hub/signing_secret_issued.html",
            {
                **self.admin_site.each_context(request),
                "title": _("New signing secrets"),
                "opts": self.model._meta,
                "issued": issued,
            },
        )
        add_never_cache_headers(response)
        patch_cache_control(response, no_store=True, private=True)
        return response

    @admin.action(
        description=_("Stop accepting the previous signing secret"), permissions=("edit",)
    )
    def drop_previous_signing_secret(self, request: HttpRequest, queryset: QuerySet[Hub]) -> None:
        editable = queryset.filter(pk__in=hubs_editable_by(request.user))
        count = sum(
            hub_signing_secret_previous_drop(hub=hub, user=request.user) for hub in editable
        )
        messages.success(
            request,
            ngettext(
                "%(count)d hub accepts only its current signing secret now.",
                "%(count)d hubs accept only their current signing secret now.",
                count,
            )
            % {"count": count},
        )

    @admin.action(description=_("Require signed webhooks"), permissions=("edit",))
    def require_signatures(self, request: HttpRequest, queryset: QuerySet[Hub]) -> None:
        self._signatures_required(request, queryset, required=True)

    @admin.action(description=_("Accept unsigned webhooks"), permissions=("edit",))
    def accept_unsigned(self, request: HttpRequest, queryset: QuerySet[Hub]) -> None:
        self._signatures_required(request, queryset, required=False)

    def _signatures_required(
        self, request: HttpRequest, queryset: QuerySet[Hub], *, required: bool
    ) -> None:
        for hub in queryset.filter(pk__in=hubs_editable_by(request.user)):
            try:
                hub_signature_requirement_set(hub=hub, required=required, user=request.user)
            except SignatureSetupError as exc:
                messages.error(request, f"{hub.name}: {exc}")
                continue
            text = (
                _("%(hub)s: unsigned webhooks are refused now.")
                if required
                else _("%(hub)s: unsigned webhooks are accepted now.")
            )
            messages.success(request, text % {"hub": hub.name})

    @admin.action(description=_("Export JSON"))
    def export_json(self, request: HttpRequest, queryset: QuerySet[Hub]) -> HttpResponse:
        configs = [hub_config_export(hub) for hub in queryset.prefetch_related("mappings")]
        data = configs[0] if len(configs) == 1 else configs
        filename = f"{configs[0]['slug']}.json" if len(configs) == 1 else "hubs.json"
        response = HttpResponse(json.dumps(data, indent=2, ensure_ascii=False),
                                content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @admin.action(description=_("Switch on"), permissions=("edit",))
    def switch_on(self, request: HttpRequest, queryset: QuerySet[Hub]) -> None:
        count = _hubs_active_set(request, queryset, active=True)
        text = ngettext("%(count)d hub switched on.", "%(count)d hubs switched on.", count)
        messages.success(request, text % {"count": count})

    @admin.action(description=_("Switch off"), permissions=("edit",))
    def switch_off(self, request: HttpRequest, queryset: QuerySet[Hub]) -> None:
        count = _hubs_active_set(request, queryset, active=False)
        text = ngettext("%(count)d hub switched off.", "%(count)d hubs switched off.", count)
        messages.success(request, text % {"count": count})


def _health(hub: Hub) -> Any:
    """hub_health, once per hub object (the list shows several columns of it)."""
    cached = hub.__dict__.get("_health")
    if cached is None:
        cached = hub.__dict__["_health"] = hub_health(hub=hub)
    return cached


def _connection_form(formsets: list[BaseInlineFormSet]) -> BrazeConnectionForm | None:
    for formset in formsets:
        for form in formset.forms:
            if isinstance(form, BrazeConnectionForm) and hasattr(form, "cleaned_data") \
                    and form.has_changed():
                return form
    return None


def _hubs_active_set(request: HttpRequest, queryset: QuerySet[Hub], *, active: bool) -> int:
    editable = queryset.filter(pk__in=hubs_editable_by(request.user))
    return hubs_active_set(hubs=editable, active=active, user=request.user)


@admin.register(HubMembership)
class HubMembershipAdmin(SafeChangeListMixin, admin.ModelAdmin):
    """Who may see or edit which hub. Managing it needs Django's own membership permissions."""

    list_display = ("user", "hub", "role")
    list_filter = ("role", ("hub", RelatedOnlyFieldListFilter))
    search_fields = ("user__username", "user__email", "hub__name", "hub__slug")
    list_select_related = ("user", "hub")

    def get_queryset(self, request: HttpRequest) -> QuerySet[HubMembership]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(hub__in=hubs_editable_by(request.user))

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "hub":
            kwargs["queryset"] = hubs_editable_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
