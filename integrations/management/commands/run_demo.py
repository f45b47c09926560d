"""`make run`: the whole portal on one laptop — web, django-q2 worker and Braze sandbox together."""

from __future__ import annotations

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
        call_command("migrate", interactive=False, verbosity=0)
        manage = [sys.executable, "manage.py"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        processes = [
            subprocess.Popen(
                [*manage, "braze_sandbox", "--port", str(sandbox_port), "--api-key", DEMO_API_KEY],
                env=env,
            ),
            subprocess.Popen([*manage, "runserver", f"127.0.0.1:{port}", "--noreload"], env=env),
            subprocess.Popen([*manage, "qcluster"], env=env),
        ]
        try:
            _wait_for(f"{sandbox_url}/_sandbox/api/stats")
            _wait_for(f"{portal_url}/healthz")
            call_command("demo_setup", sandbox_url=sandbox_url, portal_url=portal_url)
            self.stdout.write("")
            self.stdout.write(_("Portal:         %(url)s/") % {"url": portal_url})
            self.stdout.write(_("Braze sandbox:  %(url)s/_sandbox/") % {"url": sandbox_url})
            self.stdout.write(_("Press Ctrl-C to stop web, worker and sandbox."))
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGINT)
            for process in processes:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()


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
