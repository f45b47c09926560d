"""Pure mapping of one Komo submission onto the Braze objects of a ``/users/track`` request.

No ORM, no HTTP, no settings: the same input always gives the same output, so the worker, the
preview page and the tests all agree on what Braze receives.

Contract of :func:`map_submission`:

* The submission's event rule (:func:`integrations.spec.resolve_event_rule`: the kind's default,
  the hub's rule for the kind, the rule's override for the card type) says where it lands:

  - ``attributes``: one attributes object: the identifier, the mapped fields (in mapping order),
    ``subscription_groups`` from subscription mappings with a group, the rule's attribute
    updates, the hub's engagement attributes;
  - ``event``: one custom event (name, ``time`` from Komo's ``timestamp``, the chosen
    properties), plus an attributes object only for engagement attributes or when Braze must
    create an alias-identified person first (attributes are processed before events, and an
    event alone never creates an alias);
  - ``both``: both, in the same request (the objects of a submission are never split);
  - ``none``: nothing; the submission is held with the reason, so it stays visible, unsent.

* Only mapped Komo keys reach the attributes, in mapping order; unmapped keys never do.
* A missing, ``null`` or blank value is *absent*: nothing is sent and no problem is recorded. Two
  types give blank a meaning: ``boolean`` (``""`` is false) and ``subscription`` (``""`` is an
  unticked box, which sends nothing unless the mapping has ``on_false``).
* A value its type rejects is a :class:`Problem`. With ``on_error="skip"`` the field is dropped and
  the rest is delivered; with ``on_error="hold"`` the whole submission is held (``attributes`` is
  ``None``, ``events`` empty). A missing or invalid identity always holds, and so does an unusable
  ``timestamp`` when an event is due. Event properties, rule updates and engagement attributes
  that cannot be converted are left out with a problem.
* It never raises for any payload; it raises ``ValueError`` only for a spec that
  :func:`integrations.validation.validate_hub_spec` would have refused.
* The output is plain JSON (str, int, float, bool, list, dict).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from integrations.braze.attributes import IDENTIFIER_KEYS, MAX_STRING_LENGTH
from integrations.event_mapping import (
    MERGE_OBJECTS,
    MappingContext,
    build_event,
    convert_properties,
    engagement_values,
    event_time,
    rule_updates,
    time_problem,
    transactional_body,
    transactional_recipient,
)
from integrations.reasons import message_parts, reason
from integrations.spec import (
    ATTRIBUTE_LANDINGS,
    EVENT_LANDINGS,
    IDENTITY_TYPES,
    LANDINGS,
    ON_ERROR_CHOICES,
    PROPERTY_TYPES,
    UPDATE_MODES,
    VALUE_TYPES,
    EventRule,
    FieldMappingSpec,
    HubSpec,
    IdentitySpec,
    resolve_event_rule,
    transactional_for,
    trigger_properties_of,
)
from integrations.values import (
    ABSENT,
    Absent,
    BrazeValue,
    Message,
    Problem,
    ValueProblem,
    convert_value,
    is_blank,
    normalise_email,
    normalise_phone,
    scalar_text,
)

__all__ = [
    "ABSENT",
    "ALIAS_IDENTITY_TYPES",
    "Absent",
    "BrazeValue",
    "MappingContext",
    "MappingResult",
    "Message",
    "Problem",
    "TransactionalRequest",
    "ValueProblem",
    "convert_value",
    "identify",
    "map_submission",
    "reserved_attributes",
    "transactional_request",
]

ALIAS_IDENTITY_TYPES: Final = frozenset({"alias_email", "alias_phone"})
# Braze's identifier precedence makes these plain attributes collide with the identifier itself.
_IDENTIFIER_ATTRIBUTE: Final[dict[str, str]] = {"email": "email", "phone": "phone"}
# A subscription mapping to this name sets only its subscription group, no attribute.
SUBSCRIPTION_GROUPS: Final = "subscription_groups"
# Braze's group states: an opt-in is "subscribed"; there is no "opted_in" for groups.
_GROUP_STATES: Final[dict[str, str]] = {
    "opted_in": "subscribed",
    "subscribed": "subscribed",
    "unsubscribed": "unsubscribed",
}


@dataclass(frozen=True)
class MappingResult:
    """The Braze objects for one submission, or why it is held."""

    attributes: dict[str, Any] | None  # one attributes object incl. identifier; None when none
    events: list[dict[str, Any]]  # Braze event objects for the same person
    problems: list[Problem]
    identity_value: str  # normalised identity value; "" when missing or invalid

    @property
    def held(self) -> bool:
        return any(problem.held for problem in self.problems)

    @property
    def deliverable(self) -> bool:
        return not self.held and (self.attributes is not None or bool(self.events))

    @property
    def hold_reason(self) -> str:
        """Empty when deliverable, else the held problems' messages joined with "; "."""
        return "; ".join(str(problem.message) for problem in self.problems if problem.held)


