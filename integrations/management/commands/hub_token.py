"""``manage.py hub_token SLUG [--grace-hours N]``: issue a new ingest token, print it once."""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.models import Hub
from integrations.services.hubs import TOKEN_GRACE_DEFAULT, hub_token_issue


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        # A property, not gettext_lazy: argparse cannot format a lazy description.
        return _(
            "Issue a new ingest token for a hub and print it once, alone on the last line. "
            "The previous token keeps working for --grace-hours (0: it stops at once)."
        )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("slug")
        parser.add_argument(
            "--grace-hours",
            type=float,
            default=TOKEN_GRACE_DEFAULT.total_seconds() / 3600,
            help=gettext_lazy(
                "Hours the previous token keeps working (default %(default)s; 0 revokes it now)."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        hub = Hub.objects.filter(slug=options["slug"]).first()
        if hub is None:
            raise CommandError(_("No hub with slug %(slug)s.") % {"slug": options["slug"]})
        hours = options["grace_hours"]
        if hours < 0:
            raise CommandError(_("--grace-hours cannot be negative."))
        had_token = bool(hub.ingest_token_hash)
        token = hub_token_issue(hub=hub, grace=timedelta(hours=hours))
        self.stdout.write(self._previous_note(hub, had_token))
        self.stdout.write(
            _("New ingest token for %(slug)s (shown only now, store it safely):")
            % {"slug": hub.slug}
        )
        self.stdout.write(token)

    @staticmethod
    def _previous_note(hub: Hub, had_token: bool) -> str:
        if not had_token:
            return _("The hub had no ingest token before.")
        if hub.previous_token_expires_at is None:
            return _("The previous token stopped working now.")
        return _("The previous token keeps working until %(until)s UTC.") % {
            "until": f"{hub.previous_token_expires_at:%Y-%m-%d %H:%M}"
        }
