"""Plain, immutable description of a hub's delivery configuration.

This is the one shape shared by the hub JSON (import/export), the models (``Hub.to_spec()``) and the
pure mapping code (``integrations.mapping``). It knows nothing of Django models or HTTP.

Besides identity and field mappings, a hub says how each Komo event kind lands in Braze
(``event_rules``), which engagement attributes it keeps (``engagement_attributes``) and which
Komo moments send a Braze transactional email (``transactional``); docs/hub-config.md describes the
JSON. The defaults for the event kinds Komo documents live here, in :data:`DOCUMENTED_EVENTS`, and
:func:`resolve_event_rule` is the one place that decides which rule applies to a submission.

The ``*_from_config`` readers turn hub JSON into specs. They check the *shape* only (an object
where one is expected, text where text is expected) and raise :class:`ConfigShapeError` naming
the path; what the values mean is checked by :mod:`integrations.validation`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeAlias

from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

IDENTITY_TYPES = ("external_id", "braze_id", "alias_email", "alias_phone", "email", "phone")
VALUE_TYPES = (
    "string",
    "number",
    "boolean",
    "date",
    "phone",
    "email",
    "country",
    "gender",
    "subscription",
    "array",
)
ON_ERROR_CHOICES = ("skip", "hold")
DEFAULT_EVENTS = ("CompetitionEntrySuccess",)

# Keys Komo puts on every (or many) webhook bodies; they are never captured attributes.
KOMO_FIXED_KEYS = frozenset(
    {
        "id",
        "event",
        "timestamp",
        "site_id",
        "site_name",
        "user_session_id",
        "user_profile_id",
        "card_id",
        "card_name",
        "card_type",
        "score",
        "correct",
        "competition_entry_id",
        "submission_id",
        "prize_recipient_id",
        "prize_id",
        "prize_name",
        "offer_id",
        "coupon_id",
        "offer_name",
        "coupon_code",
        "trivia_gameplay_id",
    }
)
# Komo sends these as strings ("7"); they are counts, so Braze gets numbers.
NUMERIC_KOMO_KEYS: Final = frozenset({"score", "correct"})
# Fixed keys that are never quantities (ids, names, times, and coupon codes, which are codes even
# when they look like numbers): a running total cannot be built from them.
TEXT_KOMO_KEYS: Final = KOMO_FIXED_KEYS - NUMERIC_KOMO_KEYS

# How a delivered event kind lands in Braze: a custom event, the profile's attributes (the hub's
# field mappings plus the rule's attribute updates), both in the same request, or nowhere.
LANDINGS: Final = ("event", "attributes", "both", "none")
EVENT_LANDINGS: Final = frozenset({"event", "both"})
ATTRIBUTE_LANDINGS: Final = frozenset({"attributes", "both"})
# Attribute updates of a rule: latest value, running total ({"inc": n}), collected answers
# ({"add": [...]}) or one nested object per card (merged with "_merge_objects").
UPDATE_MODES: Final = ("set", "inc", "add", "object")
# Value types an event property (or a nested card object's value) may have.
PROPERTY_TYPES: Final = ("string", "number", "boolean", "date", "array")
# Optional hub-wide attributes for segmenting in Braze; the value of each is the attribute name.
ENGAGEMENT_KEYS: Final = (
    "hubs_engaged",
    "first_engaged_at",
    "last_engaged_at",
    "entries",
    "prizes_won",
)
ENTRY_EVENTS: Final = frozenset({"CompetitionEntrySuccess"})
PRIZE_EVENTS: Final = frozenset({"PrizeAwarded"})
# Braze's transactional endpoint addresses a recipient by external_user_id or user_alias only.
TRANSACTIONAL_IDENTITY_TYPES: Final = ("external_id", "alias_email", "alias_phone")
# Until FieldMapping has its own column, mappings' subscription group ids are kept in the hub's
# engagement_attributes JSON under this key (attribute → group id); see docs/decisions.md.

# A user-facing sentence: usually a lazy translation.
Message: TypeAlias = "str | Promise"


@dataclass(frozen=True)
class FieldMappingSpec:
    field: str
    attribute: str
    type: str = "string"
    on_error: str = "skip"
    # Only for type "subscription": what an unticked box sends. None = nothing (the safe default).
    on_false: str | None = None
    # Only for type "subscription": also set this Braze subscription group.
    subscription_group_id: str = ""


@dataclass(frozen=True)
class IdentitySpec:
    type: str
    field: str
    alias_label: str = ""


@dataclass(frozen=True)
class PropertySpec:
    """One Komo key copied into a Braze event property (or a nested card object, or a trigger
    property), converted by ``type``."""

    field: str
    property: str
    type: str = "string"


@dataclass(frozen=True)
class AttributeUpdateSpec:
    """One profile attribute an event rule writes.

    ``set``: the latest value of ``field`` (converted by ``type``). ``inc``: ``{"inc": n}`` by the
    number in ``field``, or by 1 without a field. ``add``: ``{"add": [...]}`` with the answer(s) in
    ``field``. ``object``: ``{card_id: {...fields}}`` with ``_merge_objects``, one object per card.
    ``type`` only matters for ``set``; "" means a number for score/correct, else text.
    """

    attribute: str
    mode: str
    field: str = ""
    type: str = ""
    fields: tuple[PropertySpec, ...] = ()


@dataclass(frozen=True)
class RulePatch:
    """Part of an event rule as configured; ``None`` means "as the default says"."""

    landing: str | None = None
    event_name: str | None = None
    properties: tuple[PropertySpec, ...] | None = None
    updates: tuple[AttributeUpdateSpec, ...] | None = None


@dataclass(frozen=True)
class CardTypeRule:
    card_type: str
    patch: RulePatch


@dataclass(frozen=True)
class EventRuleSpec:
    """The configured rule of one Komo event kind, with optional per-card-type overrides."""

    event: str
    patch: RulePatch = RulePatch()
    card_types: tuple[CardTypeRule, ...] = ()


@dataclass(frozen=True)
class EventRule:
    """The rule that applies to one submission (see :func:`resolve_event_rule`)."""

    landing: str
    event_name: str
    properties: tuple[PropertySpec, ...]
    updates: tuple[AttributeUpdateSpec, ...] = ()


@dataclass(frozen=True)
class EngagementSpec:
    """Hub-wide attributes for segmenting; each value is a Braze attribute name, "" = off."""

    hubs_engaged: str = ""
    first_engaged_at: str = ""
    last_engaged_at: str = ""
    entries: str = ""
    prizes_won: str = ""

    def items(self) -> list[tuple[str, str]]:
        """(engagement key, attribute) for the ones switched on, in ENGAGEMENT_KEYS order."""
        return [(key, getattr(self, key)) for key in ENGAGEMENT_KEYS if getattr(self, key)]


@dataclass(frozen=True)
class TransactionalSpec:
    """A Komo moment (event kind) that sends a Braze transactional email."""

    event: str
    campaign_id: str
    # None: the moment's default trigger properties (DEFAULT_TRIGGER_PROPERTIES).
    trigger_properties: tuple[PropertySpec, ...] | None = None


@dataclass(frozen=True)
class HubSpec:
    identity: IdentitySpec
    mappings: tuple[FieldMappingSpec, ...] = ()
    events: tuple[str, ...] = DEFAULT_EVENTS
    create_missing_users: bool = True
    default_phone_region: str = ""
    event_rules: tuple[EventRuleSpec, ...] = ()
    engagement: EngagementSpec = EngagementSpec()
    transactional: tuple[TransactionalSpec, ...] = ()
    # Event kinds Komo does not document that a person confirmed as new (not a misspelling).
    new_event_kinds: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


# --------------------------------------------------------------------------------------------
# Defaults for the event kinds Komo documents (komo-events.md)

_SITE: Final = ("site_id", "site_name")
_CARD: Final = ("card_id", "card_name", "card_type")
_GAME: Final = ("score", "correct")


@dataclass(frozen=True)
class DocumentedEvent:
    landing: str
    event_name: str
    properties: tuple[str, ...]


# Defaults apply to a kind the hub delivers (lists in "events") and has no rule for. A property
# the payload lacks is simply not sent, so listing a key Komo only sometimes sends is harmless.
DOCUMENTED_EVENTS: Final[dict[str, DocumentedEvent]] = {
    "CompetitionEntrySuccess": DocumentedEvent(
        "both",
        "komo_competition_entry",
        (*_SITE, *_CARD, *_GAME, "competition_entry_id", "submission_id"),
    ),
    "SignUpSuccess": DocumentedEvent("both", "komo_sign_up", (*_SITE, "submission_id")),
    "PrizeAwarded": DocumentedEvent(
        "both",
        "komo_prize_awarded",
        (*_SITE, *_CARD, "prize_id", "prize_name", "prize_recipient_id", "competition_entry_id"),
    ),
    "CouponIssued": DocumentedEvent(
        "both",
        "komo_coupon_issued",
        (*_SITE, "offer_id", "offer_name", "coupon_id", "coupon_code", "competition_entry_id"),
    ),
    "QuizStarted": DocumentedEvent("both", "komo_quiz_started", (*_SITE, *_CARD, *_GAME)),
    "InstantWinStarted": DocumentedEvent("both", "komo_instant_win_started", (*_SITE, *_CARD)),
    "ScratchAndWinStarted": DocumentedEvent(
        "both", "komo_scratch_and_win_started", (*_SITE, *_CARD, "competition_entry_id")
    ),
    "TriviaGameplayStarted": DocumentedEvent(
        "both",
        "komo_trivia_gameplay_started",
        (*_SITE, *_CARD, "trivia_gameplay_id", "competition_entry_id"),
    ),
    "PredictiveStarted": DocumentedEvent(
        "both", "komo_predictive_started", (*_SITE, *_CARD, "competition_entry_id")
    ),
    # Views are high-volume and not delivered unless listed in "events"; when they are, they keep
    # what they always did: the hub's field mappings. A rule can make them events.
    "CardViewed": DocumentedEvent("attributes", "komo_card_viewed", (*_SITE, *_CARD, *_GAME)),
    "CardCoverClicked": DocumentedEvent("attributes", "komo_card_cover_clicked", (*_SITE, *_CARD)),
    "SiteViewed": DocumentedEvent("attributes", "komo_site_viewed", _SITE),
}
# Any other kind (Komo adds some, documents others only partly): the hub's field mappings when
# it is delivered, and this event name and these properties when a rule makes it an event.
UNKNOWN_EVENT_LANDING: Final = "attributes"
UNKNOWN_EVENT_PROPERTIES: Final = (*_SITE, *_CARD, *_GAME)

DEFAULT_TRIGGER_PROPERTIES: Final[dict[str, tuple[str, ...]]] = {
    "CompetitionEntrySuccess": ("site_name", "card_name", "competition_entry_id"),
    "PrizeAwarded": ("site_name", "card_name", "prize_name", "prize_id"),
    "CouponIssued": ("site_name", "offer_name", "coupon_code", "offer_id", "coupon_id"),
}
OTHER_TRIGGER_PROPERTIES: Final = ("site_name", "card_name")

_WORD_START: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_NAME_CHARACTER: Final = re.compile(r"[^a-z0-9]+")
MAX_NAME_LENGTH: Final = 255


def default_event_name(event: str) -> str:
    """``komo_<snake_case kind>``: the documented name, or one derived from an unknown kind."""
    documented = DOCUMENTED_EVENTS.get(event)
    if documented is not None:
        return documented.event_name
    words = _NOT_NAME_CHARACTER.sub("_", _WORD_START.sub("_", event).lower()).strip("_")
    return f"komo_{words or 'event'}"[:MAX_NAME_LENGTH]


def default_property(key: str) -> PropertySpec:
    """A Komo key as a property of the same name; score and correct as numbers."""
    return PropertySpec(
        field=key, property=key, type="number" if key in NUMERIC_KOMO_KEYS else "string"
    )


def default_event_rule(event: str) -> EventRule:
    documented = DOCUMENTED_EVENTS.get(event)
    landing = documented.landing if documented else UNKNOWN_EVENT_LANDING
    keys = documented.properties if documented else UNKNOWN_EVENT_PROPERTIES
    return EventRule(
        landing=landing,
        event_name=default_event_name(event),
        properties=tuple(default_property(key) for key in keys),
    )


def card_type_key(card_type: str) -> str:
    """Card types compare ignoring case, spaces, "-" and "_" ("Poll Quiz" = "poll_quiz")."""
    return re.sub(r"[\s_-]+", "", card_type).casefold()


def event_rule_config(spec: HubSpec, event: str) -> EventRuleSpec | None:
    return next((rule for rule in spec.event_rules if rule.event == event), None)


def resolve_event_rule(spec: HubSpec, *, event: str, card_type: str = "") -> EventRule:
    """The rule for a submission: the kind's default, then the hub's rule for the kind, then the
    rule's override for the card type; each fills in only what it sets."""
    rule = default_event_rule(event)
    configured = event_rule_config(spec, event)
    if configured is None:
        return rule
    rule = _patched(rule, configured.patch)
    wanted = card_type_key(card_type)
    for override in configured.card_types:
        if wanted and card_type_key(override.card_type) == wanted:
            return _patched(rule, override.patch)
    return rule


