"""The backfill pages of a hub: upload a CSV export, choose how rows become Komo bodies, preview
the Braze requests, start, and watch (pause, resume, cancel) — docs/backfill.md.

Viewers of a hub see its backfills and their progress; only its editors upload and steer them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from integrations.backfill_csv import CsvError
from integrations.backfill_forms import BackfillChoicesForm, BackfillUploadForm
from integrations.models import Backfill, BackfillStatus, Hub, SubmissionStatus
from integrations.selectors import hubs_visible_to, user_can_edit_hub
from integrations.services import backfill as service
from integrations.views import PreviewResult
from integrations.views import _preview as preview_of

PREVIEW_ROWS = 3
FIRST_ROWS = 5
LISTED = 20


def _hub(request: HttpRequest, slug: str, *, edit: bool = False) -> Hub:
    hub = get_object_or_404(hubs_visible_to(request.user).select_related("connection"), slug=slug)
    if edit and not user_can_edit_hub(request.user, hub):
        raise PermissionDenied
    return hub


def _backfill(hub: Hub, public_id: uuid.UUID) -> Backfill:
    return get_object_or_404(Backfill.objects.select_related("hub"), hub=hub, public_id=public_id)


@login_required
def backfill_list(request: HttpRequest, slug: str) -> HttpResponse:
    hub = _hub(request, slug)
    can_edit = user_can_edit_hub(request.user, hub)
    form = BackfillUploadForm()
    status = 200
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied
        form = BackfillUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                backfill = service.backfill_upload(
                    hub=hub, chunks=upload.chunks(), file_name=upload.name, user=request.user
                )
            except CsvError as problem:
                form.add_error("file", problem.message)
            else:
                return redirect(backfill_url(backfill))
        status = 400
    backfills = [
        service.backfill_settle(b) for b in Backfill.objects.filter(hub=hub)[:LISTED]
    ]
    context = {"hub": hub, "form": form, "can_edit": can_edit, "backfills": backfills}
    return render(request, "integrations/backfill_list.html", context, status=status)


def backfill_url(backfill: Backfill) -> str:
    return reverse("integrations:backfill_detail", args=[backfill.hub.slug, backfill.public_id])


@dataclass(frozen=True)
class RowResult:
    row: int
    reason: str
    preview: PreviewResult | None


@login_required
def backfill_detail(request: HttpRequest, slug: str, public_id: uuid.UUID) -> HttpResponse:
    hub = _hub(request, slug)
    backfill = _backfill(hub, public_id)
    can_edit = user_can_edit_hub(request.user, hub)
    if backfill.status != BackfillStatus.DRAFT:
        backfill = service.backfill_settle(backfill)
        context = {"hub": hub, "backfill": backfill, "can_edit": can_edit,
                   "progress": progress_of(backfill)}  # fmt: skip
        return render(request, "integrations/backfill_progress.html", context)
    form = BackfillChoicesForm(backfill=backfill, known_keys=service.known_keys(hub))
    previews: list[RowResult] = []
    status = 200
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied
        form = BackfillChoicesForm(
            request.POST, backfill=backfill, known_keys=service.known_keys(hub)
        )
        if form.is_valid():
            try:
                service.backfill_configure(
                    backfill, columns=form.columns(), event=form.cleaned_data["event"],
                    id_column=form.cleaned_data["id_column"],
                    time_column=form.cleaned_data["time_column"],
                    time_format=form.cleaned_data["time_format"],
                )  # fmt: skip
            except CsvError as problem:
                form.add_error(None, problem.message)
                status = 400
            else:
                if request.POST.get("action") == "start":
                    service.backfill_start(backfill, user=request.user)
                    messages.success(request, _("The backfill has started."))
                    return redirect(backfill_url(backfill))
                previews = _row_previews(hub, backfill)
        else:
            status = 400
    try:
        first = service.first_rows(backfill, FIRST_ROWS)
    except (OSError, CsvError):
        first = []
    context = {
        "hub": hub, "backfill": backfill, "form": form, "can_edit": can_edit,
        "first_rows": first, "previews": previews,
    }  # fmt: skip
    return render(request, "integrations/backfill_detail.html", context, status=status)


def _row_previews(hub: Hub, backfill: Backfill) -> list[RowResult]:
    """The first rows' Braze requests, exactly as the preview page shows one submission's."""
    results = []
    for row in service.rows_preview(backfill, PREVIEW_ROWS):
        preview = preview_of(hub, row.body) if row.body is not None else None
        results.append(RowResult(row=row.row, reason=row.reason, preview=preview))
    return results


def progress_of(backfill: Backfill) -> dict[str, Any]:
    """The numbers of the progress page (and of its JSON, polled by backfill.js)."""
    counts = service.backfill_counts(backfill)
    pending, delivered = counts[SubmissionStatus.PENDING], counts[SubmissionStatus.DELIVERED]
    held, failed = counts[SubmissionStatus.HELD], counts[SubmissionStatus.FAILED]
    settled = delivered + held + failed + counts[SubmissionStatus.IGNORED]
    total = settled + pending
    reading = backfill.imported_at is None and backfill.is_active
    left = None
    if backfill.started_at and delivered and pending and backfill.status == BackfillStatus.RUNNING:
        elapsed = (timezone.now() - backfill.started_at).total_seconds()
        rate = delivered / max(elapsed, 1.0)
        left = int(pending / rate) if rate > 0 else None
    return {
        "status": backfill.status,
        "status_label": str(backfill.get_status_display()),
        "reading": reading,
        "file_percent": 100 if not reading else min(
            100, int(100 * backfill.bytes_read / backfill.file_size) if backfill.file_size else 0
        ),
        "percent": int(100 * settled / total) if total else (0 if reading else 100),
        "read": backfill.rows_read,
        "queued": backfill.rows_queued,
        "delivered": delivered,
        "pending": pending,
        "held": held,
        "failed": failed,
        "skipped": backfill.rows_skipped,
        "duplicate": backfill.rows_duplicate,
        "bad": backfill.rows_bad,
        "removed": backfill.rows_removed,
        "seconds_left": left,
        "time_left": _duration(left) if left is not None else "",
        "active": backfill.is_active,
    }


def _duration(seconds: int) -> str:
    if seconds < 90:
        return _("about %(n)d s") % {"n": max(seconds, 1)}
    if seconds < 90 * 60:
        return _("about %(n)d min") % {"n": round(seconds / 60)}
    return _("about %(n).1f h") % {"n": seconds / 3600}


@login_required
def backfill_progress(request: HttpRequest, slug: str, public_id: uuid.UUID) -> JsonResponse:
    hub = _hub(request, slug)
    backfill = service.backfill_settle(_backfill(hub, public_id))
    return JsonResponse(progress_of(backfill))


@login_required
def backfill_report(request: HttpRequest, slug: str, public_id: uuid.UUID) -> FileResponse:
    hub = _hub(request, slug)
    backfill = _backfill(hub, public_id)
    path = service.report_path(backfill)
    if not path.exists():
        raise Http404(_("No row of this backfill was unreadable."))
    name = f"backfill-{hub.slug}-{backfill.public_id.hex[:8]}-unreadable-rows.csv"
    return FileResponse(path.open("rb"), as_attachment=True, filename=name,
                        content_type="text/csv; charset=utf-8")  # fmt: skip


@login_required
@require_POST
def backfill_action(request: HttpRequest, slug: str, public_id: uuid.UUID,
                    action: str) -> HttpResponse:  # fmt: skip
    hub = _hub(request, slug, edit=True)
    backfill = _backfill(hub, public_id)
    if action == "pause":
        done = service.backfill_pause(backfill)
        text = _("Paused: none of its rows is sent until you resume it.")
    elif action == "resume":
        done = service.backfill_resume(backfill)
        text = _("Resumed.")
    elif action == "cancel":
        removed = service.backfill_cancel(backfill)
        done = True
        text = _("Cancelled: %(n)d rows that were not sent were removed.") % {"n": removed}
    else:
        raise Http404
    if done:
        messages.success(request, text)
    else:
        messages.warning(request, _("Nothing changed: the backfill is %(status)s.")
                         % {"status": backfill.get_status_display()})  # fmt: skip
    return redirect(backfill_url(backfill))
