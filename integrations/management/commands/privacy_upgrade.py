from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.management.progress import BatchProgress
from integrations.services.encryption import (
    DEFAULT_BATCH_SIZE,
    privacy_upgrade,
    privacy_upgrade_remaining,
)


class Command(BaseCommand):
    help = gettext_lazy(
        "Encrypt and index the personal data an installation stored in plain text before "
        "encryption at rest, in short batches while the portal runs. Safe to interrupt and to "
        "run again: it continues with what is left."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
            help=gettext_lazy("Rows per transaction (default %(default)s)."),
        )  # fmt: skip

    def handle(self, *args, **options):
        with BatchProgress() as progress:
            report = privacy_upgrade(batch_size=max(1, options["batch_size"]), progress=progress)
        for step in report.steps:
            if step.changed:
                self.stdout.write(f"  {step.label}: {step.changed}")
        remaining = privacy_upgrade_remaining()
        self.stdout.write(
            _("Upgraded %(changed)d row(s); %(remaining)d left.")
            % {"changed": report.changed, "remaining": remaining}
        )
        if remaining:
            self.stdout.write(
                _("Rows changed while this ran are left for the next run: run it again.")
            )
