"""What DRF and the metrics cost the webhook, measured inside one process.

The intake phase measures whole requests through gunicorn, where six workers, PostgreSQL and the
load generator share two cores and a difference of a few per cent is within one run's noise. Here
the runner's own process calls Django's WSGI handler directly (the production middleware and
views, the bench database, Redis), one request after another, and reads its CPU time
(``time.process_time``) per request; gunicorn's share is the same for every endpoint and left
out. Endpoints, interleaved over ``rounds`` rounds (the median round counts):

* the webhook (the DRF view, ``POST /api/v1/hubs/<slug>/submissions``);
* the same work from a plain Django view (``/bench/webhook-plain/<slug>``, tests/bench/views.py):
  the webhook minus this is what DRF costs;
* the webhook again with ``metrics.webhook_observed`` replaced by a no-op: what the metrics cost;
* the INSERT ceiling (``/bench/insert``).
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from tests.bench.report import Row
from tests.bench.workload import new_run_id, sample_payload

REQUESTS = 1500


def _environ(path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1", **headers,
    }  # fmt: skip


def _cpu_per_request(app: Callable, path: str, headers: dict[str, str], count: int) -> float:
    """Microseconds of this process's CPU per request (every answer must be a 202)."""
    run, base = new_run_id(), sample_payload()
    bodies = [
        json.dumps({**base, "id": f"{run}-{n}", "email": f"bench.person{n % 500}@example.com"})
        .encode()
        for n in range(count)
    ]
    statuses: dict[str, int] = {}

    def start_response(status: str, response_headers: list, exc_info: Any = None) -> None:
        statuses[status[:3]] = statuses.get(status[:3], 0) + 1

    started = time.process_time()
    for body in bodies:
        response = app(_environ(path, body, headers), start_response)
        for _chunk in response:
            pass
        response.close()
    spent = time.process_time() - started
    if set(statuses) != {"202"}:
        raise RuntimeError(f"in-process bench: {path} answered {statuses}")
    return spent / count * 1e6


def drf_and_metrics_cost(*, hub_slug: str, token: str, rounds: int = 5) -> list[Row]:
    from django.core.handlers.wsgi import WSGIHandler

    from integrations import metrics

    app = WSGIHandler()
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    observed = metrics.webhook_observed

    def without_metrics(path: str, headers: dict[str, str], count: int) -> float:
        metrics.webhook_observed = lambda *args, **kwargs: None
        try:
            return _cpu_per_request(app, path, headers, count)
        finally:
            metrics.webhook_observed = observed

    hook, plain = f"/api/v1/hubs/{hub_slug}/submissions", f"/bench/webhook-plain/{hub_slug}"
    endpoints: dict[str, Callable[[int], float]] = {
        "webhook": lambda n: _cpu_per_request(app, hook, bearer, n),
        "plain": lambda n: _cpu_per_request(app, plain, bearer, n),
        "no-metrics": lambda n: without_metrics(hook, bearer, n),
        "ceiling": lambda n: _cpu_per_request(app, "/bench/insert", {}, n),
    }
    for measure in endpoints.values():  # warm: imports, caches, prepared statements
        measure(200)
    print(f"bench: in-process CPU per request, {rounds} rounds …", flush=True)
    samples: dict[str, list[float]] = {name: [] for name in endpoints}
    for _ in range(rounds):
        for name, measure in endpoints.items():
            samples[name].append(measure(REQUESTS))
    median = {name: statistics.median(values) for name, values in samples.items()}
    webhook, plain_view = median["webhook"], median["plain"]
    drf, metric = webhook - plain_view, webhook - median["no-metrics"]
    return [
        Row(
            "in process: CPU per request (no gunicorn)",
            f"webhook {webhook:.0f} µs; the same work as a plain view {plain_view:.0f} µs; "
            f"INSERT ceiling {median['ceiling']:.0f} µs",
        ),
        Row(
            "in process: what DRF costs per webhook",
            f"{drf:.0f} µs ({drf / webhook:.0%} of the webhook's CPU in process)",
        ),
        Row(
            "in process: what the metrics cost per webhook",
            f"{metric:.0f} µs (counter + latency histogram, multi-process files)",
        ),
    ]