def _patched(rule: EventRule, patch: RulePatch) -> EventRule:
    changes = {
        name: value
        for name in ("landing", "event_name", "properties", "updates")
        if (value := getattr(patch, name)) is not None
    }
    return replace(rule, **changes)


def transactional_for(spec: HubSpec, event: str) -> TransactionalSpec | None:
    return next((item for item in spec.transactional if item.event == event), None)


def trigger_properties_of(item: TransactionalSpec) -> tuple[PropertySpec, ...]:
    if item.trigger_properties is not None:
        return item.trigger_properties
    keys = DEFAULT_TRIGGER_PROPERTIES.get(item.event, OTHER_TRIGGER_PROPERTIES)
    return tuple(default_property(key) for key in keys)


# --------------------------------------------------------------------------------------------
# Reading the hub JSON


class ConfigShapeError(ValueError):
    """Hub JSON with the wrong shape at ``path`` (e.g. a list where an object belongs)."""

    def __init__(self, path: str, message: Message) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def hub_spec_from_config(config: dict[str, Any]) -> HubSpec:
    """Build a HubSpec from the hub JSON (as in docs/hub-config.md).

    Assumes the identity and mappings are well-formed (the serializer checks them); the event
    rules, engagement attributes and transactional map are read with :class:`ConfigShapeError`
    for a wrong shape.
    """
    identity = config["identity"]
    return HubSpec(
        identity=IdentitySpec(
            type=identity["type"],
            field=identity["field"],
            alias_label=identity.get("alias_label") or "",
        ),
        mappings=tuple(
            FieldMappingSpec(
                field=m["field"],
                attribute=m["attribute"],
                type=m.get("type") or "string",
                on_error=m.get("on_error") or "skip",
                on_false=m.get("on_false"),
                subscription_group_id=m.get("subscription_group_id") or "",
            )
            for m in config.get("mappings", [])
        ),
        events=tuple(config.get("events") or DEFAULT_EVENTS),
        create_missing_users=bool(config.get("create_missing_users", True)),
        default_phone_region=(config.get("default_phone_region") or "").upper(),
        event_rules=event_rules_from_config(config.get("event_rules")),
        engagement=engagement_from_config(config.get("engagement_attributes")),
        transactional=transactional_from_config(config.get("transactional")),
        new_event_kinds=new_event_kinds_from_config(config.get("new_event_kinds")),
    )


