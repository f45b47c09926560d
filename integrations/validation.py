"""Pure validation of a hub's delivery configuration (a :class:`HubSpec`).

Used by the admin forms and the hub JSON import: every error names where it is (``path``, in the
hub JSON's terms, e.g. ``"mappings[2].attribute"``) and says what to do in a translatable
sentence. A spec with no errors is one :func:`integrations.mapping.map_submission` accepts.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

import phonenumbers
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from integrations.braze.attributes import IDENTIFIER_KEYS, MAX_STRING_LENGTH, STANDARD_ATTRIBUTES
from integrations.mapping import ALIAS_IDENTITY_TYPES, Message, reserved_attributes
from integrations.spec import (
    DOCUMENTED_EVENTS,
    ENGAGEMENT_KEYS,
    IDENTITY_TYPES,
    LANDINGS,
    MAX_NAME_LENGTH,
    ON_ERROR_CHOICES,
    PROPERTY_TYPES,
    TEXT_KOMO_KEYS,
    TRANSACTIONAL_IDENTITY_TYPES,
    UPDATE_MODES,
    VALUE_TYPES,
    AttributeUpdateSpec,
    FieldMappingSpec,
    HubSpec,
    IdentitySpec,
    PropertySpec,
    RulePatch,
    default_event_rule,
)

# Envelope keys that describe the event, not the person: mapping them would copy the same event id
# or time onto profiles. Other fixed keys (score, card_name, prize_name, …) are fair game.
NON_CAPTURABLE_FIELDS: Final = frozenset({"id", "event", "timestamp"})
ON_FALSE_CHOICES: Final = ("subscribed", "unsubscribed")
_PHONE_TYPES: Final = frozenset({"phone", "alias_phone"})
# Identity types whose submissions store no person key, so no first engagement can be known.
_NO_PERSON_KEY: Final = frozenset({"braze_id"})
SUBSCRIPTION_GROUPS: Final = "subscription_groups"
MAX_EVENT_PROPERTIES: Final = 256
RESERVED_EVENT_PROPERTIES: Final = frozenset({"time", "event_name"})
# Komo event names are identifiers such as CompetitionEntrySuccess.
_EVENT_KIND: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,199}")
# Braze ids are UUIDs; this also keeps them safe in a URL path and in our own columns.
_BRAZE_ID_TEXT: Final = re.compile(r"[A-Za-z0-9_-]{1,100}")
_NESTED_KEY_FORBIDDEN: Final = re.compile(r"[\s.$]")
# Keys of an attributes object that are flags for Braze, not attributes (the mapping sets them).
_CONTROL_KEYS: Final = frozenset({"_merge_objects", "push_token_import"})


@dataclass(frozen=True)
class ConfigError:
    path: str  # where in the hub JSON, e.g. "identity.alias_label" or "mappings[0].type"
    message: Message  # translatable sentence


def validate_hub_spec(spec: HubSpec, known_fields: set[str] | None = None) -> list[ConfigError]:
    """Every problem with the spec, in the order of the hub JSON; [] when it is valid.

    ``known_fields``: the Komo fields the hub is known to capture. When given, an identity or
    mapping field outside it is an error (a typo would otherwise hold or drop every submission).
    """
    return [
        *_identity_errors(spec.identity, known_fields),
        *_event_kind_spelling_errors(spec),
        *_mappings_errors(spec, known_fields),
        *_phone_region_errors(spec),
        *_event_rules_errors(spec),
        *_engagement_errors(spec),
        *_transactional_errors(spec),
    ]


# --------------------------------------------------------------------------------------------
# Identity


def _identity_errors(
    identity: IdentitySpec, known_fields: set[str] | None
) -> Iterator[ConfigError]:
    if identity.type not in IDENTITY_TYPES:
        yield ConfigError(
            "identity.type",
            format_lazy(
                _("“{type}” is not an identity type; choose one of {choices}."),
                type=identity.type,
                choices=", ".join(IDENTITY_TYPES),
            ),
        )
    field_error = _komo_field_error(identity.field, known_fields)
    if field_error is not None:
        yield ConfigError("identity.field", field_error)
    if identity.type in ALIAS_IDENTITY_TYPES and not identity.alias_label.strip():
        yield ConfigError(
            "identity.alias_label",
            _("An alias identity needs an alias label (for example “email”)."),
        )


def _komo_field_error(field: str, known_fields: set[str] | None) -> Message | None:
    if not field.strip():
        return _("Enter the Komo field.")
    if field in NON_CAPTURABLE_FIELDS:
        return format_lazy(
            _("“{field}” describes the Komo event, not the person; it cannot be used here."),
            field=field,
        )
    if known_fields is not None and field not in known_fields:
        return format_lazy(_("“{field}” is not a field this hub captures."), field=field)
    return None


# --------------------------------------------------------------------------------------------
# Mappings


def _mappings_errors(spec: HubSpec, known_fields: set[str] | None) -> Iterator[ConfigError]:
    first_use: dict[str, int] = {}
    first_group: dict[str, int] = {}
    reserved = reserved_attributes(spec.identity.type)
    for index, mapping in enumerate(spec.mappings):
        path = f"mappings[{index}]"
        field_error = _komo_field_error(mapping.field, known_fields)
        if field_error is not None:
            yield ConfigError(f"{path}.field", field_error)
        yield from _type_errors(mapping, path)
        attribute_error = _attribute_error(mapping, spec.identity.type, reserved)
        if attribute_error is None and mapping.attribute in first_use:
            attribute_error = _duplicate_attribute(mapping.attribute, first_use[mapping.attribute])
        if attribute_error is not None:
            yield ConfigError(f"{path}.attribute", attribute_error)
        first_use.setdefault(mapping.attribute, index)
        group_error = _group_error(mapping, first_group)
        if group_error is not None:
            yield ConfigError(f"{path}.subscription_group_id", group_error)
        if mapping.subscription_group_id:
            first_group.setdefault(mapping.subscription_group_id, index)


def _duplicate_attribute(attribute: str, first_index: int) -> Message:
    if attribute == SUBSCRIPTION_GROUPS:
        return format_lazy(
            _(
                "Mapping {number} already sets only a subscription group; for another group, map "
                "this field to its own attribute too (for example “sms_optin”)."
            ),
            number=first_index + 1,
        )
    return format_lazy(
        _("“{attribute}” is already set by mapping {number}; Braze can take one value."),
        attribute=attribute,
        number=first_index + 1,
    )


def _group_error(mapping: FieldMappingSpec, first_group: dict[str, int]) -> Message | None:
    group = mapping.subscription_group_id
    if not group:
        return None
    if mapping.type != "subscription":
        return _("A subscription group only applies to the subscription type.")
    if not _BRAZE_ID_TEXT.fullmatch(group):
        return _(
            "This is not a Braze subscription group ID: copy it from Braze (Audience › "
            "Subscriptions); it has letters, digits and “-” only."
        )
    if group in first_group:
        return format_lazy(
            _("Mapping {number} already sets this subscription group."),
            number=first_group[group] + 1,
        )
    return None


def _type_errors(mapping: FieldMappingSpec, path: str) -> Iterator[ConfigError]:
    if mapping.type not in VALUE_TYPES:
        yield ConfigError(
            f"{path}.type",
            format_lazy(
                _("“{type}” is not a value type; choose one of {choices}."),
                type=mapping.type,
                choices=", ".join(VALUE_TYPES),
            ),
        )
    if mapping.on_error not in ON_ERROR_CHOICES:
        yield ConfigError(
            f"{path}.on_error",
            format_lazy(
                _("“{on_error}” is not a choice; use “skip” or “hold”."), on_error=mapping.on_error
            ),
        )
    if mapping.on_false is None:
        return
    if mapping.type != "subscription":
        yield ConfigError(
            f"{path}.on_false",
            _("“On false” only applies to the subscription type; remove it or change the type."),
        )
    elif mapping.on_false not in ON_FALSE_CHOICES:
        yield ConfigError(
            f"{path}.on_false",
            _("“On false” must be “subscribed” or “unsubscribed” (or empty to send nothing)."),
        )


def _attribute_error(
    mapping: FieldMappingSpec, identity_type: str, reserved: frozenset[str]
) -> Message | None:
    """The first thing wrong with the mapping's Braze attribute name, or None."""
    error = _attribute_name_error(mapping.attribute)
    if error is None:
        error = _identifier_attribute_error(mapping.attribute, identity_type, reserved)
    if error is None:
        error = _standard_attribute_error(mapping)
    return error


