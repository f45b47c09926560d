"""Hourly counts per hub for the dashboard's charts, kept off the webhook's path.

One row per hub, hour (UTC, truncated) and source. Three time axes share a row, each documented
on its columns: what was *received* in the hour (split by the status it has now), what was
*delivered* in the hour (and how long it had waited), and what Braze *answered* in the hour.
``services.hub_stats`` recomputes rows from bounded index range scans once a minute; the charts
read at most 48 + 30 × 24 rows per hub and source (docs/decisions.md, "Charts").
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

# Upper bounds (seconds) of the delivery-delay histogram; the last bucket is "longer". Hourly
# histograms add up, so a day's (or any range's) percentiles come from the same rows.
DELAY_BUCKETS_S = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900,
                   1800, 3600, 7200, 21600, 43200, 86400)


class StatsSource(models.TextChoices):
    LIVE = "live", _("Live")
    BACKFILL = "backfill", _("Backfill")


class HubHourlyStats(models.Model):
    hub = models.ForeignKey("integrations.Hub", on_delete=models.CASCADE,
                            related_name="hourly_stats",
                            db_index=False)  # the unique index below starts with hub
    hour = models.DateTimeField()  # start of the hour, UTC
    source = models.CharField(max_length=10, choices=StatsSource.choices,
                              default=StatsSource.LIVE)
    # Received in this hour, by the status each submission has now.
    received = models.PositiveIntegerField(default=0)
    received_delivered = models.PositiveIntegerField(default=0)
    received_pending = models.PositiveIntegerField(default=0)
    received_held = models.PositiveIntegerField(default=0)
    received_failed = models.PositiveIntegerField(default=0)
    received_ignored = models.PositiveIntegerField(default=0)
    # Delivered in this hour (delivered_at); delay = delivered_at − received_at, as counts per
    # DELAY_BUCKETS_S (+ one for longer): percentiles of any range are read from their sum.
    delivered = models.PositiveIntegerField(default=0)
    delay_histogram = models.JSONField(default=list, blank=True)
    # Braze's answers to requests started in this hour (by HTTP status; "network": no answer).
    answers_2xx = models.PositiveIntegerField(default=0)
    answers_4xx = models.PositiveIntegerField(default=0)
    answers_429 = models.PositiveIntegerField(default=0)
    answers_5xx = models.PositiveIntegerField(default=0)
    answers_network = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("hourly hub statistics")
        verbose_name_plural = _("hourly hub statistics")
        constraints = [
            # Also the charts' index: hub = X AND source = ANY(…) AND hour >= Y.
            models.UniqueConstraint(fields=["hub", "source", "hour"], name="hub_stats_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.hub_id} {self.hour:%Y-%m-%d %H}:00 {self.source}"
