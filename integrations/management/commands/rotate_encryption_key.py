from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.models import BrazeConnection


class Command(BaseCommand):
    help = gettext_lazy(
        "Re-encrypt every stored secret under the first key of FIELD_ENCRYPTION_KEYS. "
        "Put the new key first, run this, then remove the old key."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        count = 0
        # Reading decrypts with any configured key; writing encrypts with the first (newest).
        for connection in BrazeConnection.objects.select_for_update().only("pk", "api_key"):
            if connection.api_key:
                BrazeConnection.objects.filter(pk=connection.pk).update(api_key=connection.api_key)
                count += 1
        self.stdout.write(_("Re-encrypted %(count)d secret(s).") % {"count": count})
