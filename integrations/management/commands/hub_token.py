from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.models import Hub
from integrations.services.hubs import hub_token_issue


class Command(BaseCommand):
    help = gettext_lazy(
        "Issue a new ingest token for a hub and print it once, alone on the last line. "
        "The previous token stops working."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, *args, **options):
        hub = Hub.objects.filter(slug=options["slug"]).first()
        if hub is None:
            raise CommandError(_("No hub with slug %(slug)s.") % {"slug": options["slug"]})
        token = hub_token_issue(hub=hub)
        self.stdout.write(
            _("New ingest token for %(slug)s (shown only now, store it safely):")
            % {"slug": hub.slug}
        )
        self.stdout.write(token)
