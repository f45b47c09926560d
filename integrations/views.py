"""Portal pages for marketers and support staff (login required).

Views orchestrate: they read through ``selectors``, write through ``services`` and render. Every
value that came from a Komo payload or from Braze is rendered autoescaped; the API key and ingest
tokens never reach a page (only their last four characters).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection as db_connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from integrations import demo
from integrations.explain import outcome_explain
from integrations.forms import PreviewForm
from integrations.health import CAUSE_FIXES, Cause, cause_sentence, fix_label
from integrations.mapping import ValueProblem, identify
from integrations.models import (
    AttemptItem,
    BrazeConnection,
    ConfigChange,
    DeliveryAttempt,
    Hub,
    Submission,
)
from integrations.reasons import problems_shown
from integrations.selectors import (
    can_create_hubs,
    can_see_personal_data,
    hub_health,
    hubs_editable_by,
    hubs_health,
    hubs_visible_to,
    person_shown,
    personal_data_hub_ids,
    submission_preview,
    user_can_edit_hub,
)
from integrations.services.access import access_record
from integrations.services.hubs import connection_test, submissions_redeliver
from integrations.views_charts import hub_charts

SAMPLE_PAYLOAD = "competition-entry"
RESPONSE_PREVIEW_CHARS = 2000
RECENT_SUBMISSIONS = 15
RECENT_CHANGES = 8
PREVIEW_PICKS = 8
HEALTH_LABELS = {"ok": gettext_lazy("OK"), "warning": gettext_lazy("Warning"),
                 "error": gettext_lazy("Problem")}


def healthz(request: HttpRequest) -> HttpResponse:
    with db_connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


# --- shared page helpers (also used by the admin) ---------------------------------------------


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def hub_page_links(hub: Hub) -> list[tuple[str, Any]]:
    return [
        (reverse("integrations:hub_dashboard", args=[hub.slug]), gettext_lazy("Dashboard")),
        (reverse("integrations:hub_preview", args=[hub.slug]), gettext_lazy("Preview")),
        (submissions_changelist_url(hub), gettext_lazy("Submissions")),
        (reverse("integrations:hub_audit", args=[hub.slug]), gettext_lazy("Audit log")),
    ]


def submissions_changelist_url(hub: Hub) -> str:
    """The hub's submissions in the portal's own list (views_submissions)."""
    return f"{reverse('integrations:submission_list')}?hub={hub.slug}"


def hub_webhook_urls(request: HttpRequest, hub: Hub) -> dict[str, str]:
    """The two intake URLs to give Komo; the token-in-path one without its token."""
    placeholder = "T"
    ingest = request.build_absolute_uri(reverse("ingest", kwargs={"token": placeholder}))
    return {
        "header": request.build_absolute_uri(reverse("hub_submissions", args=[hub.slug])),
        "ingest_prefix": ingest.removesuffix(placeholder),
    }


@dataclass(frozen=True)
class AttemptRow:
    attempt: DeliveryAttempt
    result: str
    error: str
    explanation: str
    own_objects: str  # this submission's objects from the request body, as pretty JSON
    objects_in_request: int
    response: str
    response_truncated: bool


def submission_detail_context(submission: Submission) -> dict[str, Any]:
    """What support needs about one submission: payload, problems, every attempt."""
    identifier = _submission_identifier(submission)
    items = (
        AttemptItem.objects.filter(submission=submission)
        .select_related("attempt")
        .order_by("-attempt__started_at", "-id")
    )
    rows = [_attempt_row(item, identifier) for item in items]
    return {
        "payload_json": pretty_json(submission.payload),
        "problems": problems_shown(submission.problems),
        "attempt_rows": rows,
        # Every request listed counts (rows redelivered before retries_from existed were reset
        # to 0; a rate-limited wait does not use a retry but is still an attempt shown).
        "attempts_shown": max(submission.attempts, len(rows)),
    }


def _submission_identifier(submission: Submission) -> dict[str, Any] | None:
    """The identifier keys this submission's objects carry, to find them in a shared request."""
    spec = submission.hub.to_spec()
    payload = submission.payload if isinstance(submission.payload, dict) else {}
    try:
        keys, _value = identify(spec, payload.get(spec.identity.field))
    except (ValueProblem, ValueError, KeyError):
        return None
    keys.pop("_update_existing_only", None)
    return keys


def _attempt_row(item: AttemptItem, identifier: dict[str, Any] | None) -> AttemptRow:
    attempt = item.attempt
    body = attempt.request_body if isinstance(attempt.request_body, dict) else {}
    total = sum(len(objs) for objs in body.values() if isinstance(objs, list))
    own = _own_objects(body, identifier)
    if not own and total == 1:
        own = body
    explanation = outcome_explain(attempt.outcome, status_code=attempt.status_code,
                                  message=attempt.message)
    return AttemptRow(
        attempt=attempt,
        result=item.get_result_display(),
        error=_own_error(item, attempt),
        explanation=explanation,
        own_objects=pretty_json(own) if own else "",
        objects_in_request=total,
        response=attempt.response_body[:RESPONSE_PREVIEW_CHARS],
        response_truncated=len(attempt.response_body) > RESPONSE_PREVIEW_CHARS,
    )


