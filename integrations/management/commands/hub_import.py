import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ValidationError

from integrations.services.hubs import hub_config_import


class Command(BaseCommand):
    help = gettext_lazy("Create or update a hub (by slug) from a hub JSON file ('-' reads stdin).")

    def add_arguments(self, parser):
        parser.add_argument("file", help=gettext_lazy("Path to the hub JSON file, or - for stdin."))

    def handle(self, *args, **options):
        source = options["file"]
        try:
            text = self.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(
                _("Cannot read %(file)s: %(error)s") % {"file": source, "error": exc}
            ) from exc
        try:
            config = json.loads(text)
        except ValueError as exc:
            raise CommandError(
                _("%(file)s is not valid JSON: %(error)s") % {"file": source, "error": exc}
            ) from exc
        if not isinstance(config, dict):
            raise CommandError(_("The hub JSON must be an object."))
        try:
            hub, created = hub_config_import(config=config)
        except ValidationError as exc:
            raise CommandError(
                _("Invalid hub configuration: %(errors)s")
                % {"errors": json.dumps(exc.detail, ensure_ascii=False)}
            ) from exc
        message = _("Created hub %(slug)s") if created else _("Updated hub %(slug)s")
        self.stdout.write(message % {"slug": hub.slug})