def _attribute_name_error(attribute: str) -> Message | None:
    if not attribute.strip():
        return _("Enter the Braze attribute name.")
    if attribute != attribute.strip():
        return _("Remove the spaces at the start or end of the attribute name.")
    if len(attribute) > MAX_STRING_LENGTH:
        return format_lazy(
            _("Braze attribute names have at most {limit} characters."), limit=MAX_STRING_LENGTH
        )
    if attribute.startswith("$"):
        return _("Braze attribute names cannot start with “$”.")
    if attribute in _CONTROL_KEYS:
        return format_lazy(
            _("“{attribute}” steers how Braze processes the object; it is not an attribute."),
            attribute=attribute,
        )
    return None


def _identifier_attribute_error(
    attribute: str, identity_type: str, reserved: frozenset[str]
) -> Message | None:
    if attribute.lower() in IDENTIFIER_KEYS:
        return format_lazy(
            _("“{attribute}” identifies the user in Braze; it is set by the hub's identity."),
            attribute=attribute,
        )
    if attribute in reserved:
        return format_lazy(
            _(
                "With the identity type “{identity}”, “{attribute}” is the identifier itself and "
                "comes from the identity field; remove this mapping."
            ),
            identity=identity_type,
            attribute=attribute,
        )
    return None


def _standard_attribute_error(mapping: FieldMappingSpec) -> Message | None:
    attribute = mapping.attribute
    if attribute not in STANDARD_ATTRIBUTES:
        standard = standard_attribute_near(attribute)
        if standard is None:
            return None
        return format_lazy(
            _(
                "Braze attribute names are exact, so “{attribute}” would be a new custom "
                "attribute: did you mean “{standard}”?"
            ),
            attribute=attribute,
            standard=standard,
        )
    required = STANDARD_ATTRIBUTES[attribute]
    if attribute == SUBSCRIPTION_GROUPS:
        if mapping.subscription_group_id:
            return None  # a consent field that sets only its group (checked by _group_error)
        return _("To set a subscription group, use the subscription type and enter the group's ID.")
    if required is None:
        return format_lazy(
            _("“{attribute}” needs a structured value that one Komo field cannot provide."),
            attribute=attribute,
        )
    if mapping.type in VALUE_TYPES and mapping.type != required:
        return format_lazy(
            _("“{attribute}” needs the type “{required}”."), attribute=attribute, required=required
        )
    return None