def _own_error(item: AttemptItem, attempt: DeliveryAttempt) -> str:
    """The item's own error (Braze's per-item text). Rows stored before reasons had codes
    repeat the request's explanation in English here: that is shown once, above, already."""
    error = item.error or ""
    with translation.override("en"):
        repeated = outcome_explain(attempt.outcome, status_code=attempt.status_code,
                                   message=attempt.message)
    quoted = f"“{attempt.message[:300]}”" if attempt.message else ""
    return "" if error == repeated or (quoted and quoted in error) else error


def _own_objects(body: dict[str, Any], identifier: dict[str, Any] | None) -> dict[str, list]:
    if not identifier:
        return {}
    found = {
        array: [obj for obj in objects if isinstance(obj, dict)
                and all(obj.get(key) == value for key, value in identifier.items())]
        for array, objects in body.items()
        if isinstance(objects, list)
    }
    return {array: objects for array, objects in found.items() if objects}


# --- hub list and dashboard -------------------------------------------------------------------


@dataclass(frozen=True)
class CauseRow:
    """One health cause as shown: a sentence, its level, the page that fixes it."""

    level: str
    sentence: str
    fix_url: str
    fix_label: str


_FIX_STATUS = {"pending": "pending", "failed": "failed", "held": "held", "problems": "failed"}


def _fix_url(hub: Hub, fix: str) -> str:
    if fix == "connection":
        return reverse("integrations:hub_edit_connection", args=[hub.slug])
    if fix in _FIX_STATUS:
        return f"{submissions_changelist_url(hub)}&status__exact={_FIX_STATUS[fix]}"
    anchor = {"test": "connection", "webhook": "webhook"}.get(fix, "health")
    return f"{reverse('integrations:hub_dashboard', args=[hub.slug])}#{anchor}"


def health_cause_rows(hub: Hub, causes: tuple[Cause, ...]) -> list[CauseRow]:
    rows = []
    for cause in causes:
        fix = CAUSE_FIXES.get(cause.code, "")
        rows.append(CauseRow(level=cause.level, sentence=cause_sentence(cause),
                             fix_url=_fix_url(hub, fix), fix_label=fix_label(fix)))
    return rows


@dataclass(frozen=True)
class HubRow:
    hub: Hub
    health: Any
    health_label: str
    connection: BrazeConnection | None
    can_edit: bool
    causes: list[CauseRow]


def _hub_rows(user: Any) -> list[HubRow]:
    editable = set(hubs_editable_by(user).values_list("pk", flat=True))
    hubs = list(hubs_visible_to(user).select_related("connection"))
    healths = hubs_health(hubs=hubs)
    rows = []
    for hub in hubs:
        health = healths[hub.pk]
        rows.append(HubRow(hub=hub, health=health, health_label=HEALTH_LABELS[health.level],
                           connection=getattr(hub, "connection", None),
                           can_edit=hub.pk in editable,
                           causes=health_cause_rows(hub, health.causes)))
    return rows


@login_required
def hub_list(request: HttpRequest) -> HttpResponse:
    context = {"rows": _hub_rows(request.user), "can_create": can_create_hubs(request.user)}
    return render(request, "integrations/hub_list.html", context)


def _visible_hub(request: HttpRequest, slug: str) -> Hub:
    return get_object_or_404(hubs_visible_to(request.user).select_related("connection"),
                             slug=slug)


@login_required
def hub_dashboard(request: HttpRequest, slug: str) -> HttpResponse:
    hub = _visible_hub(request, slug)
    health = hub_health(hub=hub)
    context = {
        "hub": hub,
        "health": health,
        "health_label": HEALTH_LABELS[health.level],
        "causes": health_cause_rows(hub, health.causes),
        "connection": getattr(hub, "connection", None),
        "can_edit": user_can_edit_hub(request.user, hub),
        "webhook": hub_webhook_urls(request, hub),
        "submissions": _masked_where_needed(
            request, Submission.objects.filter(hub=hub).select_related("hub")[:RECENT_SUBMISSIONS]
        ),
        "personal_data": can_see_personal_data(request.user, hub),
        "changes": ConfigChange.objects.filter(hub=hub).select_related("user")[:RECENT_CHANGES],
        "edit_url": reverse("integrations:hub_edit", args=[hub.slug]),
        "submissions_url": submissions_changelist_url(hub),
        "changes_url": reverse("integrations:hub_audit", args=[hub.slug]),
        "audit_url": reverse("integrations:hub_audit", args=[hub.slug]),
        # --- charts (issue 11, point 4): the hourly rollup, never the submissions themselves
        "charts": hub_charts(hub_id=hub.pk, span=request.GET.get("chart", "")),
    }
    return render(request, "integrations/hub_dashboard.html", context)


