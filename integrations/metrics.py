"""Prometheus metrics of the portal: the metric objects and one small function per thing measured.

Multi-process: ``PROMETHEUS_MULTIPROC_DIR`` is set before this module is imported (settings,
``portal/gunicorn.conf.py``), so every gunicorn worker and every django-q2 process writes its own
memory-mapped file there and ``GET /metrics`` (``integrations/metrics_export.py``) adds them up.
Backlog size and age are not recorded here: they are read from the database when scraped.

Labels stay few: ``hub`` is the slug of an *authenticated* hub ("-" before authentication, so a
stranger posting to made-up slugs cannot create series), ``code`` an HTTP status or, when no
answer came, the outcome (``timeout``, ``connection_error``).

Cost on the webhook: one counter and one histogram observation (``webhook_observed``), measured in
docs/scaling.md (*Metrics*).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Histogram, multiprocess

WEBHOOKS = Counter(
    "portal_webhooks", "Webhooks answered, by hub and HTTP status.", ["hub", "code"]
)
WEBHOOK_SECONDS = Histogram(
    "portal_webhook_duration_seconds",
    "Time to answer a webhook, from the URL resolved to the answer built.",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
BRAZE_REQUESTS = Counter(
    "portal_braze_requests", "Requests to Braze, by hub, endpoint kind and answer.",
    ["hub", "kind", "code"],
)
BRAZE_SECONDS = Histogram(
    "portal_braze_request_duration_seconds",
    "Duration of a Braze request, by endpoint kind.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
BRAZE_OBJECTS = Histogram(
    "portal_braze_objects_per_request",
    "Attributes, events and purchases objects in one /users/track request.",
    buckets=(1, 5, 10, 25, 50, 75, 100, 150, 225),
)
BUDGET_WAITS = Counter(
    "portal_rate_budget_waits",
    "Waits for the Braze rate budget: 'sleep' (the worker slept into the next window) or "
    "'postpone' (due submissions were put off until the reset).",
    ["kind"],
)
BUDGET_WAIT_SECONDS = Counter(
    "portal_rate_budget_wait_seconds", "Seconds waited or postponed for the rate budget.", ["kind"]
)
SUBMISSIONS = Counter(
    "portal_submission_outcomes",
    "Submissions after a delivery attempt: delivered, retry (will be tried again), "
    "waiting (connection paused), failed (permanently), held (mapping problem; not sent).",
    ["hub", "outcome"],
)


def _code(status_code: int | None, outcome: str) -> str:
    return str(status_code) if status_code is not None else outcome


_webhook_children: dict[tuple[str, int], Any] = {}


def webhook_observed(hub: str, code: int, seconds: float) -> None:
    # The labelled child is kept per (hub, code): ``labels()`` validates and looks up its
    # labels on every call, a third of this function's cost on the webhook's path.
    child = _webhook_children.get((hub, code))
    if child is None:
        if len(_webhook_children) > 10_000:  # bounded: hubs come and go
            _webhook_children.clear()
        child = _webhook_children[(hub, code)] = WEBHOOKS.labels(hub, str(code))
    child.inc()
    WEBHOOK_SECONDS.observe(seconds)


def braze_request_observed(
    hub: str, result: Any, *, kind: str = "users_track", body: dict | None = None
) -> None:
    """One Braze answer (a ``TrackResult``); ``body``: the /users/track body, to count objects."""
    BRAZE_REQUESTS.labels(hub, kind, _code(result.status_code, str(result.outcome))).inc()
    BRAZE_SECONDS.labels(kind).observe(result.duration_ms / 1000)
    if body is not None:
        BRAZE_OBJECTS.observe(sum(len(v) for v in body.values() if isinstance(v, list)))


def submission_outcomes_observed(hub: str, results: list[str]) -> None:
    """The per-submission results of one attempt (``AttemptItem.result`` values)."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result] = counts.get(result, 0) + 1
    for outcome, count in counts.items():
        SUBMISSIONS.labels(hub, outcome).inc(count)


def submission_held(hub: str) -> None:
    SUBMISSIONS.labels(hub, "held").inc()


def budget_waited(kind: str, seconds: float) -> None:
    BUDGET_WAITS.labels(kind).inc()
    BUDGET_WAIT_SECONDS.labels(kind).inc(max(0.0, seconds))


# --- the multi-process directory ------------------------------------------------------------------


def multiproc_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def multiproc_dir_tidy(path: str | os.PathLike[str]) -> int:
    """Remove the files of processes that no longer run (at the web server's start: their counts
    belong to a previous run). Files of live processes (e.g. a django-q2 cluster on the same
    machine) are kept. Returns how many files were removed."""
    removed = 0
    for file in Path(path).glob("*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            file.unlink(missing_ok=True)
            removed += 1
    return removed


def process_dead(pid: int) -> None:
    """gunicorn's ``child_exit``: a worker's live gauges go with it (its counters stay)."""
    if multiproc_dir():
        multiprocess.mark_process_dead(pid)