def _spelling_key(attribute: str) -> str:
    return "".join(character for character in attribute.lower() if character.isalnum())


# "First_Name", "FirstName" and "first name" all mean first_name to a person, not to Braze.
_STANDARD_SPELLINGS: Final[dict[str, str]] = {
    _spelling_key(name): name for name in STANDARD_ATTRIBUTES
}
# Names people use for a standard attribute that Braze spells differently (spelling keys).
_STANDARD_SYNONYMS: Final[dict[str, str]] = {
    "dateofbirth": "dob",
    "birthdate": "dob",
    "birthday": "dob",
    "surname": "last_name",
    "familyname": "last_name",
    "givenname": "first_name",
    "firstname": "first_name",
    "mobile": "phone",
    "mobilenumber": "phone",
    "phonenumber": "phone",
    "emailaddress": "email",
    "city": "home_city",
    "timezone": "time_zone",
    "sex": "gender",
    "emailoptin": "email_subscribe",
    "emailsubscription": "email_subscribe",
}


def standard_attribute_near(attribute: str) -> str | None:
    """The standard Braze attribute ``attribute`` is probably meant to be, or None.

    Case, spaces and "_" aside (``First_Name``), a known synonym (``date_of_birth`` → ``dob``), or
    one slip of the keyboard: a letter missing, extra, wrong or two swapped (``frist_name``,
    ``email_subscibe``). Names differing only in digits (``phone2``) are taken as meant.
    """
    if attribute in STANDARD_ATTRIBUTES:
        return None
    key = _spelling_key(attribute)
    found = _STANDARD_SPELLINGS.get(key) or _STANDARD_SYNONYMS.get(key)
    if found is not None or len(key) < 4:
        return found
    letters = "".join(character for character in key if not character.isdigit())
    for candidate_key, standard in _STANDARD_SPELLINGS.items():
        if letters == candidate_key:
            return None
        if edit_distance(key, candidate_key, limit=1) <= 1:
            return standard
    return None


