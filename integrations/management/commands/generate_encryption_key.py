from django.core.management.base import BaseCommand
from django.utils.translation import gettext_lazy

from integrations import crypto


class Command(BaseCommand):
    help = gettext_lazy("Print a new key for FIELD_ENCRYPTION_KEYS.")

    def handle(self, *args, **options):
        self.stdout.write(crypto.generate_key())