# --------------------------------------------------------------------------------------------
# Submission


def map_submission(
    spec: HubSpec, payload: Mapping[str, Any], *, context: MappingContext | None = None
) -> MappingResult:
    """Map a flat Komo payload onto Braze objects (see the module docstring)."""
    _require_supported(spec)
    context = context or MappingContext()
    problems: list[Problem] = []
    identifier: dict[str, Any] | None = None
    identity_value = ""
    try:
        identifier, identity_value = identify(spec, payload.get(spec.identity.field))
    except ValueProblem as problem:
        problems.append(_identity_problem(spec.identity, problem))
    event, card_type = _text_of(payload.get("event")), _text_of(payload.get("card_type"))
    rule = resolve_event_rule(spec, event=event, card_type=card_type)
    if rule.landing == "none":
        problems.append(_not_sent_problem(event, card_type))
        return MappingResult(None, [], problems, identity_value)
    time = _time(spec, payload, rule, problems)
    values = _attribute_values(spec, payload, rule, time, context, problems)
    events: list[dict[str, Any]] = []
    if identifier is not None and time is not None and rule.landing in EVENT_LANDINGS:
        event_object, event_problems = build_event(
            rule, identifier, payload, time=time, default_phone_region=spec.default_phone_region
        )
        events.append(event_object)
        problems.extend(event_problems)
    if identifier is None or any(problem.held for problem in problems):
        return MappingResult(None, [], problems, identity_value)
    attributes = (
        {**identifier, **values}
        if rule.landing in ATTRIBUTE_LANDINGS or values or _needs_creation(spec, identifier, events)
        else None
    )
    return MappingResult(attributes, events, problems, identity_value)


def _text_of(raw: Any) -> str:
    return raw.strip() if isinstance(raw, str) else ""


def _time(
    spec: HubSpec, payload: Mapping[str, Any], rule: EventRule, problems: list[Problem]
) -> str | None:
    """Braze's time of this moment, or None (with a problem when something needs it)."""
    try:
        return event_time(payload)
    except ValueProblem as problem:
        needs_event = rule.landing in EVENT_LANDINGS
        if needs_event or _uses_time(spec, rule):
            problems.append(time_problem(problem, held=needs_event))
        return None


def _uses_time(spec: HubSpec, rule: EventRule) -> bool:
    card_objects = rule.landing in ATTRIBUTE_LANDINGS and any(
        update.mode == "object" for update in rule.updates
    )
    return card_objects or bool(spec.engagement.first_engaged_at or spec.engagement.last_engaged_at)


def _attribute_values(
    spec: HubSpec,
    payload: Mapping[str, Any],
    rule: EventRule,
    time: str | None,
    context: MappingContext,
    problems: list[Problem],
) -> dict[str, Any]:
    """Mapped fields, subscription groups and rule updates (attribute landings only), then the
    engagement attributes; ``_merge_objects`` last."""
    region = spec.default_phone_region
    values: dict[str, Any] = {}
    if rule.landing in ATTRIBUTE_LANDINGS:
        mapped, mapping_problems = _mapped_values(spec, payload)
        values.update(mapped)
        problems.extend(mapping_problems)
        updates = rule_updates(rule.updates, payload, time=time, default_phone_region=region)
        values.update(updates.values)
        problems.extend(updates.problems)
    engagement = engagement_values(spec.engagement, payload, time=time, context=context)
    values.update(engagement.values)
    problems.extend(engagement.problems)
    if MERGE_OBJECTS in values:
        values[MERGE_OBJECTS] = values.pop(MERGE_OBJECTS)
    return values


def _needs_creation(
    spec: HubSpec, identifier: Mapping[str, Any], events: list[dict[str, Any]]
) -> bool:
    """An event alone never creates an alias-identified person in Braze; the identifier-only
    attributes object in front of it does (when the hub creates people at all)."""
    return (
        bool(events)
        and spec.identity.type in ALIAS_IDENTITY_TYPES
        and identifier.get("_update_existing_only") is False
    )


