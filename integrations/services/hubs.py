"""Hub configuration writes: import/export, ingest tokens, connection tests, the change history."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations import signatures, tokens
from integrations.braze.client import Outcome, TrackResult
from integrations.braze.instances import endpoint_allowed
from integrations.models import (
    BrazeConnection,
    ConfigChange,
    ConnectionStatus,
    FieldMapping,
    Hub,
    Submission,
    SubmissionStatus,
)
from integrations.serializers import MASK, HubConfigSerializer
from integrations.services.dispatch import hub_delivery_trigger

SECRET_PATHS = ("braze.api_key",)
NO_GRACE = timedelta(0)
# How long a replaced ingest token keeps working when a person rotates it (command, admin).
TOKEN_GRACE_DEFAULT = timedelta(hours=24)

# Sent to test a connection: update-only for an alias nobody has, so nothing is created in Braze,
# but Braze still checks the key, its users.track permission and the instance host.
CONNECTION_TEST_BODY = {
    "attributes": [
        {
            "user_alias": {
                "alias_name": "komo-portal-connection-test",
                "alias_label": "komo_portal",
            },
            "_update_existing_only": True,
        }
    ]
}


def hub_config_export(hub: Hub) -> dict[str, Any]:
    """The hub JSON of DESIGN.md; the API key is always masked."""
    connection = getattr(hub, "connection", None)
    config: dict[str, Any] = {
        "slug": hub.slug,
        "name": hub.name,
        "active": hub.active,
        "komo_site_id": hub.komo_site_id,
    }
    if connection is not None:
        config["braze"] = {"rest_endpoint": connection.rest_endpoint, "api_key": MASK}
    config.update(
        {
            "identity": {
                "type": hub.identity_type,
                "field": hub.identity_field,
                "alias_label": hub.alias_label,
            },
            "create_missing_users": hub.create_missing_users,
            "default_phone_region": hub.default_phone_region,
            "events": list(hub.events or []),
            "mappings": [_mapping_export(m) for m in hub.mappings.all()],
            "event_rules": dict(hub.event_rules or {}),
            "engagement_attributes": dict(hub.engagement_attributes or {}),
            "transactional": dict(hub.transactional or {}),
            "new_event_kinds": list(hub.new_event_kinds or []),
            "retention_days": hub.retention_days,
        }
    )
    return config


def _mapping_export(mapping: FieldMapping) -> dict[str, Any]:
    data: dict[str, Any] = {
        "field": mapping.komo_field,
        "attribute": mapping.attribute,
        "type": mapping.value_type,
        "on_error": mapping.on_error,
    }
    if mapping.on_false:
        data["on_false"] = mapping.on_false
    if mapping.subscription_group_id:
        data["subscription_group_id"] = mapping.subscription_group_id
    return data


def config_diff(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Changed paths → [old, new]; secrets only ever appear as "changed"."""
    diff: dict[str, Any] = {}
    for key in sorted(set(before) | set(after)):
        path = f"{prefix}{key}"
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            diff.update(config_diff(old, new, prefix=f"{path}."))
        elif old != new:
            diff[path] = [old, new]
    return diff


def config_change_record(
    *,
    hub: Hub,
    user=None,
    action: str,
    before: dict | None = None,
    after: dict | None = None,
    summary: str = "",
    secret_changed: bool = False,
) -> ConfigChange:
    changes = config_diff(before or {}, after or {}) if after is not None else {}
    for path in SECRET_PATHS:
        changes.pop(path, None)
    if secret_changed:
        changes["braze.api_key"] = "changed"
    return ConfigChange.objects.create(
        hub=hub,
        hub_slug=hub.slug,
        user=user if getattr(user, "pk", None) else None,
        action=action,
        summary=summary,
        changes=changes,
    )


