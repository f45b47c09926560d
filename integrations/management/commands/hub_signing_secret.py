"""``manage.py hub_signing_secret SLUG [--keep-previous | --drop-previous] [--require]``: issue a
webhook signing secret and print it once, alone on the last line."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.models import Hub
from integrations.services.hubs import (
    SignatureSetupError,
    hub_signature_requirement_set,
    hub_signing_secret_issue,
    hub_signing_secret_previous_drop,
)


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        # A property, not gettext_lazy: argparse cannot format a lazy description.
        return _(
            "Issue a new webhook signing secret for a hub (X-Komo-Signature, HMAC-SHA256) and "
            "print it once, alone on the last line. Without --keep-previous the old secret stops "
            "at once."
        )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("slug")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--keep-previous",
            action="store_true",
            help=gettext_lazy("Rotate: keep accepting the current secret next to the new one."),
        )
        mode.add_argument(
            "--drop-previous",
            action="store_true",
            help=gettext_lazy("End a rotation: stop accepting the previous secret; issue nothing."),
        )
        parser.add_argument(
            "--require",
            action="store_true",
            help=gettext_lazy("Also refuse unsigned webhooks from now on."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        hub = Hub.objects.filter(slug=options["slug"]).first()
        if hub is None:
            raise CommandError(_("No hub with slug %(slug)s.") % {"slug": options["slug"]})
        if options["drop_previous"]:
            self._drop_previous(hub, require=options["require"])
            return
        secret = hub_signing_secret_issue(hub=hub, keep_previous=options["keep_previous"])
        if options["require"]:
            hub_signature_requirement_set(hub=hub, required=True)
        self.stdout.write(self._status(hub))
        self.stdout.write(
            _("New signing secret for %(slug)s (shown only now, store it safely):")
            % {"slug": hub.slug}
        )
        self.stdout.write(secret)

    def _drop_previous(self, hub: Hub, *, require: bool) -> None:
        dropped = hub_signing_secret_previous_drop(hub=hub)
        if require:
            try:
                hub_signature_requirement_set(hub=hub, required=True)
            except SignatureSetupError as exc:
                raise CommandError(str(exc)) from exc
        self.stdout.write(
            _("The previous signing secret is no longer accepted.")
            if dropped
            else _("There was no previous signing secret.")
        )
        self.stdout.write(self._status(hub))

    @staticmethod
    def _status(hub: Hub) -> str:
        accepted = (
            _("the new and the previous secret are accepted")
            if hub.signing_secret_previous
            else _("only the current secret is accepted")
        )
        required = (
            _("unsigned webhooks are refused")
            if hub.require_signature
            else _("signatures are not required yet (use --require or the admin)")
        )
        return f"{accepted}; {required}."
