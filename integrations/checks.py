"""System checks (``manage.py check``): production setups that would lose or delay work, each
warning with its fix. Only with ``DEBUG`` off: the embedded default is one process on purpose.
What each warns about is explained in docs/scaling.md."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register

# Mirrors integrations.services.delivery.LINGER_MARGIN_SECONDS (not imported: checks load early).
LINGER_MARGIN_SECONDS = 0.05


def _production() -> bool:
    return not settings.DEBUG


@register()
def several_web_processes_without_redis(app_configs, **kwargs) -> list[Warning]:
    if not _production() or settings.REDIS_URL or settings.WEB_CONCURRENCY <= 1:
        return []
    return [
        Warning(
            f"{settings.WEB_CONCURRENCY} web processes (WEB_CONCURRENCY) without REDIS_URL: each "
            "process counts the per-hub intake limit on its own (the limit multiplies), sign-in "
            "throttling and the Braze rate budget go through the database (under locks).",
            hint="Set REDIS_URL on every web and worker machine, or WEB_CONCURRENCY=1.",
            id="portal.W001",
        )
    ]


@register()
def orm_broker_beside_redis(app_configs, **kwargs) -> list[Warning]:
    if not _production() or not settings.REDIS_URL or settings.Q_BROKER != "orm":
        return []
    return [
        Warning(
            "Q_BROKER=orm while REDIS_URL is set: tasks queue in the database (polled every "
            "Q_POLL seconds, a write per task) while the delivery flags say 'queued' in Redis; a "
            "machine using the other broker never sees these tasks, and their hubs wait for "
            "the sweep.",
            hint="Remove Q_BROKER (Redis is then the broker) on every machine.",
            id="portal.W002",
        )
    ]


@register()
def kept_connections_through_transaction_pooling(app_configs, **kwargs) -> list[Warning]:
    database = settings.DATABASES["default"]
    if (
        not _production()
        or settings.PGBOUNCER_POOL_MODE != "transaction"
        or database.get("CONN_MAX_AGE") == 0
        or database.get("OPTIONS", {}).get("prepare_threshold", 5) is None
    ):
        return []
    return [
        Warning(
            "CONN_MAX_AGE keeps connections through PgBouncer in transaction mode: psycopg "
            "prepares the webhook's INSERT after a few runs on a kept connection, and the next "
            "transaction may land on a server connection without it (\"prepared statement does "
            "not exist\": webhooks answered 503).",
            hint="Set CONN_MAX_AGE=0, or use PgBouncer 1.21+ with max_prepared_statements set "
            "and silence this check (SILENCED_SYSTEM_CHECKS), or pool in session mode.",
            id="portal.W003",
        )
    ]


@register()
def coalescing_longer_than_linger(app_configs, **kwargs) -> list[Warning]:
    linger = settings.DELIVERY_LINGER_SECONDS
    interval = settings.WEBHOOK_COALESCE_SECONDS
    if not _production() or linger is None or interval <= 0:
        return []
    if linger >= interval + LINGER_MARGIN_SECONDS:
        return []
    return [
        Warning(
            f"WEBHOOK_COALESCE_SECONDS ({interval:g}) is above the delivery linger "
            f"(DELIVERY_LINGER_SECONDS {linger:g}, less a {LINGER_MARGIN_SECONDS:g} s margin): a "
            "webhook that skipped its delivery signal can be left to the sweep, up to "
            "SWEEP_INTERVAL_SECONDS late.",
            hint=f"Set DELIVERY_LINGER_SECONDS to at least {interval + LINGER_MARGIN_SECONDS:g} "
            "(on every worker machine) or unset it.",
            id="portal.W004",
        )
    ]
