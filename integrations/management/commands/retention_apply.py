from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.models import Hub
from integrations.services.retention import retention_apply


class Command(BaseCommand):
    help = gettext_lazy(
        "Remove personal data past each hub's retention window (and delete what is past the "
        "history window), in short batches. The hourly schedule does the same."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--now", help=gettext_lazy("Apply the windows as of this ISO 8601 time (default: now).")
        )
        parser.add_argument("--hub", metavar="SLUG", help=gettext_lazy("Only this hub."))
        parser.add_argument(
            "--batch-size", type=int, help=gettext_lazy("Rows per transaction (default 500).")
        )

    def handle(self, *args, **options):
        now = None
        if options["now"]:
            try:
                now = parse_datetime(options["now"])
            except ValueError:
                now = None
            if now is None:
                raise CommandError(
                    _("--now must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z.")
                )
            now = make_aware(now) if is_naive(now) else now
        hubs = Hub.objects.all()
        if options["hub"]:
            hubs = hubs.filter(slug=options["hub"])
            if not hubs.exists():
                raise CommandError(_("No hub with the slug %(slug)r.") % {"slug": options["hub"]})
        report = retention_apply(now=now, hubs=hubs, batch_size=options["batch_size"])
        for hub in report.hubs:
            if any(hub.counts().values()):
                self.stdout.write(f"  {hub.hub}: " + ", ".join(
                    f"{key} {value}" for key, value in hub.counts().items() if value))  # fmt: skip
        totals = report.totals()
        self.stdout.write(
            _(
                "Personal data removed from %(submissions)d submission(s) and %(attempts)d "
                "delivery attempt(s); %(items)d attempt item(s) deleted; %(deleted)d old "
                "submission(s) and %(deleted_attempts)d attempt(s) deleted."
            )
            % {
                "submissions": totals.get("submissions_redacted", 0),
                "attempts": totals.get("attempts_redacted", 0),
                "items": totals.get("attempt_items_deleted", 0),
                "deleted": totals.get("submissions_deleted", 0),
                "deleted_attempts": totals.get("attempts_deleted", 0),
            }
        )
