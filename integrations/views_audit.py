"""A hub's audit log: the timeline page (filter by kind and time, keyset pages) and its CSV.

Any member of the hub may read it: it holds who changed what and what happened, never personal
data (an erasure names the kind of identifier, not the person) nor secrets.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.alert_words import alert_body, alert_subject
from integrations.change_words import action_words, change_lines
from integrations.health import Cause, cause_sentence
from integrations.models import AuditEvent, AuditKind, Hub
from integrations.selectors import hubs_visible_to
from integrations.selectors_audit import audit_events, audit_page, audit_rows


class AuditFilterForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), required=False,
                             choices=[("", gettext_lazy("Everything")), *AuditKind.choices])
    since = forms.DateField(label=gettext_lazy("From"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=gettext_lazy("Until (inclusive)"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))
    before = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_before(self) -> tuple[datetime, int] | None:
        raw = self.cleaned_data.get("before") or ""
        if not raw:
            return None
        at_text, _sep, pk_text = raw.rpartition(",")
        at = parse_datetime(at_text.replace(" ", "+")) if at_text else None
        if at is None or not pk_text.isdigit():
            raise forms.ValidationError(
                _("The page marker “before” must be a time and an id, as the “Older” link "
                  "gives them."))
        return at, int(pk_text)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise forms.ValidationError(_("“From” must not be after “Until”."))
        return data


def _day_start(day: Any) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


@login_required
def hub_audit(request: HttpRequest, slug: str) -> HttpResponse:
    hub = get_object_or_404(hubs_visible_to(request.user), slug=slug)
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        context = {"hub": hub, "form": form, "rows": [], "next_url": "", "csv_url": ""}
        return render(request, "integrations/hub_audit.html", context, status=400)
    data = form.cleaned_data if form.is_bound else {}
    queryset = _filtered(hub, data)
    page = audit_page(queryset, before=data.get("before"))
    query = request.GET.copy()
    query.pop("before", None)
    next_url = ""
    if page.next_before:
        query["before"] = page.next_before
        next_url = f"?{query.urlencode()}"
        query.pop("before")
    context = {
        "hub": hub,
        "form": form,
        "rows": [_row(hub, event) for event in page.events],
        "next_url": next_url,
        "first_url": f"?{query.urlencode()}" if data.get("before") else "",
        "csv_url": f"{reverse('integrations:hub_audit_csv', args=[hub.slug])}?{query.urlencode()}",
    }
    return render(request, "integrations/hub_audit.html", context)


def _filtered(hub: Hub, data: dict[str, Any]):
    until = data.get("until")
    return audit_events(hub=hub, kind=data.get("kind") or "", since=_day_start(data.get("since")),
                        until=_day_start(until + timedelta(days=1)) if until else None)


def _row(hub: Hub, event: AuditEvent) -> dict[str, Any]:
    row = {"event": event, "description": event.reason_shown, "lines": change_lines(event.changes),
           "mail": None}
    if event.kind == AuditKind.ALERT and isinstance(event.reason, dict):
        url = reverse("integrations:hub_dashboard", args=[hub.slug])
        row["mail"] = alert_mail_shown(event.reason.get("params") or {}, url=url)
    return row


def alert_mail_shown(params: dict, *, url: str) -> tuple[str, str]:
    """An alert as recorded in the audit log → (subject, body) in the reader's language."""
    cause = str(params.get("cause", ""))
    recovered = bool(params.get("recovered"))
    hub_name = str(params.get("hub", ""))
    stored = params.get("sentence") or {}
    sentence = ""
    if isinstance(stored, dict) and stored.get("code"):
        sentence = cause_sentence(Cause(code=str(stored["code"]),
                                        level=str(stored.get("level", "")),
                                        params=dict(stored.get("params") or {})))
    return (alert_subject(cause, recovered=recovered, hub_name=hub_name),
            alert_body(cause=cause, recovered=recovered, hub_name=hub_name, sentence=sentence,
                       url=url))


class _Echo:
    def write(self, value: str) -> str:
        return value


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


@login_required
def hub_audit_csv(request: HttpRequest, slug: str) -> HttpResponse:
    hub = get_object_or_404(hubs_visible_to(request.user), slug=slug)
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return HttpResponse(
            "; ".join(str(e) for errors in form.errors.values() for e in errors),
            status=400, content_type="text/plain; charset=utf-8",
        )
    data = form.cleaned_data if form.is_bound else {}
    queryset = _filtered(hub, data)
    kinds = dict(AuditKind.choices)

    def lines() -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield "\ufeff" + writer.writerow(
            [_("When (UTC)"), _("Kind"), _("What"), _("Who"), _("Description"), _("Changed")])
        for event in audit_rows(queryset):
            yield writer.writerow([_cell(value) for value in (
                event.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                kinds.get(event.kind, event.kind), action_words(event.action),
                event.actor or _("system"),
                event.reason_shown, "; ".join(change_lines(event.changes)),
            )])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{hub.slug}-audit-log.csv"'
    return response
