"""Erasing one person in the browser: form → confirmation with counts per hub (never the data)
→ erase → result. For support and marketers of the hubs concerned (roles that may see personal
data, ``selectors.hubs_with_personal_data``); superusers for every hub.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

from integrations.erasure_forms import ErasureForm
from integrations.models import ErasureRecord, Submission
from integrations.selectors import hubs_with_personal_data
from integrations.services.access import access_record
from integrations.services.erasure import ErasureInputError, erasure_preview, person_erase


def _hubs(request: HttpRequest) -> Any:
    hubs = hubs_with_personal_data(request.user)
    if not request.user.is_active or not hubs.exists():
        raise PermissionDenied(_("Erasing people needs a support or editor role on a hub."))
    return hubs


def _initial(request: HttpRequest, hubs: Any) -> dict[str, Any]:
    """Prefilled from ``?submission=`` (its person: personal data shown, so recorded) or
    ``?hub=``."""
    initial: dict[str, Any] = {}
    hub_slug = request.GET.get("hub", "")
    if hub_slug and hubs.filter(slug=hub_slug).exists():
        initial["hub"] = hub_slug
    try:
        public_id = uuid.UUID(request.GET.get("submission", ""))
    except ValueError:
        return initial
    submission = Submission.objects.select_related("hub").filter(
        public_id=public_id, hub__in=hubs
    ).first()
    if submission is None:
        return initial
    person = submission.person
    kind = "email" if person.email else "phone" if person.phone else "external_id"
    value = person.email or person.phone or person.external_id
    if value:
        access_record(user=request.user, submission=submission, page="erasure")
        initial.update(kind=kind, value=value, hub=submission.hub.slug)
    return initial


def _no_store(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)  # the identifier is in the page: never cached
    return response


@login_required
def person_erase_view(request: HttpRequest) -> HttpResponse:
    hubs = _hubs(request)
    if request.method != "POST":
        form = ErasureForm(initial=_initial(request, hubs), hubs=hubs)
        return _no_store(render(request, "integrations/erasure_form.html", {"form": form}))
    form = ErasureForm(request.POST, hubs=hubs)
    if not form.is_valid():
        return _no_store(render(request, "integrations/erasure_form.html", {"form": form},
                                status=400))
    data = form.cleaned_data
    scope = [data["hub"]] if data["hub"] else list(hubs)
    try:
        if request.POST.get("confirm") != "erase":
            preview = erasure_preview(data["kind"], data["value"], scope)
            context = {"form": form, "preview": preview, "scope": scope,
                       "total": sum(c.submissions for c in preview.values())}
            return _no_store(render(request, "integrations/erasure_confirm.html", context))
        record = person_erase(data["kind"], data["value"], scope, user=request.user,
                              braze=data["braze"])
    except ErasureInputError as exc:
        form.add_error("value", str(exc))
        return _no_store(render(request, "integrations/erasure_form.html", {"form": form},
                                status=400))
    return redirect("integrations:erasure_result", pk=record.pk)


@login_required
def erasure_result(request: HttpRequest, pk: int) -> HttpResponse:
    record = get_object_or_404(ErasureRecord, pk=pk)
    if record.user_id != request.user.pk and not request.user.is_superuser:
        raise PermissionDenied
    rows = [(slug, counts) for slug, counts in (record.counts or {}).items()]
    return render(request, "integrations/erasure_result.html", {"record": record, "rows": rows})
