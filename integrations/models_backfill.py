"""A CSV export of a hub's history, read into submissions of the hub (services/backfill.py)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class BackfillStatus(models.TextChoices):
    DRAFT = "draft", _("Not started")
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused")
    CANCELLED = "cancelled", _("Cancelled")
    FINISHED = "finished", _("Finished")
    FAILED = "failed", _("Stopped: the file could not be read")


class Backfill(models.Model):
    """One CSV export of a hub's history, read into submissions of the hub (docs/backfill.md).

    The file is kept under ``VAR_DIR/backfills/`` while the backfill exists (``stored_name``);
    rows that could not be read go to a report file beside it (row number and reason only).
    Counters are written by the import as it streams; delivery counts come from the
    submissions themselves (``Submission.backfill``).
    """

    hub = models.ForeignKey("integrations.Hub", on_delete=models.CASCADE, related_name="backfills")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    started_by = models.CharField(_("started by"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("uploaded"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    imported_at = models.DateTimeField(_("file read"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=BackfillStatus.choices, default=BackfillStatus.DRAFT
    )
    error = models.TextField(_("error"), blank=True)
    file_name = models.CharField(_("file"), max_length=255)
    file_size = models.BigIntegerField(_("size in bytes"), default=0)
    # A file name under VAR_DIR/backfills/ (uploads), or the absolute path the command was given.
    stored_name = models.CharField(max_length=1000, editable=False)
    delimiter = models.CharField(max_length=1, default=",")
    header = models.JSONField(default=list)
    columns = models.JSONField(_("column → Komo key"), default=dict, blank=True)
    event = models.CharField(_("event kind"), max_length=200, default="CompetitionEntrySuccess")
    id_column = models.CharField(_("unique id column"), max_length=200, blank=True)
    time_column = models.CharField(_("time column"), max_length=200, blank=True)
    time_format = models.CharField(_("time format"), max_length=100, default="iso")
    bytes_read = models.BigIntegerField(default=0)
    rows_read = models.PositiveIntegerField(_("rows read"), default=0)
    rows_queued = models.PositiveIntegerField(_("queued"), default=0)
    rows_duplicate = models.PositiveIntegerField(_("already there"), default=0)
    rows_bad = models.PositiveIntegerField(_("unreadable rows"), default=0)
    rows_removed = models.PositiveIntegerField(_("removed on cancel"), default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("backfill")
        verbose_name_plural = _("backfills")

    def __str__(self) -> str:
        return f"{self.hub_id}: {self.file_name} ({self.status})"

    @property
    def rows_skipped(self) -> int:
        return self.rows_duplicate + self.rows_bad

    @property
    def is_active(self) -> bool:
        return self.status in (BackfillStatus.RUNNING, BackfillStatus.PAUSED)