def new_event_kinds_from_config(raw: Any) -> tuple[str, ...]:
    """``["CouponRedeemed", …]``: kinds confirmed as new Komo event kinds (not misspellings)."""
    if raw is None:
        return ()
    return tuple(
        _text(item, f"new_event_kinds[{index}]")
        for index, item in enumerate(_list(raw, "new_event_kinds"))
    )


def _object(raw: Any, path: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigShapeError(path, _("Expected an object ({…})."))
    return raw


def _list(raw: Any, path: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ConfigShapeError(path, _("Expected a list ([…])."))
    return raw


def _text(raw: Any, path: str, *, optional: bool = False) -> str:
    if raw is None and optional:
        return ""
    if not isinstance(raw, str):
        raise ConfigShapeError(path, _("Expected text."))
    return raw


def _only_keys(raw: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    unknown = [key for key in raw if key not in allowed]
    if unknown:
        raise ConfigShapeError(
            f"{path}.{unknown[0]}",
            format_lazy(
                _("“{key}” is not a setting here; use {choices}."),
                key=unknown[0],
                choices=", ".join(allowed),
            ),
        )


_RULE_KEYS: Final = ("landing", "event_name", "properties", "attributes", "card_types")
_PATCH_KEYS: Final = ("landing", "event_name", "properties", "attributes")
_UPDATE_KEYS: Final = ("attribute", "mode", "field", "type", "fields")
_PROPERTY_KEYS: Final = ("field", "property", "type")
_TRANSACTIONAL_KEYS: Final = ("campaign_id", "trigger_properties")


def event_rules_from_config(raw: Any) -> tuple[EventRuleSpec, ...]:
    """``{"<Komo event>": {landing, event_name, properties, attributes, card_types}}``.

    In event order: a rule is looked up by its event, and PostgreSQL's jsonb does not keep the
    order of an object's keys, so the spec must not depend on it."""
    rules = []
    for event, body in sorted(_object(raw, "event_rules").items()):
        path = f"event_rules.{event}"
        body = _object(body, path)
        _only_keys(body, _RULE_KEYS, path)
        card_types = tuple(
            CardTypeRule(
                card_type=card_type,
                patch=_patch_from_config(patch, f"{path}.card_types.{card_type}"),
            )
            for card_type, patch in sorted(
                _object(body.get("card_types"), f"{path}.card_types").items()
            )
        )
        rules.append(
            EventRuleSpec(
                event=event,
                patch=_patch_from_config(body, path, keys_checked=True),
                card_types=card_types,
            )
        )
    return tuple(rules)


def _patch_from_config(raw: Any, path: str, *, keys_checked: bool = False) -> RulePatch:
    body = _object(raw, path)
    if not keys_checked:
        _only_keys(body, _PATCH_KEYS, path)
    landing = body.get("landing")
    event_name = body.get("event_name")
    properties = body.get("properties")
    updates = body.get("attributes")
    return RulePatch(
        landing=None if landing is None else _text(landing, f"{path}.landing"),
        event_name=None if event_name is None else _text(event_name, f"{path}.event_name"),
        properties=None
        if properties is None
        else properties_from_config(properties, f"{path}.properties"),
        updates=None if updates is None else _updates_from_config(updates, f"{path}.attributes"),
    )


def properties_from_config(raw: Any, path: str) -> tuple[PropertySpec, ...]:
    """A list of Komo keys, each ``"key"`` or ``{"field", "property", "type"}``."""
    properties = []
    for index, item in enumerate(_list(raw, path)):
        item_path = f"{path}[{index}]"
        if isinstance(item, str):
            properties.append(default_property(item))
            continue
        body = _object(item, item_path)
        _only_keys(body, _PROPERTY_KEYS, item_path)
        key = _text(body.get("field"), f"{item_path}.field")
        default = default_property(key)
        properties.append(
            PropertySpec(
                field=key,
                property=_text(body.get("property"), f"{item_path}.property", optional=True) or key,
                type=_text(body.get("type"), f"{item_path}.type", optional=True) or default.type,
            )
        )
    return tuple(properties)


def _updates_from_config(raw: Any, path: str) -> tuple[AttributeUpdateSpec, ...]:
    updates = []
    for index, item in enumerate(_list(raw, path)):
        item_path = f"{path}[{index}]"
        body = _object(item, item_path)
        _only_keys(body, _UPDATE_KEYS, item_path)
        key = _text(body.get("field"), f"{item_path}.field", optional=True)
        fields = body.get("fields")
        updates.append(
            AttributeUpdateSpec(
                attribute=_text(body.get("attribute"), f"{item_path}.attribute"),
                mode=_text(body.get("mode"), f"{item_path}.mode"),
                field=key,
                type=_text(body.get("type"), f"{item_path}.type", optional=True),
                fields=()
                if fields is None
                else properties_from_config(fields, f"{item_path}.fields"),
            )
        )
    return tuple(updates)


def engagement_from_config(raw: Any) -> EngagementSpec:
    """``{"hubs_engaged": "<attribute>", …}``; a missing, null or empty value switches one off."""
    body = _object(raw, "engagement_attributes")
    _only_keys(body, ENGAGEMENT_KEYS, "engagement_attributes")
    return EngagementSpec(
        **{
            key: _text(value, f"engagement_attributes.{key}", optional=True)
            for key, value in body.items()
        }
    )


def transactional_from_config(raw: Any) -> tuple[TransactionalSpec, ...]:
    """``{"<Komo event>": {"campaign_id": "…", "trigger_properties": [...]}}``."""
    items = []
    for event, body in _object(raw, "transactional").items():
        path = f"transactional.{event}"
        body = _object(body, path)
        _only_keys(body, _TRANSACTIONAL_KEYS, path)
        trigger = body.get("trigger_properties")
        items.append(
            TransactionalSpec(
                event=event,
                campaign_id=_text(body.get("campaign_id"), f"{path}.campaign_id"),
                trigger_properties=None
                if trigger is None
                else properties_from_config(trigger, f"{path}.trigger_properties"),
            )
        )
    return tuple(items)


