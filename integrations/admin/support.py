"""The support staff's screens in the admin: submissions (search, detail, redeliver), delivery
attempts and the hub configuration change log, all read-only and scoped to the user's hubs.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import DateFieldListFilter, RelatedOnlyFieldListFilter
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from integrations.admin.common import HubScopedAdmin
from integrations.admin.privacy import AttemptPrivacyMixin, SubmissionPrivacyMixin
from integrations.admin_paging import CappedPaginator, EventFilter, VisibleHubFilter
from integrations.explain import outcome_explain
from integrations.models import ConfigChange, DeliveryAttempt, Submission
from integrations.selectors import attempt_item_count, submissions_search
from integrations.services.hubs import submissions_redeliver
from integrations.views import pretty_json, submission_detail_context

RESPONSE_PREVIEW_CHARS = 4000


@admin.register(Submission)
class SubmissionAdmin(SubmissionPrivacyMixin, HubScopedAdmin):
    change_form_template = "admin/integrations/submission/change_form.html"
    list_display = (
        "received_at", "hub", "event", "status_badge", "person_label", "attempts",
        "next_attempt_at",
    )
    list_display_links = ("received_at",)
    list_filter = (VisibleHubFilter, "status", EventFilter, ("received_at", DateFieldListFilter))
    list_select_related = ("hub",)
    paginator, show_full_result_count = CappedPaginator, False  # admin_paging.py: no full count
    search_fields = ("komo_id",)  # replaced by submissions_search, see get_search_results
    search_help_text = _("Exact Komo id, submission id, email, phone or external id.")
    actions = ("redeliver",)
    fields = (
        "hub", "event", "komo_id", "public_id", "komo_timestamp", "received_at", "status_badge",
        "status_reason", "attempts", "next_attempt_at", "delivered_at", "redacted_at",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ("integrations/admin.css",)}

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Submission],
                           search_term: str) -> tuple[QuerySet[Submission], bool]:
        return submissions_search(queryset=queryset, term=search_term), False

    def has_redeliver_permission(self, request: HttpRequest, obj: Submission | None = None
                                 ) -> bool:
        # Support staff (viewers) redeliver too: it changes nothing but the queue.
        return self.has_view_permission(request, obj)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, submission: Submission) -> SafeString:
        return status_badge(submission)

    @admin.display(description=_("person"))
    def person_label(self, submission: Submission) -> str:
        return submission.person.label or "—"

    @admin.action(description=_("Redeliver"), permissions=("redeliver",))
    def redeliver(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        pks = list(queryset.values_list("pk", flat=True))
        count = submissions_redeliver(pks=pks, user=request.user)
        messages.success(request, redeliver_message(count, len(pks)))

    def get_urls(self) -> list[URLPattern]:
        return [
            path("<path:object_id>/redeliver/",
                 self.admin_site.admin_view(self.redeliver_view),
                 name="integrations_submission_redeliver"),
            *super().get_urls(),
        ]

    def redeliver_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return require_POST(self._redeliver_one)(request, object_id)

    def _redeliver_one(self, request: HttpRequest, object_id: str) -> HttpResponse:
        submission = self.get_object(request, object_id)
        if submission is None:
            raise Http404
        if not self.has_redeliver_permission(request, submission):
            raise PermissionDenied
        count = submissions_redeliver(pks=[submission.pk], user=request.user)
        messages.success(request, redeliver_message(count, 1))
        return HttpResponseRedirect(
            reverse("admin:integrations_submission_change", args=[submission.pk])
        )

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        submission = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if submission is not None:
            context.update(submission_detail_context(submission))
            context["can_redeliver"] = self.has_redeliver_permission(request, submission)
        return super().change_view(request, object_id, form_url, context)


def status_badge(submission: Submission) -> SafeString:
    return format_html('<span class="kb-status kb-status--{}">{}</span>', submission.status,
                       submission.get_status_display())


def redeliver_message(count: int, selected: int) -> str:
    text = ngettext("%(count)d submission queued for delivery again.",
                    "%(count)d submissions queued for delivery again.", count) % {"count": count}
    if count < selected:
        text += " " + str(_("Ignored submissions stay ignored (their event is not delivered)."))
    return text


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(AttemptPrivacyMixin, HubScopedAdmin):
    list_display = ("started_at", "hub", "status_code", "outcome", "submission_count",
                    "duration_ms", "request_bytes")
    list_filter = (VisibleHubFilter, "outcome")
    list_select_related = ("hub",)
    paginator, show_full_result_count = CappedPaginator, False  # admin_paging.py: no full count
    fields = ("hub", "started_at", "endpoint", "status_code", "outcome", "explanation",
              "duration_ms", "request_bytes", "submission_links", "request_pretty",
              "response_excerpt")
    readonly_fields = fields

    class Media:
        css = {"all": ("integrations/admin.css",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeliveryAttempt]:
        queryset = super().get_queryset(request).defer("request_body", "response_body")
        return queryset.annotate(item_count=attempt_item_count())

    @admin.display(description=_("submissions"))
    def submission_count(self, attempt: DeliveryAttempt) -> int:
        return attempt.item_count

    @admin.display(description=_("in plain words"))
    def explanation(self, attempt: DeliveryAttempt) -> str:
        return outcome_explain(attempt.outcome, status_code=attempt.status_code,
                               message=attempt.message)

    @admin.display(description=_("submissions"))
    def submission_links(self, attempt: DeliveryAttempt) -> SafeString:
        items = attempt.items.select_related("submission")
        return format_html_join(
            ", ", '<a href="{}">{}</a> ({})',
            ((reverse("admin:integrations_submission_change", args=[item.submission_id]),
              item.submission, item.get_result_display()) for item in items),
        )

    @admin.display(description=_("request body (without the API key)"))
    def request_pretty(self, attempt: DeliveryAttempt) -> SafeString:
        return format_html('<pre class="kb-code">{}</pre>', pretty_json(attempt.request_body))

    @admin.display(description=_("Braze's answer"))
    def response_excerpt(self, attempt: DeliveryAttempt) -> SafeString:
        text = attempt.response_body[:RESPONSE_PREVIEW_CHARS]
        if len(attempt.response_body) > RESPONSE_PREVIEW_CHARS:
            text += "…"
        return format_html('<pre class="kb-code">{}</pre>', text or "—")


@admin.register(ConfigChange)
class ConfigChangeAdmin(HubScopedAdmin):
    list_display = ("at", "hub_slug", "user", "action", "changed_paths", "summary")
    list_filter = (("hub", RelatedOnlyFieldListFilter), "action")
    list_select_related = ("user",)
    search_fields = ("hub_slug", "action", "summary")
    date_hierarchy = "at"
    fields = ("at", "hub", "hub_slug", "user", "action", "summary", "changes_pretty")
    readonly_fields = fields

    class Media:
        css = {"all": ("integrations/admin.css",)}

    def has_view_permission(self, request: HttpRequest, obj: ConfigChange | None = None) -> bool:
        if obj is not None and obj.hub_id is None:
            return request.user.is_superuser
        return super().has_view_permission(request, obj)

    @admin.display(description=_("what changed"))
    def changed_paths(self, change: ConfigChange) -> str:
        return ", ".join(sorted(change.changes or {})) or "—"

    @admin.display(description=_("changes (old → new)"))
    def changes_pretty(self, change: ConfigChange) -> SafeString:
        return format_html('<pre class="kb-code">{}</pre>', pretty_json(change.changes or {}))