def _not_sent_problem(event: str, card_type: str) -> Problem:
    if card_type:
        message = format_lazy(
            _(
                "Komo's “{event}” events from “{card_type}” cards are set to land nowhere in "
                "Braze (event rules): stored here, not sent."
            ),
            event=event,
            card_type=card_type,
        )
    else:
        message = format_lazy(
            _(
                "Komo's “{event}” events are set to land nowhere in Braze (event rules): stored "
                "here, not sent."
            ),
            event=event,
        )
    return Problem(field="event", attribute="", code="not_sent_by_rule", message=message, held=True)


def identify(spec: HubSpec, raw: Any) -> tuple[dict[str, Any], str]:
    """The identifier keys (incl. ``_update_existing_only``) and the normalised identity value.

    ``_update_existing_only`` is always explicit, because Braze's defaults differ per identifier
    (aliases default to update-only, external_id to create): it is ``not create_missing_users``,
    except for ``braze_id``, which Braze cannot create, so it is always true.
    Raises :class:`ValueProblem` with code ``missing_identity`` or ``invalid_identity``.
    """
    identity = spec.identity
    if is_blank(raw):
        raise ValueProblem(
            "missing_identity",
            _(
                "The identity field “{field}” is missing or empty, so the person cannot be "
                "identified in Braze."
            ),
        )
    try:
        value = _IDENTITY_NORMALISERS[identity.type](raw, spec.default_phone_region)
    except ValueProblem:
        raise ValueProblem("invalid_identity", _INVALID_IDENTITY_MESSAGES[identity.type]) from None
    update_existing_only = True if identity.type == "braze_id" else not spec.create_missing_users
    keys = {**_identifier_keys(identity, value), "_update_existing_only": update_existing_only}
    return keys, value


def _identifier_keys(identity: IdentitySpec, value: str) -> dict[str, Any]:
    if identity.type in ALIAS_IDENTITY_TYPES:
        return {"user_alias": {"alias_name": value, "alias_label": identity.alias_label}}
    return {identity.type: value}  # external_id, braze_id, email and phone are the key names


def _identity_problem(identity: IdentitySpec, problem: ValueProblem) -> Problem:
    return Problem(
        field=identity.field,
        attribute="",
        code=problem.code,
        message=problem.sentence(identity.field),
        held=True,
    )


def _mapped_values(
    spec: HubSpec, payload: Mapping[str, Any]
) -> tuple[dict[str, BrazeValue | list[dict[str, str]]], list[Problem]]:
    reserved = reserved_attributes(spec.identity.type)
    values: dict[str, Any] = {}
    groups: list[dict[str, str]] = []
    problems: list[Problem] = []
    for mapping in spec.mappings:
        if mapping.attribute in reserved:
            continue
        try:
            value = convert_value(
                mapping,
                payload.get(mapping.field),
                default_phone_region=spec.default_phone_region,
            )
        except ValueProblem as problem:
            problems.append(_mapping_problem(mapping, problem))
            continue
        if value is ABSENT:
            continue
        if mapping.subscription_group_id and isinstance(value, str):
            groups.append(
                {
                    "subscription_group_id": mapping.subscription_group_id,
                    "subscription_state": _GROUP_STATES[value],
                }
            )
        if mapping.attribute != SUBSCRIPTION_GROUPS:
            values[mapping.attribute] = value
    if groups:
        values[SUBSCRIPTION_GROUPS] = groups
    return values, problems


def reserved_attributes(identity_type: str) -> frozenset[str]:
    """Attribute names a mapping may not set because the identity sets them: the identifier wins.

    With identity type ``email`` (or ``phone``) Braze reads ``email`` (``phone``) as the
    identifier, so a mapping to it would change who is updated; such a mapping is ignored here and
    refused by validation.
    """
    own = _IDENTIFIER_ATTRIBUTE.get(identity_type)
    return IDENTIFIER_KEYS | {own} if own else IDENTIFIER_KEYS


def _mapping_problem(mapping: FieldMappingSpec, problem: ValueProblem) -> Problem:
    return Problem(
        field=mapping.field,
        attribute=mapping.attribute,
        code=problem.code,
        message=problem.sentence(mapping.field),
        held=mapping.on_error == "hold",
    )