def edit_distance(first: str, second: str, *, limit: int = 2) -> int:
    """Optimal string alignment distance (insert, delete, replace, swap two neighbours), or
    ``limit + 1`` as soon as it is certainly more than ``limit``."""
    if abs(len(first) - len(second)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(second) + 1))
    for i, a in enumerate(first, start=1):
        current = [i] + [0] * len(second)
        for j, b in enumerate(second, start=1):
            cost = 0 if a == b else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a == second[j - 2] and first[i - 2] == b:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


# --------------------------------------------------------------------------------------------
# Event kinds: Komo's own names, or confirmed as new


def event_kind_near(event: str) -> str | None:
    """The documented Komo event kind ``event`` probably means, or None."""
    if event in DOCUMENTED_EVENTS:
        return None
    by_case = {kind.casefold(): kind for kind in DOCUMENTED_EVENTS}
    if event.casefold() in by_case:
        return by_case[event.casefold()]
    close = difflib.get_close_matches(event, list(DOCUMENTED_EVENTS), n=1, cutoff=0.85)
    return close[0] if close else None


def event_kind_unknown_error(event: str) -> Message | None:
    """Why ``event`` cannot be used without a confirmation, or None (documented kinds)."""
    if event in DOCUMENTED_EVENTS:
        return None
    near = event_kind_near(event)
    if near is not None:
        return format_lazy(
            _(
                "“{event}” is not a Komo event kind: did you mean “{near}”? Komo's names are "
                "exact; with a misspelt kind every webhook would be stored as ignored."
            ),
            event=event,
            near=near,
        )
    return format_lazy(
        _(
            "“{event}” is not one of the Komo event kinds this portal knows. If Komo added it, "
            "confirm that it is a new Komo event kind."
        ),
        event=event,
    )


def _event_kind_spelling_errors(spec: HubSpec) -> Iterator[ConfigError]:
    confirmed = set(spec.new_event_kinds)
    places: Iterable[tuple[str, str]] = [
        *((f"events[{index}]", event) for index, event in enumerate(spec.events)),
        *((f"event_rules.{rule.event}", rule.event) for rule in spec.event_rules),
        *((f"transactional.{item.event}", item.event) for item in spec.transactional),
    ]
    for path, event in places:
        if event in confirmed or not _EVENT_KIND.fullmatch(event):
            continue
        confirmed.add(event)  # one message per kind, where it first appears
        error = event_kind_unknown_error(event)
        if error is not None:
            yield ConfigError(path, error)


# --------------------------------------------------------------------------------------------
# Phone region


def _phone_region_errors(spec: HubSpec) -> Iterator[ConfigError]:
    region = spec.default_phone_region.strip().upper()
    if region and region not in phonenumbers.SUPPORTED_REGIONS:
        yield ConfigError(
            "default_phone_region",
            format_lazy(
                _("“{region}” is not a phone region; use a two-letter country code such as AU."),
                region=spec.default_phone_region,
            ),
        )
    elif not region and _reads_phone_numbers(spec):
        yield ConfigError(
            "default_phone_region",
            _(
                "Choose a default phone region: this hub reads phone numbers, and numbers without "
                "a leading + are read in that region."
            ),
        )


def _reads_phone_numbers(spec: HubSpec) -> bool:
    return spec.identity.type in _PHONE_TYPES or any(
        mapping.type == "phone" for mapping in spec.mappings
    )


# --------------------------------------------------------------------------------------------
# Event rules


def _event_rules_errors(spec: HubSpec) -> Iterator[ConfigError]:
    for rule in spec.event_rules:
        path = f"event_rules.{rule.event}"
        if not _EVENT_KIND.fullmatch(rule.event):
            yield ConfigError(path, _event_kind_error(rule.event))
            continue
        yield from _delivery_errors(spec, rule.event, rule.patch, path)
        yield from _patch_errors(spec, rule.patch, path)
        for override in rule.card_types:
            override_path = f"{path}.card_types.{override.card_type}"
            if not override.card_type.strip():
                yield ConfigError(override_path, _("Enter the Komo card type, e.g. “Quiz”."))
            yield from _patch_errors(spec, override.patch, override_path)


