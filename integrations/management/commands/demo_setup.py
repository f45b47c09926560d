"""Load the demo hub (pointing at the local Braze sandbox) and a demo login; print how to use."""

import json
import secrets
import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.demo import DEMO_API_KEY, DEMO_HUB_CONFIG, demo_payload
from integrations.services.hubs import hub_config_import, hub_token_issue


class Command(BaseCommand):
    help = gettext_lazy("Create or refresh the demo hub and the demo login.")

    def add_arguments(self, parser):
        parser.add_argument("--sandbox-url", default="http://127.0.0.1:9400")
        parser.add_argument("--portal-url", default="http://127.0.0.1:8000")
        parser.add_argument("--username", default="demo")

    def handle(self, *args, **options):
        config = json.loads(json.dumps(DEMO_HUB_CONFIG))
        config["braze"] = {"rest_endpoint": options["sandbox_url"], "api_key": DEMO_API_KEY}
        hub, _hub_created = hub_config_import(config=config)
        token = hub_token_issue(hub=hub)
        password = secrets.token_urlsafe(12)
        user, _created = get_user_model().objects.get_or_create(username=options["username"])
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        portal = options["portal_url"].rstrip("/")
        self.stdout.write(
            _("Demo hub: %(slug)s → Braze sandbox %(url)s")
            % {"slug": hub.slug, "url": options["sandbox_url"]}
        )
        self.stdout.write(
            _("Demo login: %(user)s / %(password)s") % {"user": user.username, "password": password}
        )
        samples = (
            ("competition-entry", _("Post a Komo competition entry:")),
            ("prize-awarded", _("Post a prize awarded (it also sends the prize email):")),
            ("quiz-started", _("Post a quiz start:")),
        )
        for name, title in samples:
            body = json.dumps(demo_payload(name, komo_id=str(uuid.uuid4())))
            self.stdout.write(title)
            self.stdout.write(
                f"curl -sS -X POST {portal}/api/v1/hubs/{hub.slug}/submissions "
                f"-H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' "
                f"-d '{body}'"
            )
