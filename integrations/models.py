"""Hubs, their Braze delivery configuration, submissions (the queue of record), the audit trail."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from integrations.blind_index import Person, person_of
from integrations.fields import EncryptedJSONField, EncryptedTextField
from integrations.spec import (
    DEFAULT_EVENTS,
    IDENTITY_TYPES,
    FieldMappingSpec,
    HubSpec,
    IdentitySpec,
    engagement_from_config,
    event_rules_from_config,
    new_event_kinds_from_config,
    transactional_from_config,
)

DEFAULT_RETENTION_DAYS = 90
MAX_RETENTION_DAYS = 3650


def default_events() -> list[str]:
    return list(DEFAULT_EVENTS)


class IdentityType(models.TextChoices):
    EXTERNAL_ID = "external_id", _("External ID")
    BRAZE_ID = "braze_id", _("Braze ID")
    ALIAS_EMAIL = "alias_email", _("User alias by email")
    ALIAS_PHONE = "alias_phone", _("User alias by phone")
    EMAIL = "email", _("Email identifier")
    PHONE = "phone", _("Phone identifier")


assert tuple(IdentityType.values) == IDENTITY_TYPES


class ValueType(models.TextChoices):
    STRING = "string", _("Text")
    NUMBER = "number", _("Number")
    BOOLEAN = "boolean", _("Yes/no")
    DATE = "date", _("Date")
    PHONE = "phone", _("Phone number (E.164)")
    EMAIL = "email", _("Email address")
    COUNTRY = "country", _("Country (ISO code)")
    GENDER = "gender", _("Gender")
    SUBSCRIPTION = "subscription", _("Subscription state")
    ARRAY = "array", _("List of texts")


class OnError(models.TextChoices):
    SKIP = "skip", _("Skip the field, record the problem")
    HOLD = "hold", _("Hold the submission back")


class OnFalse(models.TextChoices):
    NOTHING = "", _("Send nothing (an unticked box is not an opt-out)")
    UNSUBSCRIBED = "unsubscribed", _("Send unsubscribed")
    SUBSCRIBED = "subscribed", _("Send subscribed")


class Hub(models.Model):
    slug = models.SlugField(_("slug"), max_length=80, unique=True)
    name = models.CharField(_("name"), max_length=200)
    komo_site_id = models.CharField(_("Komo site id"), max_length=64, blank=True)
    active = models.BooleanField(
        _("active"), default=False, help_text=_("Only active hubs deliver to Braze.")
    )
    identity_type = models.CharField(
        _("identify people by"),
        max_length=20,
        choices=IdentityType.choices,
        default=IdentityType.ALIAS_EMAIL,
    )
    identity_field = models.CharField(
        _("Komo field holding the identity"), max_length=200, default="email"
    )
    alias_label = models.CharField(
        _("alias label"),
        max_length=200,
        blank=True,
        default="email",
        help_text=_("Only for user aliases: the alias_label in Braze."),
    )
    create_missing_users = models.BooleanField(
        _("create missing users"),
        default=True,
        help_text=_("Off: only update people Braze already knows (_update_existing_only)."),
    )
    default_phone_region = models.CharField(
        _("default phone region"),
        max_length=2,
        blank=True,
        help_text=_("Two-letter country code used for phone numbers written without +."),
    )
    events = models.JSONField(_("Komo events delivered"), default=default_events, blank=True)
    ingest_token_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    ingest_token_hint = models.CharField(max_length=8, blank=True, editable=False)
    # Token rotation: the previous token keeps working until this moment.
    previous_token_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    previous_token_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Optional HMAC-SHA256 webhook signatures (X-Komo-Signature); two secrets during rotation.
    require_signature = models.BooleanField(
        _("require signed webhooks"),
        default=False,
        help_text=_("Refuse webhook bodies without a valid X-Komo-Signature header."),
    )
    signing_secret = EncryptedTextField(_("signing secret"), blank=True, editable=False)
    signing_secret_previous = EncryptedTextField(blank=True, editable=False)
    intake_rate_per_minute = models.PositiveIntegerField(
        _("intake limit per minute"),
        null=True,
        blank=True,
        help_text=_("Webhook requests accepted per minute for this hub; empty = the default."),
    )
    skip_unchanged = models.BooleanField(
        _("skip unchanged attributes"),
        default=False,
        help_text=_(
            "Do not send attribute values already delivered for the same person "
            "(saves Braze data points)."
        ),
    )
    # How each Komo event kind lands in Braze (custom event, attributes, nothing); see
    # docs/hub-config.md. Empty = the defaults for the documented kinds.
    event_rules = models.JSONField(_("event rules"), default=dict, blank=True)
    engagement_attributes = models.JSONField(_("engagement attributes"), default=dict, blank=True)
    # Komo moment (event kind) → Braze transactional campaign.
    transactional = models.JSONField(_("transactional emails"), default=dict, blank=True)
    # Event kinds Komo does not document, confirmed by a person as new (not a misspelling).
    new_event_kinds = models.JSONField(_("new Komo event kinds"), default=list, blank=True)
    retention_days = models.PositiveIntegerField(
        _("keep personal data for (days)"),
        default=DEFAULT_RETENTION_DAYS,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_RETENTION_DAYS)],
        help_text=_(
            "Submissions and delivery records older than this lose their personal data "
            "(payload, Braze requests and answers); status, times and counts stay."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("hub")
        verbose_name_plural = _("hubs")

    def __str__(self) -> str:
        return self.name

    def to_spec(self) -> HubSpec:
        return HubSpec(
            identity=IdentitySpec(
                type=self.identity_type, field=self.identity_field, alias_label=self.alias_label
            ),
            mappings=tuple(m.to_spec() for m in self.mappings.all()),
            events=tuple(self.events or ()),
            create_missing_users=self.create_missing_users,
            default_phone_region=self.default_phone_region,
            event_rules=event_rules_from_config(self.event_rules),
            engagement=engagement_from_config(self.engagement_attributes),
            transactional=transactional_from_config(self.transactional),
            new_event_kinds=new_event_kinds_from_config(self.new_event_kinds),
        )


class ConnectionStatus(models.TextChoices):
    UNTESTED = "untested", _("Not tested yet")
    OK = "ok", _("Working")
    PAUSED = "paused", _("Paused: Braze refused the API key")


class BrazeConnection(models.Model):
    hub = models.OneToOneField(Hub, on_delete=models.CASCADE, related_name="connection")
    rest_endpoint = models.URLField(_("Braze REST endpoint"), max_length=200)
    api_key = EncryptedTextField(_("Braze API key"))
    api_key_last4 = models.CharField(max_length=4, blank=True, editable=False)
    api_key_fingerprint = models.CharField(max_length=32, blank=True, editable=False, db_index=True)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=ConnectionStatus.choices,
        default=ConnectionStatus.UNTESTED,
    )
    status_reason = models.TextField(_("status reason"), blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("Braze connection")
        verbose_name_plural = _("Braze connections")

    def __str__(self) -> str:
        return f"{self.rest_endpoint} (…{self.api_key_last4})"

    @property
    def is_paused(self) -> bool:
        return self.status == ConnectionStatus.PAUSED

    def set_api_key(self, key: str) -> None:
        from integrations import crypto

        key = key.strip()
        self.api_key = key
        self.api_key_last4 = key[-4:]
        self.api_key_fingerprint = crypto.fingerprint(key)


class FieldMapping(models.Model):
    hub = models.ForeignKey(Hub, on_delete=models.CASCADE, related_name="mappings")
    position = models.PositiveIntegerField(_("position"), default=0)
    komo_field = models.CharField(_("Komo field"), max_length=200)
    attribute = models.CharField(_("Braze attribute"), max_length=255)
    value_type = models.CharField(
        _("type"), max_length=20, choices=ValueType.choices, default=ValueType.STRING
    )
    on_error = models.CharField(
        _("when the value is invalid"),
        max_length=10,
        choices=OnError.choices,
        default=OnError.SKIP,
    )
    on_false = models.CharField(
        _("unticked box sends"),
        max_length=20,
        choices=OnFalse.choices,
        blank=True,
        default="",
    )
    subscription_group_id = models.CharField(
        _("subscription group"),
        max_length=100,
        blank=True,
        default="",
        help_text=_("Subscription type only: also set this Braze subscription group."),
    )

    class Meta:
        ordering = ["position", "id"]
        verbose_name = _("field mapping")
        verbose_name_plural = _("field mappings")
        constraints = [
            models.UniqueConstraint(fields=["hub", "attribute"], name="mapping_unique_attribute"),
        ]

    def __str__(self) -> str:
        return f"{self.komo_field} → {self.attribute}"

    def to_spec(self) -> FieldMappingSpec:
        return FieldMappingSpec(
            field=self.komo_field,
            attribute=self.attribute,
            type=self.value_type,
            on_error=self.on_error,
            on_false=self.on_false or None,
            subscription_group_id=self.subscription_group_id,
        )


class SubmissionStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be delivered")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")
    HELD = "held", _("Held back")
    IGNORED = "ignored", _("Ignored (event not delivered by this hub)")


PROBLEM_STATUSES = ("failed", "held")


class Submission(models.Model):
    """One Komo webhook body. The row is the delivery queue of record.

    Personal data is kept only encrypted (``payload``, ``problems``); support finds a person
    through the blind index (``*_hash``: keyed hashes of normalised identifiers, see
    ``blind_index``). Past the hub's retention window both are emptied (``redacted_at``).
    ``*_legacy`` hold what an installation stored in plain text before encryption, until
    ``manage.py privacy_upgrade`` has encrypted it; reads fall back to them meanwhile.
    """

    hub = models.ForeignKey(Hub, on_delete=models.PROTECT, related_name="submissions")
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    komo_id = models.CharField(_("Komo id"), max_length=200)
    event = models.CharField(_("Komo event"), max_length=200)
    komo_timestamp = models.DateTimeField(_("Komo time"), null=True, blank=True)
    payload = EncryptedJSONField(_("payload as received"))
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=SubmissionStatus.choices,
        default=SubmissionStatus.PENDING,
    )
    status_reason = models.TextField(_("reason"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    problems = EncryptedJSONField(_("problems"), empty=list)
    email_hash = models.CharField(max_length=32, blank=True, default="", editable=False)
    email_local_hash = models.CharField(max_length=32, blank=True, default="", editable=False)
    phone_hash = models.CharField(max_length=32, blank=True, default="", editable=False)
    external_id_hash = models.CharField(max_length=32, blank=True, default="", editable=False)
    redacted_at = models.DateTimeField(_("personal data removed"), null=True, blank=True)
    payload_legacy = models.JSONField(null=True, blank=True, editable=False)
    problems_legacy = models.JSONField(null=True, blank=True, editable=False)
    # Set on rows read from a CSV export (a backfill), never on webhooks: the queryable marker
    # that tells backfilled deliveries from live ones (claims, charts, progress).
    backfill = models.ForeignKey(
        "Backfill", on_delete=models.PROTECT, null=True, blank=True, db_index=False,
        related_name="submissions", editable=False,
    )  # fmt: skip

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("submission")
        verbose_name_plural = _("submissions")
        constraints = [
            models.UniqueConstraint(fields=["hub", "komo_id"], name="submission_unique_komo_id"),
        ]
        indexes = [
            models.Index(
                fields=["hub", "next_attempt_at"],
                name="submission_due",
                condition=Q(status="pending"),
            ),
            # The live claim (delivery): webhooks are never found behind a backfilled backlog.
            models.Index(
                fields=["hub", "next_attempt_at"], name="submission_due_live",
                condition=Q(status="pending", backfill__isnull=True),
            ),  # fmt: skip
            models.Index(fields=["hub", "-received_at"], name="submission_hub_recent"),
            # Pages at volume (docs/decisions.md, "Fast at volume"): the newest first across
            # hubs; failed and held rows (few) by status, per hub too; delivered rows by time.
            # Partial indexes of statuses the webhook never writes cost its INSERT nothing.
            models.Index(fields=["-received_at", "-id"], name="submission_recent"),
            models.Index(fields=["status", "-received_at"], name="submission_problem_recent",
                         condition=Q(status__in=PROBLEM_STATUSES)),
            models.Index(fields=["hub", "status", "-received_at"], name="submission_hub_problem",
                         condition=Q(status__in=PROBLEM_STATUSES)),
            models.Index(fields=["hub", "-delivered_at"], name="submission_hub_delivered",
                         condition=Q(status="delivered")),
            # The event filter of the support list, newest first (issue 9: an index for every
            # filter a page uses). A Komo id is found through the unique (hub, komo_id) index.
            models.Index(fields=["event", "-received_at"], name="submission_event_recent"),
            # Retention finds what is past a hub's window without walking redacted rows.
            models.Index(
                fields=["hub", "received_at"], name="submission_unredacted",
                condition=Q(redacted_at__isnull=True),
            ),  # fmt: skip
            # Partial: live rows (the webhook's INSERT) pay nothing for it.
            models.Index(
                fields=["backfill", "status"], name="submission_backfill",
                condition=Q(backfill__isnull=False),
            ),  # fmt: skip
            *(
                models.Index(
                    fields=[column], name=f"submission_{column}", condition=~Q(**{column: ""})
                )
                for column in ("email_hash", "email_local_hash", "phone_hash", "external_id_hash")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.komo_id}"

    @cached_property
    def person(self) -> Person:
        """Who this is about, read from the (decrypted) payload; empty once redacted."""
        return person_of(
            self.payload, identity_type=self.hub.identity_type,
            identity_field=self.hub.identity_field,
        )  # fmt: skip

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        legacy_fallback(instance, ("payload", "payload_legacy"), ("problems", "problems_legacy"))
        return instance


def legacy_fallback(instance: models.Model, *pairs: tuple[str, str]) -> None:
    """A row stored before encryption: read its plain legacy value until it is upgraded."""
    loaded = instance.__dict__
    for name, legacy in pairs:
        if loaded.get(legacy) is not None and not loaded.get(name, True):
            loaded[name] = loaded[legacy]


class Outcome(models.TextChoices):
    SUCCESS = "success", _("Accepted by Braze")
    PARTIAL = "partial", _("Accepted with item errors")
    RATE_LIMITED = "rate_limited", _("Rate limited (429)")
    UNAUTHORIZED = "unauthorized", _("API key refused (401)")
    FORBIDDEN = "forbidden", _("API key lacks permission (403)")
    BAD_REQUEST = "bad_request", _("Request refused (400)")
    NOT_FOUND = "not_found", _("Wrong URL (404)")
    TOO_LARGE = "too_large", _("Request too large (413)")
    SERVER_ERROR = "server_error", _("Braze server error (5xx)")
    TIMEOUT = "timeout", _("No answer in time")
    CONNECTION_ERROR = "connection_error", _("Connection failed")
    REDIRECT = "redirect", _("Redirect (not followed)")


class DeliveryAttempt(models.Model):
    """One HTTP request to Braze: the body as sent (the key only ever in a header), the answer."""

    hub = models.ForeignKey(Hub, on_delete=models.CASCADE, related_name="attempts")
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    duration_ms = models.FloatField(default=0)
    endpoint = models.CharField(max_length=300)
    request_body = EncryptedJSONField(empty=dict)
    request_bytes = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    message = models.TextField(blank=True)
    response_body = EncryptedTextField(blank=True)
    redacted_at = models.DateTimeField(null=True, blank=True)
    request_body_legacy = models.JSONField(null=True, blank=True, editable=False)
    submissions = models.ManyToManyField(
        Submission, through="AttemptItem", related_name="delivery_attempts"
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        indexes = [
            models.Index(fields=["hub", "-started_at", "-id"], name="attempt_hub_recent"),
            models.Index(
                fields=["hub", "started_at"], name="attempt_unredacted",
                condition=Q(redacted_at__isnull=True),
            ),  # fmt: skip
        ]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M:%S} {self.status_code or self.outcome}"

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        legacy_fallback(instance, ("request_body", "request_body_legacy"))
        return instance


class ItemResult(models.TextChoices):
    DELIVERED = "delivered", _("Delivered")
    RETRY = "retry", _("Will be retried")
    FAILED = "failed", _("Failed")
    WAITING = "waiting", _("Waiting for the connection to be fixed")


class AttemptItem(models.Model):
    attempt = models.ForeignKey(DeliveryAttempt, on_delete=models.CASCADE, related_name="items")
    submission = models.ForeignKey(
        Submission, on_delete=models.CASCADE, related_name="attempt_items"
    )
    result = models.CharField(max_length=20, choices=ItemResult.choices)
    error = EncryptedTextField(blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.submission_id} in attempt {self.attempt_id}: {self.result}"


class ConfigChange(models.Model):
    """Who changed what on a hub, and when. Secrets appear only as "changed"."""

    hub = models.ForeignKey(Hub, on_delete=models.SET_NULL, null=True, related_name="changes")
    hub_slug = models.CharField(max_length=80)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=40)
    summary = models.TextField(blank=True)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("configuration change")
        verbose_name_plural = _("configuration changes")

    def __str__(self) -> str:
        return f"{self.hub_slug} {self.action} {self.at:%Y-%m-%d %H:%M}"


class HubRole(models.TextChoices):
    HEALTH = "health", _("Can view health (no personal data)")
    VIEWER = "viewer", _("Can view (support)")
    EDITOR = "editor", _("Can edit (marketer)")


class HubMembership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hub_memberships"
    )
    hub = models.ForeignKey(Hub, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=HubRole.choices, default=HubRole.VIEWER)

    class Meta:
        verbose_name = _("hub membership")
        verbose_name_plural = _("hub memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "hub"], name="membership_unique_user_hub"),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.hub} · {self.role}"


class DeliveredValue(models.Model):
    """What was last delivered for one person of a hub, per attribute (hashes only), so that
    unchanged values can be skipped when the hub asks for it."""

    hub = models.ForeignKey(Hub, on_delete=models.CASCADE, related_name="delivered_values")
    person_key = models.CharField(max_length=300)
    hashes = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hub", "person_key"], name="delivered_value_person"),
        ]

    def __str__(self) -> str:
        return f"{self.hub_id}:{self.person_key}"


class TransactionalStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")


class TransactionalSend(models.Model):
    """One Braze transactional email for a Komo moment; ``external_send_id`` makes retries safe."""

    hub = models.ForeignKey(Hub, on_delete=models.CASCADE, related_name="transactional_sends")
    submission = models.ForeignKey(
        Submission, on_delete=models.CASCADE, related_name="transactional_sends"
    )
    campaign_id = models.CharField(max_length=100)
    external_send_id = models.CharField(max_length=200, unique=True)
    status = models.CharField(
        max_length=20, choices=TransactionalStatus.choices, default=TransactionalStatus.PENDING
    )
    status_reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    request_body = EncryptedJSONField(empty=dict)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = EncryptedTextField(blank=True)
    request_body_legacy = models.JSONField(null=True, blank=True, editable=False)
    dispatch_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("transactional email")
        verbose_name_plural = _("transactional emails")

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.external_send_id}"

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        legacy_fallback(instance, ("request_body", "request_body_legacy"))
        return instance


class ErasureRecord(models.Model):
    """One erasure of a person (right to erasure): who, when, where and how much; never whom.

    ``counts``: hub slug → {"submissions": n, "attempt_items": n, "transactional_sends": n}.
    ``braze_outcome``: "" (Braze not asked), "deleted", "failed", "not_permitted" …;
    ``braze_answer``: Braze's own answer text (it never echoes the identifiers).
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    actor = models.CharField(max_length=150, blank=True)  # the username then, or "command"
    identifier_kind = models.CharField(max_length=20)  # email | phone | external_id
    hub_slugs = models.JSONField(default=list)
    counts = models.JSONField(default=dict)
    braze_outcome = models.CharField(max_length=30, blank=True)
    braze_answer = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("erasure")
        verbose_name_plural = _("erasures")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.identifier_kind}"


class AccessRecord(models.Model):
    """Someone was shown a submission's personal data: who, when, which submission, which page."""

    at = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    username = models.CharField(max_length=150, blank=True)
    hub = models.ForeignKey(Hub, on_delete=models.CASCADE, related_name="access_records")
    submission = models.ForeignKey(
        Submission, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    submission_public_id = models.UUIDField()
    page = models.CharField(max_length=40)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("access to personal data")
        verbose_name_plural = _("access to personal data")
        indexes = [
            models.Index(fields=["hub", "-at"], name="access_hub_recent"),
            models.Index(fields=["user", "-at"], name="access_user_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.username} {self.submission_public_id}"


# Models of their own modules (models.py would pass ~600 lines); importing them here registers
# them with the app like any model of this module: the backfills, the charts' rollup.
from integrations.models_backfill import Backfill, BackfillStatus  # noqa: E402,F401
from integrations.models_stats import HubHourlyStats  # noqa: E402,F401
