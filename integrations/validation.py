"""Pure validation of a hub's delivery configuration (a :class:`HubSpec`).

Used by the admin forms and the hub JSON import: every error names where it is (``path``, in the
hub JSON's terms, e.g. ``"mappings[2].attribute"``) and says what to do in a translatable
sentence. A spec with no errors is one :func:`integrations.mapping.map_submission` accepts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import phonenumbers
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from integrations.braze.attributes import IDENTIFIER_KEYS, MAX_STRING_LENGTH, STANDARD_ATTRIBUTES
from integrations.mapping import ALIAS_IDENTITY_TYPES, Message, reserved_attributes
from integrations.spec import (
    IDENTITY_TYPES,
    ON_ERROR_CHOICES,
    VALUE_TYPES,
    FieldMappingSpec,
    HubSpec,
    IdentitySpec,
)

# Envelope keys that describe the event, not the person: mapping them would copy the same event id
# or time onto profiles. Other fixed keys (score, card_name, prize_name, …) are fair game.
NON_CAPTURABLE_FIELDS: Final = frozenset({"id", "event", "timestamp"})
ON_FALSE_CHOICES: Final = ("subscribed", "unsubscribed")
_PHONE_TYPES: Final = frozenset({"phone", "alias_phone"})


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
        *_mappings_errors(spec, known_fields),
        *_phone_region_errors(spec),
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
    reserved = reserved_attributes(spec.identity.type)
    for index, mapping in enumerate(spec.mappings):
        path = f"mappings[{index}]"
        field_error = _komo_field_error(mapping.field, known_fields)
        if field_error is not None:
            yield ConfigError(f"{path}.field", field_error)
        yield from _type_errors(mapping, path)
        attribute_error = _attribute_error(mapping, spec.identity.type, reserved)
        if attribute_error is None and mapping.attribute in first_use:
            attribute_error = format_lazy(
                _("“{attribute}” is already set by mapping {number}; Braze can take one value."),
                attribute=mapping.attribute,
                number=first_use[mapping.attribute] + 1,
            )
        if attribute_error is not None:
            yield ConfigError(f"{path}.attribute", attribute_error)
        first_use.setdefault(mapping.attribute, index)


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
        standard = _STANDARD_SPELLINGS.get(_spelling_key(attribute))
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