@transaction.atomic
def hub_config_import(
    *, config: dict[str, Any], user=None, action: str = ""
) -> tuple[Hub, bool]:
    """Create or update a hub by slug from the hub JSON. Raises DRF ValidationError when invalid.

    An import without an API key (or with the mask) keeps the stored key. The portal's editors
    save through here too (``action`` names the editor in the change history), so a form and the
    JSON it stands for are validated and stored the same way.
    """
    serializer = HubConfigSerializer(data=config)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    hub = Hub.objects.filter(slug=data["slug"]).select_for_update().first()
    created = hub is None
    before = {} if created else hub_config_export(hub)
    hub = hub or Hub(slug=data["slug"])
    hub.name = data["name"]
    hub.active = data["active"]
    hub.komo_site_id = data.get("komo_site_id") or ""
    hub.identity_type = data["identity"]["type"]
    hub.identity_field = data["identity"]["field"]
    hub.alias_label = data["identity"].get("alias_label") or ""
    hub.create_missing_users = data["create_missing_users"]
    hub.default_phone_region = data.get("default_phone_region") or ""
    hub.events = list(data["events"])
    hub.event_rules = data.get("event_rules") or {}
    hub.transactional = data.get("transactional") or {}
    hub.engagement_attributes = data.get("engagement_attributes") or {}
    hub.new_event_kinds = list(data.get("new_event_kinds") or [])
    hub.retention_days = data["retention_days"]
    hub.save()
    secret_changed = _connection_import(hub, data.get("braze"))
    hub.mappings.all().delete()
    FieldMapping.objects.bulk_create(
        FieldMapping(
            hub=hub,
            position=i,
            komo_field=m["field"],
            attribute=m["attribute"],
            value_type=m["type"],
            on_error=m["on_error"],
            on_false=m.get("on_false") or "",
            subscription_group_id=m.get("subscription_group_id") or "",
        )
        for i, m in enumerate(data["mappings"])
    )
    after = hub_config_export(hub)
    config_change_record(
        hub=hub,
        user=user,
        action=action or ("imported" if created else "import-updated"),
        before=before,
        after=after,
        secret_changed=secret_changed,
    )
    return hub, created


def _connection_import(hub: Hub, braze: dict[str, Any] | None) -> bool:
    """Apply the braze block; True when the API key changed."""
    if not braze:
        return False
    connection = getattr(hub, "connection", None) or BrazeConnection(hub=hub)
    endpoint_changed = connection.rest_endpoint != braze["rest_endpoint"]
    connection.rest_endpoint = braze["rest_endpoint"]
    key = braze.get("api_key") or ""
    key_changed = bool(key) and key != (connection.api_key or "")
    if key_changed:
        connection.set_api_key(key)
    if connection.pk is None and not connection.api_key:
        from rest_framework.exceptions import ValidationError

        raise ValidationError({"braze": {"api_key": ["A new connection needs an API key."]}})
    if key_changed or endpoint_changed:
        connection_resume(connection, save=False)
    connection.save()
    return key_changed


def connection_resume(connection: BrazeConnection, *, save: bool = True) -> None:
    """A person fixed the key or endpoint: leave the paused state and deliver what waited."""
    if connection.status == ConnectionStatus.PAUSED:
        connection.status = ConnectionStatus.UNTESTED
        connection.status_reason = ""
        connection.status_changed_at = timezone.now()
    if save:
        connection.save()
    if connection.hub_id:
        transaction.on_commit(lambda: hub_delivery_trigger(hub_id=connection.hub_id, force=True))


def hub_token_issue(*, hub: Hub, user=None, grace: timedelta = NO_GRACE) -> str:
    """A new ingest token, returned once and stored only as a hash.

    With a ``grace`` period the token it replaces keeps working until then, so Komo can be
    switched over without losing a webhook; without one (the default, e.g. for a leaked token)
    it stops at once. Only one previous token is ever kept.
    """
    token = tokens.token_generate()
    keep_previous = grace > NO_GRACE and bool(hub.ingest_token_hash)
    hub.previous_token_hash = hub.ingest_token_hash if keep_previous else ""
    hub.previous_token_expires_at = timezone.now() + grace if keep_previous else None
    hub.ingest_token_hash = tokens.token_hash(token)
    hub.ingest_token_hint = token[-4:]
    hub.save(
        update_fields=[
            "ingest_token_hash",
            "ingest_token_hint",
            "previous_token_hash",
            "previous_token_expires_at",
            "updated_at",
        ]
    )
    summary = _("ingest token …%(hint)s") % {"hint": token[-4:]}
    if keep_previous:
        summary += "; " + _("the previous token works until %(until)s") % {
            "until": f"{hub.previous_token_expires_at:%Y-%m-%d %H:%M} UTC"
        }
    config_change_record(hub=hub, user=user, action="token-issued", summary=summary)
    return token


@transaction.atomic
def hub_signing_secret_issue(*, hub: Hub, user=None, keep_previous: bool = False) -> str:
    """A new webhook signing secret, returned once and stored encrypted.

    ``keep_previous`` keeps accepting signatures made with the current secret (a rotation: both
    are valid until ``hub_signing_secret_previous_drop``); otherwise it stops at once.
    """
    secret = signatures.secret_generate()
    hub.signing_secret_previous = hub.signing_secret if keep_previous else ""
    hub.signing_secret = secret
    hub.save(update_fields=["signing_secret", "signing_secret_previous", "updated_at"])
    summary = (
        _("new signing secret; the previous one is still accepted")
        if hub.signing_secret_previous
        else _("new signing secret; no other secret is accepted")
    )
    config_change_record(hub=hub, user=user, action="signing-secret-issued", summary=summary)
    return secret