def _require_supported(spec: HubSpec) -> None:
    if spec.identity.type not in IDENTITY_TYPES:
        raise ValueError(f"unknown identity type {spec.identity.type!r}")
    if spec.identity.type in ALIAS_IDENTITY_TYPES and not spec.identity.alias_label:
        raise ValueError("an alias identity needs an alias_label")
    for mapping in spec.mappings:
        if mapping.type not in VALUE_TYPES:
            raise ValueError(f"unknown value type {mapping.type!r} for {mapping.field!r}")
        if mapping.on_error not in ON_ERROR_CHOICES:
            raise ValueError(f"unknown on_error {mapping.on_error!r} for {mapping.field!r}")
    for configured in spec.event_rules:
        for patch in (configured.patch, *(override.patch for override in configured.card_types)):
            if patch.landing is not None and patch.landing not in LANDINGS:
                raise ValueError(f"unknown landing {patch.landing!r} for {configured.event!r}")
            for prop in patch.properties or ():
                if prop.type not in PROPERTY_TYPES:
                    raise ValueError(f"unknown property type {prop.type!r}")
            for update in patch.updates or ():
                if update.mode not in UPDATE_MODES:
                    raise ValueError(f"unknown update mode {update.mode!r}")
                if update.type and (
                    update.type not in VALUE_TYPES or update.type == "subscription"
                ):
                    raise ValueError(f"unusable update type {update.type!r}")


# --------------------------------------------------------------------------------------------
# Transactional email


@dataclass(frozen=True)
class TransactionalRequest:
    """The transactional send a submission asks for: the body, or why it cannot be sent."""

    campaign_id: str
    body: dict[str, Any] | None
    problem: str = ""  # in the reader's language; "" when ``body`` is set
    problem_reason: dict[str, Any] | None = None  # the same as reasons.py code + params


def transactional_request(
    spec: HubSpec, payload: Mapping[str, Any], *, external_send_id: str
) -> TransactionalRequest | None:
    """The Braze transactional send for this submission's Komo moment, None when the hub maps no
    campaign to it. Trigger properties that cannot be converted are left out."""
    item = transactional_for(spec, _text_of(payload.get("event")))
    if item is None:
        return None
    result = map_submission(spec, payload)
    if not result.deliverable:
        return TransactionalRequest(item.campaign_id, None, result.hold_reason, reason(
            "held", messages=[message_parts(p.message) for p in result.problems if p.held]))
    identifier, identity_value = identify(spec, payload.get(spec.identity.field))
    mapped, _problems = _mapped_values(spec, payload)
    try:
        recipient = transactional_recipient(
            identifier,
            mapped,
            alias_email=identity_value if spec.identity.type == "alias_email" else "",
            create=spec.create_missing_users,
        )
    except ValueError:
        problem = format_lazy(
            _(
                "Braze's transactional emails address people by external ID or user "
                "alias; this hub identifies them by “{identity}”."
            ),
            identity=spec.identity.type,
        )
        return TransactionalRequest(item.campaign_id, None, str(problem),
                                    reason("message", message=message_parts(problem)))
    trigger = convert_properties(
        trigger_properties_of(item),
        payload,
        owner=item.campaign_id,
        default_phone_region=spec.default_phone_region,
    )
    body = transactional_body(
        recipient=recipient, trigger_properties=trigger.values, external_send_id=external_send_id
    )
    return TransactionalRequest(item.campaign_id, body)


# --------------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------------
# Identity values


def _identifier_text(raw: Any, _region: str) -> str:
    """external_id / braze_id: the trimmed text of a scalar, at most 255 characters."""
    text = scalar_text(raw).strip()
    if not text or len(text) > MAX_STRING_LENGTH:
        raise ValueProblem("invalid_identity", "")
    return text


_IDENTITY_NORMALISERS: Final[dict[str, Callable[[Any, str], str]]] = {
    "external_id": _identifier_text,
    "braze_id": _identifier_text,
    "alias_email": lambda raw, region: normalise_email(raw),
    "email": lambda raw, region: normalise_email(raw),
    "alias_phone": normalise_phone,
    "phone": normalise_phone,
}

_NOT_AN_ID: Final = _(
    "The identity field “{field}” is not a usable ID (text of at most 255 characters), so the "
    "person cannot be identified in Braze."
)
_NOT_AN_EMAIL_ID: Final = _(
    "The identity field “{field}” is not a valid email address, so the person cannot be "
    "identified in Braze."
)
_NOT_A_PHONE_ID: Final = _(
    "The identity field “{field}” is not a valid phone number, so the person cannot be "
    "identified in Braze."
)
_INVALID_IDENTITY_MESSAGES: Final[dict[str, Message]] = {
    "external_id": _NOT_AN_ID,
    "braze_id": _NOT_AN_ID,
    "alias_email": _NOT_AN_EMAIL_ID,
    "email": _NOT_AN_EMAIL_ID,
    "alias_phone": _NOT_A_PHONE_ID,
    "phone": _NOT_A_PHONE_ID,
}