@login_required
@require_POST
def hub_connection_test(request: HttpRequest, slug: str) -> HttpResponse:
    hub = _visible_hub(request, slug)
    if not user_can_edit_hub(request.user, hub):
        raise PermissionDenied
    connection = BrazeConnection.objects.filter(hub=hub).first()
    if connection is None:
        messages.error(request, _("This hub has no Braze connection yet."))
    else:
        result = connection_test(connection=connection)
        explanation = outcome_explain(result.outcome, status_code=result.status_code,
                                      message=result.message)
        messages.add_message(request, messages.SUCCESS if result.ok else messages.ERROR,
                             explanation)
    return redirect("integrations:hub_dashboard", slug=hub.slug)


# --- preview ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewResult:
    event: str
    delivered_event: bool
    body_json: str
    problems: list[dict[str, Any]]
    hold_reason: str
    config_error: bool = False


def _preview_form(request: HttpRequest, hub: Hub) -> tuple[PreviewForm, str]:
    """The bound form and where its payload came from: pasted, a submission, or the sample."""
    if request.method == "POST":
        return PreviewForm(request.POST), "pasted"
    picked = _picked_submission(hub, request.GET.get("submission", ""))
    if picked is not None:
        if not can_see_personal_data(request.user, hub):
            raise PermissionDenied(_("Your role on this hub does not show personal data."))
        if picked.payload is None:  # retention removed it: say so, start from nothing
            return PreviewForm(), "redacted"
        access_record(user=request.user, submission=picked, page="preview")
        return PreviewForm({"payload": pretty_json(picked.payload)}), "submission"
    if "sample" in request.GET:
        return PreviewForm({"payload": pretty_json(demo.sample(SAMPLE_PAYLOAD))}), "sample"
    return PreviewForm(), ""


def _picked_submission(hub: Hub, public_id: str) -> Submission | None:
    try:
        wanted = uuid.UUID(public_id)
    except ValueError:
        return None
    return Submission.objects.filter(hub=hub, public_id=wanted).first()


def _preview(hub: Hub, payload: dict[str, Any]) -> PreviewResult:
    event = str(payload.get("event", ""))
    try:
        result = submission_preview(spec=hub.to_spec(), payload=payload)
    except ValueError:
        return PreviewResult(event=event, delivered_event=False, body_json="", problems=[],
                             hold_reason="", config_error=True)
    return PreviewResult(
        event=event,
        delivered_event=result["delivered_event"],
        body_json=pretty_json(result["body"]) if result["body"] else "",
        problems=result["problems"],
        hold_reason=result["hold_reason"],
    )


@login_required
def hub_preview(request: HttpRequest, slug: str) -> HttpResponse:
    hub = _visible_hub(request, slug)
    form, source = _preview_form(request, hub)
    preview = _preview(hub, form.cleaned_data["payload"]) if form.is_bound and form.is_valid() \
        else None
    refused = form.is_bound and preview is None
    context = {
        "hub": hub,
        "form": form,
        "source": source,
        "preview": preview,
        "picks": _masked_where_needed(
            request, Submission.objects.filter(hub=hub).select_related("hub")[:PREVIEW_PICKS]
        ),
    }
    return render(request, "integrations/hub_preview.html", context, status=400 if refused else 200)


# --- submissions ------------------------------------------------------------------------------


def _masked_where_needed(request: HttpRequest, submissions: Any) -> list[Submission]:
    """Rows for a list: ``shown_person`` is the person, or masked where the role needs none."""
    visible = personal_data_hub_ids(request.user)
    rows = list(submissions)
    for submission in rows:
        submission.shown_person = person_shown(submission, visible)
    return rows


def _visible_submission(request: HttpRequest, public_id: uuid.UUID) -> Submission:
    queryset = Submission.objects.select_related("hub").filter(
        hub__in=hubs_visible_to(request.user)
    )
    return get_object_or_404(queryset, public_id=public_id)


@login_required
def submission_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    submission = _visible_submission(request, public_id)
    # Health-only members never open a submission (docs/decisions.md: 403, not a blanked page).
    if not can_see_personal_data(request.user, submission.hub):
        raise PermissionDenied(_("Your role on this hub does not show personal data."))
    access_record(user=request.user, submission=submission, page="portal")
    context = {
        "submission": submission,
        "hub": submission.hub,
        "admin_url": reverse("admin:integrations_submission_change", args=[submission.pk]),
        **submission_detail_context(submission),
    }
    return render(request, "integrations/submission_detail.html", context)


@login_required
@require_POST
def submission_redeliver(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    submission = _visible_submission(request, public_id)
    count = submissions_redeliver(pks=[submission.pk], user=request.user)
    if count:
        messages.success(request, ngettext("%(count)d submission queued for delivery again.",
                                           "%(count)d submissions queued for delivery again.",
                                           count) % {"count": count})
    else:
        messages.warning(request, _("Ignored submissions stay ignored: this hub does not "
                                    "deliver their event."))
    return redirect("integrations:submission_detail", public_id=submission.public_id)
