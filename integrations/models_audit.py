"""A hub's audit log (one timeline of what happened to it) and the state of its alerts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from integrations.reasons import reason_text


class AuditKind(models.TextChoices):
    CONFIG = "config", _("Configuration")
    TOKEN = "token", _("Webhook token")
    SECRET = "secret", _("Signing secret")
    CONNECTION = "connection", _("Braze connection")
    REDELIVERY = "redelivery", _("Redelivery")
    ALERT = "alert", _("Alert")
    ERASURE = "erasure", _("Erasure")
    BACKFILL = "backfill", _("Backfill")


class AuditEvent(models.Model):
    """One thing that happened to a hub, for its audit log (services/audit.py writes them).

    ``reason`` is a code with parameters (reasons.py), put into words when shown; ``changes``
    holds a configuration change's paths → [before, after] (secrets only as "changed").
    """

    hub = models.ForeignKey(
        "integrations.Hub", on_delete=models.CASCADE, related_name="audit_events"
    )
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=20, choices=AuditKind.choices)
    action = models.CharField(max_length=60)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    actor = models.CharField(max_length=150, blank=True)  # the username then; "" = the system
    reason = models.JSONField(null=True, blank=True)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [
            models.Index(fields=["hub", "-at", "-id"], name="audit_hub_recent"),
            models.Index(fields=["hub", "kind", "-at", "-id"], name="audit_hub_kind_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind} {self.action}"

    @property
    def reason_shown(self) -> str:
        return reason_text(self.reason)


class AlertCause(models.TextChoices):
    PAUSED = "paused", _("Connection paused")
    FAILING = "failing", _("Deliveries failing")
    BACKLOG = "backlog", _("Backlog older than 15 minutes")


class AlertState(models.Model):
    """Whether a hub's alert cause is on, and when its editors were last mailed about it:
    at most one mail per hub and cause per hour (services/alerts.py)."""

    hub = models.ForeignKey(
        "integrations.Hub", on_delete=models.CASCADE, related_name="alert_states"
    )
    cause = models.CharField(max_length=20, choices=AlertCause.choices)
    active = models.BooleanField(default=False)
    since = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_recovery_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hub", "cause"], name="alert_state_hub_cause"),
        ]

    def __str__(self) -> str:
        return f"{self.hub_id}:{self.cause}:{'on' if self.active else 'off'}"
