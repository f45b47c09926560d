"""Shared by the admin screens: the site's titles and access scoped by hub membership.

Access follows hub memberships, not Django's per-model permissions: staff see the hubs they are
members of (and those hubs' submissions, attempts and changes), editors may change them, and
superusers see everything.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from integrations.admin_guard import SafeChangeListMixin
from integrations.models import Hub
from integrations.selectors import can_create_hubs, can_edit_hub, can_view_hub, hubs_visible_to

admin.site.site_header = _("Komo → Braze portal")
admin.site.site_title = _("Komo → Braze portal")
admin.site.index_title = _("Configuration and support")


class HubScopedAdmin(SafeChangeListMixin, admin.ModelAdmin):
    """Read-only admin of rows belonging to a hub, limited to the hubs the user may see."""

    hub_lookup = "hub"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.hub_lookup}__in": hubs_visible_to(request.user)})

    def has_module_permission(self, request: HttpRequest) -> bool:
        return can_view_hub(request.user, None)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return can_view_hub(request.user, getattr(obj, "hub", None) if obj else None)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class HubChildInlineMixin:
    """Inline rows of a hub follow the hub's own permissions (``obj`` is the hub)."""

    def has_view_permission(self, request: HttpRequest, obj: Hub | None = None) -> bool:
        return can_view_hub(request.user, obj)

    def has_add_permission(self, request: HttpRequest, obj: Hub | None = None) -> bool:
        return can_edit_hub(request.user, obj) if obj else can_create_hubs(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Hub | None = None) -> bool:
        return can_edit_hub(request.user, obj) if obj else can_create_hubs(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Hub | None = None) -> bool:
        return self.has_change_permission(request, obj)


def superusers_only_outside_integrations(site: admin.AdminSite) -> None:
    """Task queues (django-q2), groups and users are for superusers: other staff never see them,
    even if someone granted them the model permissions."""
    for model, model_admin in site._registry.items():
        if model._meta.app_label == "integrations":
            continue
        for name in ("has_module_permission", "has_view_permission", "has_add_permission",
                     "has_change_permission", "has_delete_permission"):
            original = getattr(model_admin, name)

            def restricted(request: HttpRequest, *args: Any, _original=original, **kwargs: Any
                           ) -> bool:
                return bool(request.user.is_superuser and _original(request, *args, **kwargs))

            setattr(model_admin, name, restricted)
