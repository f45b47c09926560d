"""Plain, immutable description of a hub's delivery configuration.

This is the one shape shared by the hub JSON (import/export), the models (``Hub.to_spec()``) and the
pure mapping code (``integrations.mapping``). It knows nothing of Django models or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class FieldMappingSpec:
    field: str
    attribute: str
    type: str = "string"
    on_error: str = "skip"
    # Only for type "subscription": what an unticked box sends. None = nothing (the safe default).
    on_false: str | None = None


@dataclass(frozen=True)
class IdentitySpec:
    type: str
    field: str
    alias_label: str = ""


@dataclass(frozen=True)
class HubSpec:
    identity: IdentitySpec
    mappings: tuple[FieldMappingSpec, ...] = ()
    events: tuple[str, ...] = DEFAULT_EVENTS
    create_missing_users: bool = True
    default_phone_region: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def hub_spec_from_config(config: dict[str, Any]) -> HubSpec:
    """Build a HubSpec from the hub JSON (as in DESIGN.md). Assumes the config is already valid."""
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
            )
            for m in config.get("mappings", [])
        ),
        events=tuple(config.get("events") or DEFAULT_EVENTS),
        create_missing_users=bool(config.get("create_missing_users", True)),
        default_phone_region=(config.get("default_phone_region") or "").upper(),
    )