def _event_kind_error(event: str) -> Message:
    return format_lazy(
        _(
            "“{event}” is not a Komo event name: use letters and digits only, as in "
            "CompetitionEntrySuccess."
        ),
        event=event[:200],
    )


def _delivery_errors(
    spec: HubSpec, event: str, patch: RulePatch, path: str
) -> Iterator[ConfigError]:
    """A rule must agree with "events", the list of kinds the hub delivers."""
    landing = patch.landing or default_event_rule(event).landing
    if landing not in LANDINGS:
        return
    delivered = event in spec.events
    if delivered and landing == "none":
        yield ConfigError(
            f"{path}.landing",
            format_lazy(
                _(
                    "“{event}” is in the events this hub delivers, but this rule sends it "
                    "nowhere: remove it from the events instead (it is still stored and shown, "
                    "not sent)."
                ),
                event=event,
            ),
        )
    elif not delivered and landing != "none":
        yield ConfigError(
            path,
            format_lazy(
                _(
                    "“{event}” is not in the events this hub delivers, so this rule would never "
                    "apply: add it to the events (or set its landing to “none”)."
                ),
                event=event,
            ),
        )


def _patch_errors(spec: HubSpec, patch: RulePatch, path: str) -> Iterator[ConfigError]:
    if patch.landing is not None and patch.landing not in LANDINGS:
        yield ConfigError(
            f"{path}.landing",
            format_lazy(
                _("“{landing}” is not a landing; choose one of {choices}."),
                landing=patch.landing,
                choices=", ".join(LANDINGS),
            ),
        )
    if patch.event_name is not None:
        name_error = _event_name_error(patch.event_name)
        if name_error is not None:
            yield ConfigError(f"{path}.event_name", name_error)
    if patch.properties is not None:
        yield from _properties_errors(patch.properties, f"{path}.properties")
    if patch.updates is not None:
        yield from _updates_errors(spec, patch.updates, f"{path}.attributes")


def _event_name_error(name: str) -> Message | None:
    if not name.strip():
        return _("Enter the Braze event name, e.g. “komo_quiz_started”.")
    if name != name.strip():
        return _("Remove the spaces at the start or end of the event name.")
    if len(name) > MAX_NAME_LENGTH:
        return format_lazy(
            _("Braze event names have at most {limit} characters."), limit=MAX_NAME_LENGTH
        )
    if name.startswith("$"):
        return _("Braze event names cannot start with “$”.")
    return None


def _properties_errors(
    properties: tuple[PropertySpec, ...], path: str, *, nested: bool = False
) -> Iterator[ConfigError]:
    """Braze's event property rules (or, ``nested``, its nested object key rules)."""
    if len(properties) > MAX_EVENT_PROPERTIES:
        yield ConfigError(
            path,
            format_lazy(
                _("Braze takes at most {limit} properties per event; this lists {count}."),
                limit=MAX_EVENT_PROPERTIES,
                count=len(properties),
            ),
        )
    first_use: dict[str, int] = {}
    for index, prop in enumerate(properties):
        item = f"{path}[{index}]"
        if not prop.field.strip():
            yield ConfigError(f"{item}.field", _("Enter the Komo field."))
        name_error = _property_name_error(prop.property, nested=nested)
        if name_error is None and prop.property in first_use:
            name_error = format_lazy(
                _("“{name}” is already property {number}."),
                name=prop.property,
                number=first_use[prop.property] + 1,
            )
        if name_error is not None:
            yield ConfigError(f"{item}.property", name_error)
        first_use.setdefault(prop.property, index)
        if prop.type not in PROPERTY_TYPES:
            yield ConfigError(
                f"{item}.type",
                format_lazy(
                    _("“{type}” is not a property type; choose one of {choices}."),
                    type=prop.type,
                    choices=", ".join(PROPERTY_TYPES),
                ),
            )


