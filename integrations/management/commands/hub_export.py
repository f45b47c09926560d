import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.models import Hub
from integrations.services.hubs import hub_config_export


class Command(BaseCommand):
    help = gettext_lazy("Print a hub's configuration as JSON (the API key is masked).")

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, *args, **options):
        hub = Hub.objects.filter(slug=options["slug"]).first()
        if hub is None:
            raise CommandError(_("No hub with slug %(slug)s.") % {"slug": options["slug"]})
        self.stdout.write(json.dumps(hub_config_export(hub), indent=2, ensure_ascii=False))
