"""``manage.py braze_sandbox``: run the local Braze look-alike until Ctrl-C (or SIGTERM)."""

from __future__ import annotations

import signal
import threading
import time
from argparse import ArgumentParser
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.braze_sandbox import BrazeSandbox, SandboxConfigError

# Settings passed to BrazeSandbox only when given on the command line, so its defaults stay the
# single source of truth.
_TUNABLES = (
    "rate_limit",
    "rate_window",
    "fail_rate",
    "latency_ms",
    "latency_jitter_ms",
    "drop_rate",
    "array_limit",
    "max_updates_per_request",
)


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        # A property, not gettext_lazy: argparse cannot format a lazy description.
        return _(
            "Run a local Braze REST look-alike (/users/track, transactional sends) with an "
            "inspection page at /_sandbox/."
        )

    # The sandbox needs no database and must start even while the project has check errors.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help=gettext_lazy("Address to bind."))
        parser.add_argument(
            "--port", type=int, default=9400, help=gettext_lazy("Port to bind (0: any free port).")
        )
        parser.add_argument(
            "--api-key",
            dest="api_keys",
            action="append",
            default=[],
            metavar="KEY",
            help=gettext_lazy("An API key to accept (repeatable)."),
        )
        parser.add_argument(
            "--forbidden-key",
            dest="forbidden_keys",
            action="append",
            default=[],
            metavar="KEY",
            help=gettext_lazy("A key answered with 403 Access Denied (repeatable)."),
        )
        parser.add_argument(
            "--accept-any-key",
            action="store_true",
            help=gettext_lazy("Accept every well-formed key that is not forbidden."),
        )
        parser.add_argument(
            "--rate-limit", type=int, help=gettext_lazy("Requests per window (default 3000).")
        )
        parser.add_argument(
            "--rate-window", type=float, help=gettext_lazy("Window length in seconds (default 3).")
        )
        parser.add_argument(
            "--fail-rate",
            type=float,
            help=gettext_lazy("Share of requests (0 to 1) answered with 500, 502 or 503."),
        )
        parser.add_argument(
            "--latency-ms", type=float, help=gettext_lazy("Delay before each answer.")
        )
        parser.add_argument(
            "--latency-jitter-ms",
            type=float,
            help=gettext_lazy("Random extra delay, up to this many milliseconds."),
        )
        parser.add_argument(
            "--drop-rate",
            type=float,
            help=gettext_lazy("Share of requests (0 to 1) whose connection is closed unanswered."),
        )
        parser.add_argument(
            "--array-limit",
            type=int,
            help=gettext_lazy("Most items kept in an array attribute (default 25, at most 100)."),
        )
        parser.add_argument(
            "--max-updates-per-request",
            type=int,
            help=gettext_lazy(
                "Refuse requests with more objects in total (Braze MAU package: 50)."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        sandbox = self._sandbox(options)
        try:
            sandbox.start()
        except OSError as exc:
            raise CommandError(
                _("Cannot listen on %(host)s:%(port)s: %(error)s")
                % {"host": options["host"], "port": options["port"], "error": exc}
            ) from exc
        self._announce(sandbox, options)
        self._wait_for_interrupt(sandbox)

    def _sandbox(self, options: dict[str, Any]) -> BrazeSandbox:
        tunables = {name: options[name] for name in _TUNABLES if options.get(name) is not None}
        try:
            return BrazeSandbox(
                host=options["host"],
                port=options["port"],
                api_keys=options["api_keys"],
                forbidden_keys=options["forbidden_keys"],
                accept_any_key=options["accept_any_key"],
                **tunables,
            )
        except SandboxConfigError as exc:
            raise CommandError(str(exc)) from exc

    def _announce(self, sandbox: BrazeSandbox, options: dict[str, Any]) -> None:
        self.stdout.write(_("Braze sandbox listening on %(url)s") % {"url": sandbox.url})
        self.stdout.write(
            _("Requests and profiles: %(url)s/_sandbox/ (Ctrl-C to stop)") % {"url": sandbox.url}
        )
        if not options["api_keys"] and not options["accept_any_key"]:
            self.stderr.write(
                _(
                    "No --api-key given: every request will be answered 401 "
                    "(or use --accept-any-key)."
                )
            )
        self.stdout.flush()

    def _wait_for_interrupt(self, sandbox: BrazeSandbox) -> None:
        if threading.current_thread() is threading.main_thread():
            # SIGINT too: a shell starts background jobs with SIGINT ignored, and Ctrl-C in a
            # `make run` terminal must still stop the sandbox.
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, _raise_keyboard_interrupt)
        try:
            while sandbox.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stdout.write(_("Stopping the Braze sandbox."))
        finally:
            sandbox.stop()


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
