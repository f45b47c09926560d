"""What a Komo moment becomes in Braze besides the mapped fields (pure: no I/O, no ORM).

* :func:`build_event`: the custom event of a rule whose landing includes one: name, ``time`` from
  Komo's ``timestamp`` (UTC ISO 8601) and the chosen properties, within Braze's event rules.
* :func:`rule_updates`: a rule's attribute updates: the latest value, a running total
  (``{"inc": n}``), collected answers (``{"add": [...]}``) or one nested object per card.
* :func:`engagement_values`: the hub's optional segmenting attributes.
* :func:`transactional_body`: the body of ``POST /transactional/v1/campaigns/{id}/send``.

A value that cannot be converted is a :class:`Problem` that never holds the submission (the
property or attribute is left out), except an unusable ``timestamp`` when an event is due: an
event needs its time. Names and values for Braze are never translated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from django.utils.translation import gettext_lazy as _

from integrations.braze.attributes import MAX_STRING_LENGTH
from integrations.spec import (
    ENTRY_EVENTS,
    PRIZE_EVENTS,
    AttributeUpdateSpec,
    EngagementSpec,
    EventRule,
    FieldMappingSpec,
    PropertySpec,
    default_property,
)
from integrations.values import (
    ABSENT,
    Problem,
    ValueProblem,
    convert_value,
    is_blank,
    to_array,
    to_number,
    to_string,
    to_utc_time,
)

TIMESTAMP_FIELD: Final = "timestamp"
MERGE_OBJECTS: Final = "_merge_objects"
# The nested card object of an "object" update holds these unless the update lists its own.
DEFAULT_CARD_OBJECT_FIELDS: Final = ("card_name", "card_type", "score", "correct")
CARD_OBJECT_TIME_KEY: Final = "updated_at"
# Braze's nested object keys may not contain spaces, "." or "$".
NESTED_KEY_FORBIDDEN: Final = re.compile(r"[\s.$]")


@dataclass(frozen=True)
class MappingContext:
    """What the portal knows about a submission beyond its payload.

    ``first_engagement``: this is the first submission of this person the hub delivers, so
    ``first_engaged_at`` may be set (Braze has no "set once"). False when unknown.
    ``latest_engagement``: no later submission of this person has been (or is being) delivered,
    so ``last_engaged_at`` may be set; False for an old row of a backfill delivered after newer
    live traffic, which would set the time back. True when unknown.
    """

    first_engagement: bool = False
    latest_engagement: bool = True


@dataclass(frozen=True)
class Converted:
    """Values for Braze plus the problems met while converting them."""

    values: dict[str, Any]
    problems: tuple[Problem, ...] = ()


def event_time(payload: Mapping[str, Any]) -> str:
    """Komo's ``timestamp`` as Braze's event time. Raises :class:`ValueProblem`."""
    return to_utc_time(payload.get(TIMESTAMP_FIELD))


def time_problem(problem: ValueProblem, *, held: bool) -> Problem:
    return Problem(
        field=TIMESTAMP_FIELD,
        attribute="",
        code=problem.code,
        message=problem.sentence(TIMESTAMP_FIELD),
        held=held,
    )


# --------------------------------------------------------------------------------------------
# Properties (of events, nested card objects and transactional trigger properties)


def convert_properties(
    properties: tuple[PropertySpec, ...],
    payload: Mapping[str, Any],
    *,
    owner: str,
    default_phone_region: str = "",
) -> Converted:
    """Each property's converted value, in order; a missing or blank one is left out.

    ``owner`` names where the values go (an event name, a transactional campaign) in problems.
    """
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for prop in properties:
        as_mapping = FieldMappingSpec(field=prop.field, attribute=prop.property, type=prop.type)
        try:
            value = convert_value(
                as_mapping, payload.get(prop.field), default_phone_region=default_phone_region
            )
        except ValueProblem as problem:
            problems.append(_skipped(prop.field, f"{owner}.{prop.property}", problem))
            continue
        if value is not ABSENT:
            values[prop.property] = value
    return Converted(values, tuple(problems))


def _skipped(field: str, attribute: str, problem: ValueProblem) -> Problem:
    return Problem(
        field=field,
        attribute=attribute,
        code=problem.code,
        message=problem.sentence(field),
        held=False,
    )


# --------------------------------------------------------------------------------------------
# The custom event


def build_event(
    rule: EventRule,
    identifier: Mapping[str, Any],
    payload: Mapping[str, Any],
    *,
    time: str,
    default_phone_region: str = "",
) -> tuple[dict[str, Any], tuple[Problem, ...]]:
    """One Braze event object: the identifier keys, ``name``, ``time`` and ``properties`` (left
    out when there are none)."""
    converted = convert_properties(
        rule.properties,
        payload,
        owner=rule.event_name,
        default_phone_region=default_phone_region,
    )
    event: dict[str, Any] = {**identifier, "name": rule.event_name, "time": time}
    if converted.values:
        event["properties"] = converted.values
    return event, converted.problems


# --------------------------------------------------------------------------------------------
# Attribute updates of a rule


def rule_updates(
    updates: tuple[AttributeUpdateSpec, ...],
    payload: Mapping[str, Any],
    *,
    time: str | None,
    default_phone_region: str = "",
) -> Converted:
    """The attribute values of a rule's updates; ``_merge_objects`` is among them when a card
    object is, so the card's object is merged into the others instead of replacing them."""
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for update in updates:
        try:
            value = _update_value(update, payload, time, default_phone_region, problems)
        except ValueProblem as problem:
            problems.append(_skipped(update.field or "card_id", update.attribute, problem))
            continue
        if value is ABSENT:
            continue
        if update.mode == "object":
            values[MERGE_OBJECTS] = True
        values[update.attribute] = value
    if MERGE_OBJECTS in values:  # a control flag: keep it after the values it steers
        values[MERGE_OBJECTS] = values.pop(MERGE_OBJECTS)
    return Converted(values, tuple(problems))


