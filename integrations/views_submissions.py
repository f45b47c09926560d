"""Support's list of submissions in the portal: every hub the user may see, filtered by hub,
status and event, searched as people are written (the blind index), newest first, in keyset
pages (``?before=<received>,<id>``: never a count, never an OFFSET). The stock admin list stays
for superusers; support and marketers work here (docs/decisions.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.models import Submission, SubmissionStatus
from integrations.selectors import (
    hubs_visible_to,
    person_shown,
    personal_data_hub_ids,
    submissions_search,
)

PAGE_SIZE = 50


class SubmissionFilterForm(forms.Form):
    q = forms.CharField(
        label=gettext_lazy("Find"), required=False, max_length=320,
        help_text=gettext_lazy(
            "A whole email in any case, or the part before its @; a phone in any format; an "
            "external id; a Komo id or submission id."
        ),
    )  # fmt: skip
    hub = forms.ChoiceField(label=gettext_lazy("Hub"), required=False)
    status = forms.ChoiceField(
        label=gettext_lazy("Status"), required=False,
        choices=[("", gettext_lazy("Any status")), *SubmissionStatus.choices],
    )  # fmt: skip
    event = forms.CharField(label=gettext_lazy("Komo event"), required=False, max_length=200)
    before = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, hubs: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hubs = {hub.slug: hub for hub in hubs}
        self.fields["hub"].choices = [("", _("All my hubs")),
                                      *((slug, hub.name) for slug, hub in self.hubs.items())]

    def clean_before(self) -> tuple[datetime, int] | None:
        raw = self.cleaned_data.get("before") or ""
        if not raw:
            return None
        at_text, _sep, pk_text = raw.rpartition(",")
        try:
            at = parse_datetime(at_text.replace(" ", "+")) if at_text else None
        except ValueError:
            at = None
        if at is None or not pk_text.isdigit():
            raise forms.ValidationError(
                _("The page marker “before” must be a time and an id, as the “Older” link "
                  "gives them."))
        return at, int(pk_text)


@login_required
def submission_list(request: HttpRequest) -> HttpResponse:
    hubs = list(hubs_visible_to(request.user).order_by("name"))
    form = SubmissionFilterForm(request.GET or None, hubs=hubs)
    context: dict[str, Any] = {"form": form, "rows": [], "next_url": "", "first_url": ""}
    if form.is_bound and not form.is_valid():
        return render(request, "integrations/submission_list.html", context, status=400)
    data = form.cleaned_data if form.is_bound else {}
    hub = form.hubs.get(data.get("hub") or "")
    queryset = Submission.objects.filter(hub__in=[hub] if hub else hubs).select_related("hub")
    if data.get("status"):
        queryset = queryset.filter(status=data["status"])
    if data.get("event"):
        queryset = queryset.filter(event=data["event"].strip())
    if data.get("q"):
        queryset = submissions_search(queryset=queryset, term=data["q"])
    before = data.get("before")
    if before is not None:
        at, pk = before
        queryset = queryset.filter(Q(received_at__lte=at) & (Q(received_at__lt=at) | Q(pk__lt=pk)))
    rows = list(queryset.order_by("-received_at", "-id")[: PAGE_SIZE + 1])
    more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
    visible = personal_data_hub_ids(request.user)
    for submission in rows:
        submission.shown_person = person_shown(submission, visible)
        submission.personal_data = submission.hub_id in visible
    query = request.GET.copy()
    query.pop("before", None)
    if more:
        last = rows[-1]
        query["before"] = f"{last.received_at.isoformat()},{last.pk}"
        context["next_url"] = f"?{query.urlencode()}"
        query.pop("before")
    if before is not None:
        context["first_url"] = f"?{query.urlencode()}"
    context.update(rows=rows, hub=hub, searched=bool(data.get("q")))
    return render(request, "integrations/submission_list.html", context)
