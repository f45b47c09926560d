"""``GET /metrics``: every process's metrics (``integrations/metrics.py``) plus the backlog per
hub, read from the database when scraped, in Prometheus' text format.

Closed unless configured: ``METRICS_TOKEN`` (scraper sends ``Authorization: Bearer <token>``)
and/or ``METRICS_ALLOWED_ADDRESSES`` (addresses or networks matched against ``REMOTE_ADDR``).
With neither set the path answers 404.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator
from functools import lru_cache

from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from integrations.models import Hub, Submission, SubmissionStatus


class BacklogCollector:
    """Pending submissions per hub and how long the oldest due one has waited: one grouped query
    over the pending rows (the partial index ``submission_due``) and the hubs' slugs."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        rows = (
            Submission.objects.filter(status=SubmissionStatus.PENDING)
            .values("hub_id")
            .annotate(pending=Count("id"), oldest=Min("next_attempt_at"))
            .order_by()
        )
        by_hub = {row["hub_id"]: row for row in rows}
        pending = GaugeMetricFamily(
            "portal_backlog_submissions", "Pending submissions (due now or later), by hub.",
            labels=["hub"],
        )
        age = GaugeMetricFamily(
            "portal_backlog_oldest_due_age_seconds",
            "How long the oldest due pending submission has been due (0: none due), by hub.",
            labels=["hub"],
        )
        for hub_id, slug in Hub.objects.values_list("id", "slug"):
            row = by_hub.get(hub_id)
            oldest = row["oldest"] if row else None
            pending.add_metric([slug], row["pending"] if row else 0)
            age.add_metric([slug], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        yield pending
        yield age


@lru_cache(maxsize=8)
def _networks(addresses: tuple[str, ...]) -> tuple[ipaddress._BaseNetwork, ...]:
    return tuple(ipaddress.ip_network(a.strip(), strict=False) for a in addresses if a.strip())


def _address_allowed(request: HttpRequest) -> bool:
    allowed = _networks(tuple(settings.METRICS_ALLOWED_ADDRESSES))
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in allowed)


def _token_allowed(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    scheme, _space, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), expected.encode()
    )


def _text(status: int, message: str, **headers: str) -> HttpResponse:
    return HttpResponse(
        message, status=status, content_type="text/plain; charset=utf-8", headers=headers or None
    )


def registry() -> CollectorRegistry:
    """Every process's metrics (the multi-process directory, which settings always set) and the
    backlog."""
    collected = CollectorRegistry()
    MultiProcessCollector(collected)
    collected.register(BacklogCollector())
    return collected


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_TOKEN and not settings.METRICS_ALLOWED_ADDRESSES:
        return _text(404, _("Metrics are switched off (set METRICS_TOKEN or "
                            "METRICS_ALLOWED_ADDRESSES)."))
    if not (_token_allowed(request) or _address_allowed(request)):
        return _text(
            403, _("Metrics need the metrics bearer token or an allowed address."),
            **({"WWW-Authenticate": "Bearer"} if settings.METRICS_TOKEN else {}),
        )
    # The text format the scraper asks for (Accept): Prometheus' or OpenMetrics.
    encoder, content_type = choose_encoder(request.META.get("HTTP_ACCEPT", ""))
    return HttpResponse(encoder(registry()), content_type=content_type)
