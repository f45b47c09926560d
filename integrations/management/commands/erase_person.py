"""``manage.py erase_person (--email E | --phone P | --external-id X) [--hub SLUG] [--braze]``.

Erases every submission, attempt item and transactional send about one person (every hub, or the
one named), cuts them out of stored Braze requests and, with ``--braze``, asks Braze to delete
the profile. Shows the counts per hub first (never the data) and asks to confirm, unless
``--no-input``; ``--dry-run`` only shows them. See ``services/erasure.py``.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.models import Hub
from integrations.services.erasure import ErasureInputError, erasure_preview, person_erase


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        return _(
            "Erase one person: every submission, attempt item and transactional send about "
            "them, in every hub or the one named; optionally delete the profile in Braze."
        )

    def add_arguments(self, parser: ArgumentParser) -> None:
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--email", help=gettext_lazy("The whole email address."))
        who.add_argument("--phone", help=gettext_lazy("The phone number, in any format."))
        who.add_argument("--external-id", dest="external_id",
                         help=gettext_lazy("The external id."))
        parser.add_argument("--hub", help=gettext_lazy("Only this hub (its slug)."))
        parser.add_argument(
            "--braze", action="store_true",
            help=gettext_lazy("Also ask Braze to delete the profile (needs users.delete)."),
        )
        parser.add_argument("--dry-run", action="store_true",
                            help=gettext_lazy("Only show what would be erased."))
        parser.add_argument("--no-input", "--noinput", action="store_false", dest="interactive",
                            help=gettext_lazy("Do not ask for confirmation."))

    def handle(self, *args: Any, **options: Any) -> None:
        kind = next(k for k in ("email", "phone", "external_id") if options.get(k) is not None)
        value = options[kind]
        hubs = Hub.objects.all()
        if options.get("hub"):
            hubs = hubs.filter(slug=options["hub"])
            if not hubs.exists():
                raise CommandError(_("No hub with slug %(slug)s.") % {"slug": options["hub"]})
        try:
            preview = erasure_preview(kind, value, hubs)
        except ErasureInputError as exc:
            raise CommandError(str(exc)) from None
        self._show(preview)
        if options["dry_run"]:
            return
        if not preview and not options["braze"]:
            self.stdout.write(_("Nothing to erase."))
            return
        if options["interactive"]:
            answer = input(_("Type “erase” to erase this person for good: "))
            if answer.strip() != "erase":
                raise CommandError(_("Nothing was erased."))
        record = person_erase(kind, value, hubs, user=None, braze=options["braze"])
        self.stdout.write(
            _("Erased. Record %(id)s: %(count)d submission(s) in %(hubs)d hub(s).")
            % {
                "id": record.pk,
                "count": sum(c["submissions"] for c in record.counts.values()),
                "hubs": len(record.counts),
            }
        )
        if record.braze_outcome:
            self.stdout.write(f"Braze: {record.braze_outcome}\n{record.braze_answer}")

    def _show(self, preview: dict) -> None:
        if not preview:
            self.stdout.write(_("No submission about this person was found."))
            return
        for slug, counts in preview.items():
            self.stdout.write(
                _("%(hub)s: %(submissions)d submission(s), %(items)d attempt item(s), "
                  "%(sends)d transactional send(s), %(attempts)d stored request(s) to clean")
                % {
                    "hub": slug,
                    "submissions": counts.submissions,
                    "items": counts.attempt_items,
                    "sends": counts.transactional_sends,
                    "attempts": counts.delivery_attempts_scrubbed,
                }
            )
