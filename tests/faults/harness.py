"""Processes, clocks and counters for the fault scenarios (loopback only, everything bounded)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import requests
from django.conf import settings
from django.db import connection
from django.db.models import F, Max, Min
from django.utils import timezone

from integrations import blind_index
from integrations.models import Hub, Submission, SubmissionStatus

BASE_DIR = Path(__file__).resolve().parents[2]


# --- environment --------------------------------------------------------------------------------


def database_url() -> str:
    """The URL of the database this process uses (the test database under pytest)."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    """Environment for a web or worker subprocess sharing this process's database and Redis."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings_test",
        "Q_SYNC": "false",
        "DATABASE_URL": database_url(),
        "BRAZE_EXTRA_ENDPOINTS": "http://127.0.0.1:",
        "DELIVERY_CLAIM_SECONDS": os.environ.get("DELIVERY_CLAIM_SECONDS", "5"),
        "SWEEP_INTERVAL_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], seconds: float, *, every: float = 0.2,
               tick: Callable[[], Any] | None = None) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass; ``tick`` runs between polls."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        if tick is not None:
            tick()
        time.sleep(every)
    return condition()


# --- processes ----------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self, tail: int = 4000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-tail:]

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def start(name: str, args: list[str], env: Mapping[str, str]) -> Proc:
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(
        args, cwd=BASE_DIR, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Proc(name, process, log)


def qcluster_start(env: Mapping[str, str], *, workers: int, probe_dir: Path | None = None,
                   name: str = "qcluster") -> Proc:
    extra = {"Q_WORKERS": str(workers)}
    if probe_dir is not None:
        extra["FAULTS_PROBE_DIR"] = str(probe_dir)
    args = [sys.executable, "-m", "tests.faults.probe", "qcluster"]
    return start(name, args, {**env, **extra})


def gunicorn_start(env: Mapping[str, str], *, port: int, threads: int = 4,
                   name: str = "web") -> Proc:
    args = [
        sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--bind",
        f"127.0.0.1:{port}", "--workers", "1", "--threads", str(threads), "--timeout", "60",
        "--access-logfile", "-",
    ]
    proc = start(name, args, env)
    url = f"http://127.0.0.1:{port}/healthz"
    if not wait_until(lambda: _answers(url), 30, every=0.2):
        proc.stop()
        raise RuntimeError(f"{name} did not start:\n{proc.output()}")
    return proc


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 500
    except requests.RequestException:
        return False


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def busy_workers(probe_dir: Path, cluster: Proc) -> list[int]:
    """Workers of ``cluster`` that are in the middle of a batch right now."""
    below = descendants(cluster.pid)
    pids = []
    for marker in probe_dir.iterdir():
        with contextlib.suppress(ValueError):
            pid = int(marker.name)
            if pid in below:
                pids.append(pid)
    return pids


def kill_mid_batch(probe_dir: Path, cluster: Proc, rng: random.Random) -> int | None:
    """SIGKILL one worker that is in the middle of a batch; its pid, or None if none was."""
    busy = busy_workers(probe_dir, cluster)
    if not busy:
        return None
    victim = rng.choice(busy)
    time.sleep(rng.uniform(0, 0.03))  # somewhere inside the batch, usually the HTTP request
    if not (probe_dir / str(victim)).exists():
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(victim, signal.SIGKILL)
        (probe_dir / str(victim)).unlink(missing_ok=True)
        return victim
    return None


# --- the simulated clock ------------------------------------------------------------------------


def clock_advance(hub: Hub, seconds: float | None = None, *, every: bool = False) -> float:
    """Move the hub's delivery schedule ``seconds`` into the past, as if that much time had
    passed; by default until the next pending submission is due (``every``: until all pending
    ones are, retry jitter included). Returns the seconds moved."""
    pending = Submission.objects.filter(hub=hub, status=SubmissionStatus.PENDING)
    if seconds is None:
        moment = pending.aggregate(
            moment=Max("next_attempt_at") if every else Min("next_attempt_at")
        )["moment"]
        if moment is None:
            return 0.0
        seconds = max(0.0, (moment - timezone.now()).total_seconds()) + 0.001
    if seconds <= 0:
        return 0.0
    shift = timedelta(seconds=seconds)
    pending.filter(next_attempt_at__isnull=False).update(
        next_attempt_at=F("next_attempt_at") - shift
    )
    pending.filter(claimed_until__isnull=False).update(claimed_until=F("claimed_until") - shift)
    return seconds


# --- what Braze received -------------------------------------------------------------------------


def braze_accepted(requests_log: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """How often the sandbox applied an attributes object per alias name (201 answers only,
    objects listed in ``errors[]`` not counted)."""
    accepted: Counter[str] = Counter()
    for entry in requests_log:
        body, response = entry.get("body"), entry.get("response")
        if entry.get("status") != 201 or not isinstance(body, dict):
            continue
        refused = {
            error.get("index") for error in (response or {}).get("errors", [])
            if error.get("input_array") == "attributes"
        }
        for index, item in enumerate(body.get("attributes", [])):
            alias = (item.get("user_alias") or {}).get("alias_name")
            if alias and index not in refused:
                accepted[alias] += 1
    return accepted


def accepted_rate(requests_log: Iterable[Mapping[str, Any]], window: float
                  ) -> tuple[int, float]:
    """The most requests Braze accepted (201) within any ``window`` seconds, and the average
    accepted per second from the first to the last."""
    times = sorted(
        datetime.fromisoformat(entry["time"]).timestamp()
        for entry in requests_log if entry.get("status") == 201
    )
    if not times:
        return 0, 0.0
    peak, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        peak = max(peak, end - start + 1)
    span = max(window, times[-1] - times[0])
    return peak, len(times) / span


def requests_by_status(requests_log: Iterable[Mapping[str, Any]]) -> Counter[str]:
    return Counter(
        str(entry["status"]) if entry.get("status") is not None else "dropped"
        for entry in requests_log
    )


@dataclass
class Outcome:
    sent: int
    delivered: int
    lost: int
    duplicated: int
    failed: int
    pending: int


def outcome(hub: Hub, emails: Iterable[str], requests_log: list[dict[str, Any]]) -> Outcome:
    """Compare what the webhook acknowledged with the database and with what Braze applied.

    Lost: acknowledged but missing from the database, or neither applied by Braze nor failed
    and listed for support. Duplicated: applied by Braze more than once."""
    emails = {email.lower() for email in emails}
    accepted = braze_accepted(requests_log)
    by_hash = dict(
        Submission.objects.filter(hub=hub).values_list("email_hash", "status")
    )  # personal data is encrypted at rest: match people by their blind-index hash
    rows = {
        email: by_hash[digest]
        for email in emails
        if (digest := blind_index.blind_hash("email", email)) in by_hash
    }
    missing = {email for email in emails if email not in rows}
    unapplied = {
        email for email in emails - missing
        if accepted[email] == 0 and rows[email] != SubmissionStatus.FAILED
    }
    statuses = Counter(rows[email] for email in emails - missing)
    return Outcome(
        sent=len(emails),
        delivered=sum(1 for email in emails if accepted[email] > 0),
        lost=len(missing | unapplied),
        duplicated=sum(accepted[email] - 1 for email in emails if accepted[email] > 1),
        failed=statuses[SubmissionStatus.FAILED],
        pending=statuses[SubmissionStatus.PENDING],
    )


# --- a database connection that can be cut ----------------------------------------------------


class TcpProxy:
    """Loopback TCP forwarder to ``upstream``; ``cut()`` closes the listener and every open
    connection (the database is gone), ``restore()`` listens again on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        for sock in [listener, *sockets]:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._sockets |= {client, server}
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
