"""`make run`: the whole portal on one laptop — web, django-q2 worker and Braze sandbox together."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.demo import DEMO_API_KEY


class Command(BaseCommand):
    help = gettext_lazy(
        "Migrate, load the demo, then run web, worker and Braze sandbox until Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sandbox-port", type=int, default=9400)

    def handle(self, *args, **options):
        port, sandbox_port = options["port"], options["sandbox_port"]
        portal_url = f"http://127.0.0.1:{port}"
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        # A shell's background job starts with SIGINT ignored; make Ctrl-C and SIGTERM both stop us.
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        call_command("migrate", interactive=False, verbosity=0)
        manage = [sys.executable, "manage.py"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        commands = [
            [*manage, "braze_sandbox", "--port", str(sandbox_port), "--api-key", DEMO_API_KEY],
            [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
            [*manage, "qcluster"],
        ]
        # Each child leads its own process group so that stopping reaches qcluster's workers too
        # (a worker may be in the minute-long sweep loop, which would delay a polite stop).
        processes = [subprocess.Popen(c, env=env, start_new_session=True) for c in commands]
        try:
            _wait_for(f"{sandbox_url}/_sandbox/api/stats")
            _wait_for(f"{portal_url}/healthz")
            call_command("demo_setup", sandbox_url=sandbox_url, portal_url=portal_url)
            self.stdout.write("")
            self.stdout.write(_("Portal:         %(url)s/") % {"url": portal_url})
            self.stdout.write(_("Braze sandbox:  %(url)s/_sandbox/") % {"url": sandbox_url})
            # Tooling only: the sandbox's own key, so a new hub can be pointed at the sandbox.
            self.stdout.write(_("Sandbox REST endpoint: %(url)s") % {"url": sandbox_url})
            self.stdout.write(_("Sandbox API key:       %(key)s") % {"key": DEMO_API_KEY})
            self.stdout.write(_("Press Ctrl-C to stop web, worker and sandbox."))
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            _stop(processes)


def _stop(processes: list[subprocess.Popen]) -> None:
    # SIGTERM, not SIGINT: children inherit an ignored SIGINT from a background shell.
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def _interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def _wait_for(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (local URL we started)
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