def _property_name_error(name: str, *, nested: bool) -> Message | None:
    if not name or len(name) > MAX_NAME_LENGTH:
        return format_lazy(_("Property names have 1 to {limit} characters."), limit=MAX_NAME_LENGTH)
    if name.startswith("$"):
        return _("Property names cannot start with “$”.")
    if nested and _NESTED_KEY_FORBIDDEN.search(name):
        return _("Keys of a Braze nested object cannot contain spaces, “.” or “$”.")
    if not nested and name in RESERVED_EVENT_PROPERTIES:
        return format_lazy(
            _("“{name}” is reserved by Braze for events; choose another property name."),
            name=name,
        )
    return None


def _updates_errors(
    spec: HubSpec, updates: tuple[AttributeUpdateSpec, ...], path: str
) -> Iterator[ConfigError]:
    taken = _attributes_taken(spec)
    first_use: dict[str, int] = {}
    for index, update in enumerate(updates):
        item = f"{path}[{index}]"
        attribute_error = _written_attribute_error(update.attribute, spec, taken, update)
        if attribute_error is None and update.attribute in first_use:
            attribute_error = format_lazy(
                _("“{attribute}” is already written by update {number} of this rule."),
                attribute=update.attribute,
                number=first_use[update.attribute] + 1,
            )
        if attribute_error is not None:
            yield ConfigError(f"{item}.attribute", attribute_error)
        first_use.setdefault(update.attribute, index)
        yield from _update_mode_errors(update, item)


def _update_mode_errors(update: AttributeUpdateSpec, item: str) -> Iterator[ConfigError]:
    if update.mode not in UPDATE_MODES:
        yield ConfigError(
            f"{item}.mode",
            format_lazy(
                _(
                    "“{mode}” is not an update mode; choose set (latest value), inc (running "
                    "total), add (collect answers) or object (one object per card)."
                ),
                mode=update.mode,
            ),
        )
        return
    if update.mode in ("set", "add") and not update.field.strip():
        yield ConfigError(f"{item}.field", _("Enter the Komo field this attribute takes."))
    if update.mode == "inc":
        yield from _increment_errors(update, item)
    if (
        update.mode == "set"
        and update.type
        and (update.type not in VALUE_TYPES or update.type == "subscription")
    ):
        yield ConfigError(
            f"{item}.type",
            format_lazy(
                _("“{type}” is not a type for this update; choose one of {choices}."),
                type=update.type,
                choices=", ".join(t for t in VALUE_TYPES if t != "subscription"),
            ),
        )
    elif update.mode != "set" and update.type and (update.mode, update.type) != ("inc", "number"):
        yield ConfigError(
            f"{item}.type",
            _("A type only applies to the “set” mode (a running total is always a number)."),
        )
    if update.mode == "object":
        if update.field:
            yield ConfigError(
                f"{item}.field",
                _("A card object takes “fields” (a list), not one “field”."),
            )
        yield from _properties_errors(update.fields, f"{item}.fields", nested=True)
    elif update.fields:
        yield ConfigError(f"{item}.fields", _("“fields” only applies to the “object” mode."))


def _increment_errors(update: AttributeUpdateSpec, item: str) -> Iterator[ConfigError]:
    if update.field in TEXT_KOMO_KEYS:
        yield ConfigError(
            f"{item}.field",
            format_lazy(
                _(
                    "“{field}” is never a number, so it cannot be added up; use score or "
                    "correct, a numeric form field, or no field to count by 1."
                ),
                field=update.field,
            ),
        )


def _attributes_taken(spec: HubSpec) -> dict[str, Message]:
    """Attributes the hub writes outside a rule → what writes them, for collision messages."""
    taken: dict[str, Message] = {}
    for index, mapping in enumerate(spec.mappings):
        taken.setdefault(
            mapping.attribute,
            format_lazy(_("mapping {number}"), number=index + 1),
        )
    for key, attribute in spec.engagement.items():
        taken.setdefault(attribute, format_lazy(_("the engagement attribute “{key}”"), key=key))
    return taken


