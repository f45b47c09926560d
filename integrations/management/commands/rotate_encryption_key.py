from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.management.progress import BatchProgress
from integrations.services.encryption import DEFAULT_BATCH_SIZE, encryption_rotate


class Command(BaseCommand):
    help = gettext_lazy(
        "Re-encrypt every stored secret and all personal data under the first key of "
        "FIELD_ENCRYPTION_KEYS, in batches. Put the new key first, run this, then remove the "
        "old key. Safe to interrupt and to run again: what is already under the new key is "
        "skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
            help=gettext_lazy("Rows per transaction (default %(default)s)."),
        )  # fmt: skip

    def handle(self, *args, **options):
        with BatchProgress() as progress:
            report = encryption_rotate(batch_size=max(1, options["batch_size"]), progress=progress)
        skipped = sum(step.skipped for step in report.steps)
        self.stdout.write(
            _("Re-encrypted %(count)d value(s); %(skipped)d already under the newest key.")
            % {"count": report.changed, "skipped": skipped}
        )
        if report.unreadable:
            raise CommandError(
                _(
                    "%(count)d value(s) cannot be decrypted with any key of "
                    "FIELD_ENCRYPTION_KEYS: keep the old key until they are found."
                )
                % {"count": report.unreadable}
            )
