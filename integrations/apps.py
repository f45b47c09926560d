from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Komo → Braze integrations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Runs after the admin's autodiscover (django.contrib.admin comes first in INSTALLED_APPS).
        from django.contrib import admin

        from integrations import checks, signals  # noqa: F401
        from integrations.admin.common import superusers_only_outside_integrations

        superusers_only_outside_integrations(admin.site)
