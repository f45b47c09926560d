"""Personal data in the admin: who may see it, who saw it, and the erasures.

* ``SubmissionPrivacyMixin``: the submission list shows a masked person unless the user's role
  on the row's hub allows personal data; the submission page is refused (403) to the others
  (health-only members) and, when shown, writes an ``AccessRecord``.
* ``AttemptPrivacyMixin``: a delivery attempt's page shows Braze request bodies (many people's
  data): only roles allowed personal data open it.
* ``AccessRecordAdmin`` and ``ErasureRecordAdmin``: read-only lists for superusers, filterable by
  hub and user. Neither holds personal data.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from integrations.models import AccessRecord, ErasureRecord, Submission
from integrations.selectors import can_see_personal_data, person_shown, personal_data_hub_ids
from integrations.services.access import access_record

PERSON_COLUMN = "person_label"


class SubmissionPrivacyMixin:
    def get_list_display(self, request: HttpRequest) -> Any:
        columns = list(super().get_list_display(request))
        visible = personal_data_hub_ids(request.user)

        @admin.display(description=_("person"))
        def person(submission: Submission) -> str:
            return person_shown(submission, visible)

        return [person if column == PERSON_COLUMN else column for column in columns]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not can_see_personal_data(request.user, obj.hub):
            return False
        return super().has_view_permission(request, obj)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            submission = self.get_object(request, object_id)
            if submission is not None:
                access_record(user=request.user, submission=submission, page="admin")
        return response


class AttemptPrivacyMixin:
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not can_see_personal_data(request.user, obj.hub):
            return False
        return super().has_view_permission(request, obj)


class SuperuserReadOnlyAdmin(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AccessRecord)
class AccessRecordAdmin(SuperuserReadOnlyAdmin):
    list_display = ("at", "username", "hub", "submission_public_id", "page")
    list_filter = (("hub", RelatedOnlyFieldListFilter), ("user", RelatedOnlyFieldListFilter),
                   "page")
    list_select_related = ("hub",)
    date_hierarchy = "at"
    fields = ("at", "user", "username", "hub", "submission_public_id", "page")
    readonly_fields = fields


class ErasureHubFilter(admin.SimpleListFilter):
    """Erasures keep hub slugs (a hub may be gone since): filter on them."""

    title = _("hub")
    parameter_name = "hub_slug"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        slugs: set[str] = set()
        for row in ErasureRecord.objects.values_list("hub_slugs", flat=True):
            slugs.update(row or ())
        return [(slug, slug) for slug in sorted(slugs)]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value()
        if not value:
            return queryset
        rows = queryset.values_list("pk", "hub_slugs")
        ids = [pk for pk, slugs in rows if value in (slugs or ())]
        return queryset.filter(pk__in=ids)


@admin.register(ErasureRecord)
class ErasureRecordAdmin(SuperuserReadOnlyAdmin):
    list_display = ("at", "actor", "identifier_kind", "hubs", "submissions", "braze_outcome")
    list_filter = (ErasureHubFilter, ("user", RelatedOnlyFieldListFilter), "braze_outcome")
    date_hierarchy = "at"
    fields = ("at", "user", "actor", "identifier_kind", "hub_slugs", "counts", "braze_outcome",
              "braze_answer")
    readonly_fields = fields

    @admin.display(description=_("hubs"))
    def hubs(self, record: ErasureRecord) -> str:
        return ", ".join(record.counts or {}) or "—"

    @admin.display(description=_("submissions erased"))
    def submissions(self, record: ErasureRecord) -> int:
        return sum(int(c.get("submissions", 0)) for c in (record.counts or {}).values())