class SignatureSetupError(ValueError):
    """Signed webhooks cannot be required before the hub has a signing secret."""


def hub_signature_requirement_set(*, hub: Hub, required: bool, user=None) -> bool:
    """Require (or stop requiring) signed webhooks; True when it changed.

    Raises ``SignatureSetupError`` when asked to require signatures without a secret, which would
    refuse every webhook.
    """
    if required and not hub.signing_secret:
        raise SignatureSetupError(_("Issue a signing secret before requiring signed webhooks."))
    if hub.require_signature == required:
        return False
    hub.require_signature = required
    hub.save(update_fields=["require_signature", "updated_at"])
    config_change_record(
        hub=hub,
        user=user,
        action="signatures-required" if required else "signatures-optional",
        summary=_("unsigned webhooks are refused")
        if required
        else _("unsigned webhooks are accepted"),
    )
    return True


def hub_signing_secret_previous_drop(*, hub: Hub, user=None) -> bool:
    """End a signing-secret rotation: only the current secret is accepted. True if one was kept."""
    if not hub.signing_secret_previous:
        return False
    hub.signing_secret_previous = ""
    hub.save(update_fields=["signing_secret_previous", "updated_at"])
    config_change_record(
        hub=hub,
        user=user,
        action="signing-secret-previous-dropped",
        summary=_("the previous signing secret is no longer accepted"),
    )
    return True


def connection_test(*, connection: BrazeConnection) -> TrackResult:
    """Call Braze with the stored key without creating anyone; update the connection status.

    A stored endpoint outside the allow-list is never called: the connection pauses instead.
    """
    from integrations.services import braze_api
    from integrations.services.delivery import connection_pause, endpoint_refused_reason

    if not endpoint_allowed(connection.rest_endpoint, settings.BRAZE_EXTRA_ENDPOINTS):
        reason = endpoint_refused_reason(connection.rest_endpoint)
        connection_pause(connection, reason=reason)
        return TrackResult(status_code=None, outcome=Outcome.CONNECTION_ERROR, message=reason)
    result = braze_api.braze_client().track(
        endpoint=connection.rest_endpoint, api_key=connection.api_key, body=CONNECTION_TEST_BODY
    )
    from integrations.explain import outcome_explain

    ok = str(result.outcome) in ("success", "partial")
    now = timezone.now()
    if ok:
        connection.status, connection.status_reason = ConnectionStatus.OK, ""
        connection.last_success_at = now
    elif str(result.outcome) in ("unauthorized", "forbidden", "not_found", "redirect"):
        connection.status = ConnectionStatus.PAUSED
        connection.status_reason = outcome_explain(
            result.outcome, status_code=result.status_code, message=result.message
        )
    connection.status_changed_at = now
    connection.save()
    if ok and connection.hub_id:
        hub_delivery_trigger(hub_id=connection.hub_id, force=True)
    return result


@transaction.atomic
def hubs_active_set(*, hubs: Iterable[Hub], active: bool, user=None) -> int:
    """Switch hubs on or off, recording who did it; switching on delivers what waited."""
    changed = 0
    for hub in hubs:
        if hub.active == active:
            continue
        before = hub_config_export(hub)
        hub.active = active
        hub.save(update_fields=["active", "updated_at"])
        config_change_record(
            hub=hub, user=user, action="switched-on" if active else "switched-off",
            before=before, after=hub_config_export(hub),
        )
        if active:
            transaction.on_commit(lambda h=hub.pk: hub_delivery_trigger(hub_id=h, force=True))
        changed += 1
    return changed


@transaction.atomic
def submissions_redeliver(*, pks: list[int], user=None) -> int:
    """Queue submissions again now, with a fresh retry window. Ignored ones stay ignored, and
    so do those whose personal data retention removed (there is nothing left to send)."""
    queryset = Submission.objects.filter(pk__in=pks, redacted_at__isnull=True).exclude(
        status=SubmissionStatus.IGNORED
    )
    per_hub: dict[int, list[int]] = {}
    for pk, hub_id in queryset.values_list("pk", "hub_id"):
        per_hub.setdefault(hub_id, []).append(pk)
    for hub in Hub.objects.filter(pk__in=per_hub):
        count = Submission.objects.filter(pk__in=per_hub[hub.pk]).update(
            status=SubmissionStatus.PENDING, next_attempt_at=timezone.now(), attempts=0,
            claimed_until=None, claim_token=None, status_reason="",
        )
        config_change_record(
            hub=hub, user=user, action="redelivered",
            summary=f"{count} submission(s) queued again",
        )
        transaction.on_commit(lambda h=hub.pk: hub_delivery_trigger(hub_id=h, force=True))
    return sum(len(pks) for pks in per_hub.values())