def _written_attribute_error(
    attribute: str,
    spec: HubSpec,
    taken: dict[str, Message],
    update: AttributeUpdateSpec | None = None,
) -> Message | None:
    """What is wrong with an attribute a rule or the engagement settings write, or None."""
    error = _attribute_name_error(attribute)
    if error is None:
        error = _identifier_attribute_error(
            attribute, spec.identity.type, reserved_attributes(spec.identity.type)
        )
    if error is None and attribute in STANDARD_ATTRIBUTES:
        required = STANDARD_ATTRIBUTES[attribute]
        if update is None or update.mode != "set" or required is None:
            return format_lazy(
                _("“{attribute}” is a standard Braze attribute; choose a custom attribute name."),
                attribute=attribute,
            )
        if (update.type or "string") != required:
            return format_lazy(
                _("“{attribute}” needs the type “{required}”."),
                attribute=attribute,
                required=required,
            )
    if error is None and (standard := standard_attribute_near(attribute)) is not None:
        error = format_lazy(
            _(
                "Braze attribute names are exact, so “{attribute}” would be a new custom "
                "attribute: did you mean “{standard}”?"
            ),
            attribute=attribute,
            standard=standard,
        )
    if error is None and attribute in taken:
        error = format_lazy(
            _("“{attribute}” is already written by {writer}; Braze can take one value."),
            attribute=attribute,
            writer=taken[attribute],
        )
    return error


# --------------------------------------------------------------------------------------------
# Engagement attributes


def _engagement_errors(spec: HubSpec) -> Iterator[ConfigError]:
    mapped = {
        mapping.attribute: format_lazy(_("mapping {number}"), number=index + 1)
        for index, mapping in reversed(list(enumerate(spec.mappings)))
    }
    first_use: dict[str, str] = {}
    for key, attribute in spec.engagement.items():
        if key not in ENGAGEMENT_KEYS:  # EngagementSpec cannot hold others; kept for safety
            continue
        error = _written_attribute_error(attribute, spec, mapped)
        if error is None and attribute in first_use:
            error = format_lazy(
                _("“{attribute}” is already used for “{key}”."),
                attribute=attribute,
                key=first_use[attribute],
            )
        if error is None and key == "first_engaged_at":
            error = _first_engagement_error(spec)
        if error is not None:
            yield ConfigError(f"engagement_attributes.{key}", error)
        first_use.setdefault(attribute, key)


def _first_engagement_error(spec: HubSpec) -> Message | None:
    """A first engagement is known from the person key stored with each submission (email,
    phone or external id: ``services/engagement.py``); a ``braze_id`` hub stores none, so its
    ``first_engaged_at`` would never be sent."""
    if spec.identity.type not in _NO_PERSON_KEY:
        return None
    return format_lazy(
        _(
            "“first_engaged_at” cannot be kept when people are identified by “{identity}”: the "
            "portal cannot tell a person's first submission without an email, phone or external "
            "ID. Switch it off, or identify people by one of those."
        ),
        identity=spec.identity.type,
    )


# --------------------------------------------------------------------------------------------
# Transactional emails


def _transactional_errors(spec: HubSpec) -> Iterator[ConfigError]:
    if spec.transactional and spec.identity.type not in TRANSACTIONAL_IDENTITY_TYPES:
        yield ConfigError(
            "transactional",
            format_lazy(
                _(
                    "Braze's transactional emails address people by external ID or user alias; "
                    "this hub identifies them by “{identity}”. Choose one of {choices}, or "
                    "remove the transactional emails."
                ),
                identity=spec.identity.type,
                choices=", ".join(TRANSACTIONAL_IDENTITY_TYPES),
            ),
        )
    for item in spec.transactional:
        path = f"transactional.{item.event}"
        if not _EVENT_KIND.fullmatch(item.event):
            yield ConfigError(path, _event_kind_error(item.event))
            continue
        if item.event not in spec.events:
            yield ConfigError(
                path,
                format_lazy(
                    _(
                        "“{event}” is not in the events this hub delivers, so this email would "
                        "never be sent: add it to the events."
                    ),
                    event=item.event,
                ),
            )
        if not _BRAZE_ID_TEXT.fullmatch(item.campaign_id):
            yield ConfigError(
                f"{path}.campaign_id",
                _(
                    "Enter the Braze campaign ID of an API-triggered transactional email "
                    "campaign (letters, digits and “-”, at most 100)."
                ),
            )
        if item.trigger_properties is not None:
            yield from _properties_errors(item.trigger_properties, f"{path}.trigger_properties")