def _update_value(
    update: AttributeUpdateSpec,
    payload: Mapping[str, Any],
    time: str | None,
    region: str,
    problems: list[Problem],
) -> Any:
    raw = payload.get(update.field) if update.field else None
    if update.mode == "set":
        value_type = update.type or default_property(update.field).type
        mapping = FieldMappingSpec(field=update.field, attribute=update.attribute, type=value_type)
        return convert_value(mapping, raw, default_phone_region=region)
    if update.mode == "inc":
        return _increment(update, raw)
    if update.mode == "add":
        items = to_array(raw)
        return items if items is ABSENT else {"add": items}
    if update.mode == "object":
        return _card_object(update, payload, time, region, problems)
    raise ValueError(f"unknown update mode {update.mode!r}")


def _increment(update: AttributeUpdateSpec, raw: Any) -> Any:
    if not update.field:
        return {"inc": 1}
    if is_blank(raw):
        return ABSENT
    amount = to_number(raw)
    # Adding 0 changes nothing but still costs a Braze data point.
    return ABSENT if amount == 0 else {"inc": amount}


def _card_object(
    update: AttributeUpdateSpec,
    payload: Mapping[str, Any],
    time: str | None,
    region: str,
    problems: list[Problem],
) -> Any:
    """``{card_id: {...}}``; a field that cannot be converted is left out (with a problem)."""
    raw_card = payload.get("card_id")
    if is_blank(raw_card):
        return ABSENT  # not a card event (e.g. CouponIssued): nothing to file it under
    card_id = to_string(raw_card)
    if NESTED_KEY_FORBIDDEN.search(card_id):
        raise ValueProblem(
            "invalid_card_id",
            _("“{field}” cannot name a Braze nested object (it contains a space, “.” or “$”)."),
        )
    fields = update.fields or tuple(default_property(key) for key in DEFAULT_CARD_OBJECT_FIELDS)
    converted = convert_properties(
        fields, payload, owner=update.attribute, default_phone_region=region
    )
    problems.extend(converted.problems)
    card = dict(converted.values)
    if time is not None:
        card[CARD_OBJECT_TIME_KEY] = {"$time": time}
    return {card_id: card}


