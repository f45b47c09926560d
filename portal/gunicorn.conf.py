"""gunicorn settings for production and ``make bench`` (same file, so the bench measures them).

Chosen by measurement on a 2-core machine (docs/scaling.md): sync workers, three per core. The
webhook is short and mostly CPU; a worker waits only for the database's commit, which a third
worker per core fills (webhook, 32 senders: 3 workers 1,342/s, 4 → 1,474/s, 6 → 1,531/s,
8 → 1,542/s); threads matched the throughput with a worse tail (gthread 4 × 2: p99 53 ms against
25–28 ms). Override with the environment, e.g. ``WEB_CONCURRENCY`` on machines with many cores
(each worker is ~75 MB and one database connection).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# This file is read before the app is imported: make the project importable, and give
# prometheus_client its multi-process directory before anything imports it (the same default
# as portal/settings.py).
_BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_BASE_DIR))
_VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR") or _BASE_DIR / "var")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_VAR_DIR / "metrics"))
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

from gunicorn.glogging import Logger as _GunicornLogger  # noqa: E402

from integrations import logging as portal_logging  # noqa: E402 (no Django in it)

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "sync")
workers = int(os.environ.get("WEB_CONCURRENCY") or 3 * (os.cpu_count() or 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
# A launch-day spike queues in the kernel, not as refused connections.
backlog = int(os.environ.get("GUNICORN_BACKLOG", "2048"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# Import Django once in the master and fork: faster start, shared pages (less memory per worker).
preload_app = True
# Bounded memory over long uptimes: recycle a worker after this many requests (jittered).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max(1, max_requests // 10) if max_requests else 0
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "warning")


def when_ready(server: object) -> None:
    """In the master, after the app is loaded and before any worker forks: do the lazy work
    every worker would otherwise repeat on its first requests (imports, URL resolver), then
    freeze the heap so the workers' garbage collector never walks (and un-shares) these pages."""
    import contextlib
    import gc
    import importlib

    from django.urls import get_resolver

    for module in ("redis", "django_q.brokers.redis_broker", "django_q.brokers.orm"):
        with contextlib.suppress(ImportError):  # e.g. no Redis on the embedded default
            importlib.import_module(module)
    get_resolver().resolve("/healthz")
    gc.collect()
    gc.freeze()


def on_starting(server: object) -> None:
    """In the master, before anything is counted: drop metric files of processes that no longer
    run (a previous start); a django-q2 cluster's live files stay."""
    from integrations.metrics import multiproc_dir_tidy

    multiproc_dir_tidy(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def child_exit(server: object, worker: object) -> None:
    from integrations.metrics import process_dead

    process_dead(worker.pid)  # type: ignore[attr-defined]


class PortalLogger(_GunicornLogger):
    """gunicorn's own lines (errors, and the access log when GUNICORN_ACCESSLOG is set) in the
    portal's format (LOG_FORMAT), scrubbed of tokens and secrets like every other line."""

    def setup(self, cfg: object) -> None:
        super().setup(cfg)
        portal_logging.install_redaction()
        log_format = os.environ.get("LOG_FORMAT", "plain")
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.addFilter(portal_logging.RedactSecretsFilter())
                handler.addFilter(portal_logging.RequestContextFilter())
                if log_format == "json":
                    handler.setFormatter(portal_logging.formatter("json"))
                elif log is self.error_log:
                    handler.setFormatter(portal_logging.formatter("plain"))


logger_class = PortalLogger
