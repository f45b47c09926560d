from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Komo → Braze integrations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from integrations import checks, signals  # noqa: F401