# --------------------------------------------------------------------------------------------
# Engagement attributes


def engagement_values(
    engagement: EngagementSpec,
    payload: Mapping[str, Any],
    *,
    time: str | None,
    context: MappingContext,
) -> Converted:
    """The hub's segmenting attributes for one delivered submission.

    ``hubs_engaged`` adds Komo's ``site_name`` (or ``site_id``); ``first_engaged_at`` (only on a
    first engagement, see :class:`MappingContext`) and ``last_engaged_at`` take the event time;
    ``entries`` counts competition entries; ``prizes_won`` adds the prize name.
    """
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    event = str(payload.get("event") or "")
    for key, attribute in engagement.items():
        try:
            value = _engagement_value(key, payload, event, time, context)
        except ValueProblem as problem:
            problems.append(_skipped(_ENGAGEMENT_SOURCE.get(key, ""), attribute, problem))
            continue
        if value is not ABSENT:
            values[attribute] = value
    return Converted(values, tuple(problems))


_ENGAGEMENT_SOURCE: Final = {"hubs_engaged": "site_name", "prizes_won": "prize_name"}


def _engagement_value(
    key: str, payload: Mapping[str, Any], event: str, time: str | None, context: MappingContext
) -> Any:
    if key == "hubs_engaged":
        site = payload.get("site_name")
        return _added(site if not is_blank(site) else payload.get("site_id"))
    if key == "last_engaged_at":
        return time if time is not None and context.latest_engagement else ABSENT
    if key == "first_engaged_at":
        return time if time is not None and context.first_engagement else ABSENT
    if key == "entries":
        return {"inc": 1} if event in ENTRY_EVENTS else ABSENT
    if key == "prizes_won":
        return _added(payload.get("prize_name")) if event in PRIZE_EVENTS else ABSENT
    raise ValueError(f"unknown engagement attribute {key!r}")


def _added(raw: Any) -> Any:
    if is_blank(raw):
        return ABSENT
    return {"add": [to_string(raw)]}


# --------------------------------------------------------------------------------------------
# Transactional email


RECIPIENT_ATTRIBUTES: Final = ("email", "first_name", "last_name")
EXTERNAL_SEND_ID: Final = re.compile(r"^[a-zA-Z0-9-_+/=]+$")


def transactional_recipient(
    identifier: Mapping[str, Any],
    attributes: Mapping[str, Any] | None,
    *,
    alias_email: str = "",
    create: bool = True,
) -> dict[str, Any]:
    """Braze's ``recipient``: ``external_user_id`` or ``user_alias``, plus the person's email and
    names from the submission's attributes (Braze writes these before sending, so a person created
    a moment ago already has an address). ``alias_email``: the address an email alias stands for,
    used when no mapping sets ``email``. With ``create`` false no attributes are sent, because
    they would create a person the hub is told not to create.

    Raises ValueError for identifiers the transactional API cannot address.
    """
    if "external_id" in identifier:
        recipient: dict[str, Any] = {"external_user_id": identifier["external_id"]}
    elif "user_alias" in identifier:
        recipient = {"user_alias": dict(identifier["user_alias"])}
    else:
        raise ValueError("Braze's transactional API addresses external_id or user_alias only")
    known = {key: attributes[key] for key in RECIPIENT_ATTRIBUTES if key in (attributes or {})}
    if alias_email and "email" not in known:
        known = {"email": alias_email, **known}
    if known and create:
        recipient["attributes"] = known
    return recipient


def transactional_body(
    *,
    recipient: Mapping[str, Any],
    trigger_properties: Mapping[str, Any],
    external_send_id: str,
) -> dict[str, Any]:
    if (
        not EXTERNAL_SEND_ID.fullmatch(external_send_id)
        or len(external_send_id) > MAX_STRING_LENGTH
    ):
        raise ValueError("external_send_id must match ^[a-zA-Z0-9-_+/=]+$")
    body: dict[str, Any] = {"external_send_id": external_send_id, "recipient": dict(recipient)}
    if trigger_properties:
        body["trigger_properties"] = dict(trigger_properties)
    return body
