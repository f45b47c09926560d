"""Erasing one person (right to erasure), in every hub or the ones named.

A person is named by one whole identifier: an email (whole, any case; never the part before the
``@``), a phone (read with each hub's default region, as intake stored it) or an external id
(trimmed). They are found through the blind index, exactly; a near match is never erased.

What "erased" means, per hub:

* every submission about them is deleted, whatever its status: pending and claimed ones too, so
  nothing queued for them is sent afterwards. Their attempt items and transactional sends go
  with them (cascade). A worker holding a claim on one finds nothing to update afterwards
  (results are written by primary key *and* claim token), see ``delivery._record``.
* their objects are cut out of the stored Braze request bodies (``DeliveryAttempt``; a body holds
  up to 75 people, the others stay), matched on the identifier exactly as the hub sends it;
* their ``DeliveredValue`` row (skip_unchanged) is deleted.

With ``braze=True`` the hub's Braze workspace is asked to delete the profile too
(``POST /users/delete``, by the identifier the hub sends). That happens after the database
commit: Braze cannot be rolled back, and the portal's own copy must go even if Braze refuses.

An ``ErasureRecord`` keeps who, when, which hubs, how many rows and Braze's answer; never the
identifier, nor anything that would find it again.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from integrations import blind_index
from integrations.batching import ARRAYS
from integrations.braze.client import Outcome, TrackResult
from integrations.braze.instances import endpoint_allowed
from integrations.mapping import ValueProblem, identify
from integrations.models import (
    AttemptItem,
    BrazeConnection,
    DeliveredValue,
    DeliveryAttempt,
    ErasureRecord,
    Hub,
    Submission,
    TransactionalSend,
)
from integrations.services import braze_api, unchanged

KINDS = ("email", "phone", "external_id")
COMMAND_ACTOR = "command"
ERASED = "[erased]"

# The /users/delete kind for the identifier key a hub sends.
_DELETE_KIND = {
    "external_id": "external_ids",
    "braze_id": "braze_ids",
    "user_alias": "user_aliases",
    "email": "email_addresses",
    "phone": "phone_numbers",
}


class ErasureInputError(ValueError):
    """The identifier cannot name anyone (empty, not an email, …); the text says why."""


@dataclass
class HubCounts:
    submissions: int = 0
    attempt_items: int = 0
    transactional_sends: int = 0
    delivery_attempts_scrubbed: int = 0
    delivered_values: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _HubFound:
    hub: Hub
    submission_ids: list[int] = field(default_factory=list)
    identifiers: list[dict[str, Any]] = field(default_factory=list)  # as the hub sends them


# --- finding ----------------------------------------------------------------------------------


def _condition(kind: str, value: str, hubs: Iterable[Hub]) -> Q:
    """Submissions about the person in these hubs (exact identifier, through the blind index)."""
    if kind not in KINDS:
        raise ErasureInputError(_("Choose an email, a phone or an external id."))
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ErasureInputError(_("Enter the identifier of the person to erase."))
    hub_ids_by_region: dict[str, list[int]] = defaultdict(list)
    for hub in hubs:
        hub_ids_by_region[hub.default_phone_region or ""].append(hub.pk)
    if not hub_ids_by_region:
        return Q(pk__in=[])
    all_ids = [pk for ids in hub_ids_by_region.values() for pk in ids]
    if kind == "email":
        normal = blind_index.email_normal(text)
        if "@" not in normal or normal.startswith("@") or normal.endswith("@"):
            raise ErasureInputError(
                _("Enter the whole email address (erasure never matches part of one).")
            )
        return Q(hub_id__in=all_ids, email_hash=blind_index.blind_hash("email", normal))
    if kind == "external_id":
        normal = blind_index.external_id_normal(text)
        return Q(hub_id__in=all_ids, external_id_hash=blind_index.blind_hash("external_id", normal))
    condition = Q(pk__in=[])
    for region, ids in hub_ids_by_region.items():
        normal = blind_index.phone_normal(text, region)
        if not any(char.isdigit() for char in normal):
            raise ErasureInputError(_("Enter a phone number with its digits."))
        condition |= Q(hub_id__in=ids, phone_hash=blind_index.blind_hash("phone", normal))
    return condition


def erasure_preview(kind: str, value: str, hubs: Iterable[Hub]) -> dict[str, HubCounts]:
    """What ``person_erase`` would remove: hub slug → counts, only hubs with something."""
    hubs = list(hubs)
    slugs = {hub.pk: hub.slug for hub in hubs}
    ids_by_hub: dict[int, list[int]] = defaultdict(list)
    for pk, hub_id in Submission.objects.filter(_condition(kind, value, hubs)).values_list(
        "pk", "hub_id"
    ):
        ids_by_hub[hub_id].append(pk)
    preview: dict[str, HubCounts] = {}
    for hub_id, ids in sorted(ids_by_hub.items(), key=lambda item: slugs[item[0]]):
        preview[slugs[hub_id]] = HubCounts(
            submissions=len(ids),
            attempt_items=AttemptItem.objects.filter(submission_id__in=ids).count(),
            transactional_sends=TransactionalSend.objects.filter(submission_id__in=ids).count(),
            delivery_attempts_scrubbed=DeliveryAttempt.objects.filter(items__submission_id__in=ids)
            .distinct()
            .count(),
        )
    return preview


def _found(kind: str, value: str, hubs: list[Hub]) -> dict[int, _HubFound]:
    """Lock the person's submissions and read the identifiers their hubs send for them."""
    by_hub = {hub.pk: hub for hub in hubs}
    found: dict[int, _HubFound] = {}
    specs: dict[int, Any] = {}
    rows = (
        Submission.objects.select_for_update()
        .filter(_condition(kind, value, hubs))
        .only("pk", "hub_id", "payload", "payload_legacy")
        .order_by("pk")
    )
    for submission in rows:
        hub = by_hub[submission.hub_id]
        entry = found.setdefault(hub.pk, _HubFound(hub=hub))
        entry.submission_ids.append(submission.pk)
        spec = specs.setdefault(hub.pk, hub.to_spec())
        payload = submission.payload if isinstance(submission.payload, dict) else {}
        try:
            keys, _value = identify(spec, payload.get(spec.identity.field))
        except (ValueProblem, ValueError, KeyError):
            continue
        keys.pop("_update_existing_only", None)
        if keys and keys not in entry.identifiers:
            entry.identifiers.append(keys)
    return found


# --- erasing ----------------------------------------------------------------------------------


def _is_theirs(obj: Any, identifiers: list[dict[str, Any]]) -> bool:
    return isinstance(obj, dict) and any(
        all(obj.get(key) == wanted for key, wanted in identifier.items())
        for identifier in identifiers
    )


def body_without_person(body: Any, identifiers: list[dict[str, Any]]) -> tuple[Any, int]:
    """A /users/track body without the objects of this person; and how many were cut out."""
    if not isinstance(body, dict) or not identifiers:
        return body, 0
    kept: dict[str, Any] = {}
    removed = 0
    for name, objects in body.items():
        if name in ARRAYS and isinstance(objects, list):
            others = [obj for obj in objects if not _is_theirs(obj, identifiers)]
            removed += len(objects) - len(others)
            if others:
                kept[name] = others
        else:
            kept[name] = objects
    return kept, removed


def _scrub_attempts(submission_ids: list[int], identifiers: list[dict[str, Any]]) -> int:
    """Cut the person out of the stored request bodies that carried their submissions."""
    attempt_ids = set(
        AttemptItem.objects.filter(submission_id__in=submission_ids).values_list(
            "attempt_id", flat=True
        )
    )
    scrubbed = 0
    attempts = DeliveryAttempt.objects.select_for_update().filter(pk__in=attempt_ids)
    for attempt in attempts.only("pk", "request_body", "request_body_legacy"):
        body, removed = body_without_person(attempt.request_body, identifiers)
        if removed or attempt.request_body_legacy is not None:
            # The plain pre-encryption copy, if any, is dropped: the encrypted one is the truth.
            DeliveryAttempt.objects.filter(pk=attempt.pk).update(
                request_body=body, request_body_legacy=None
            )
            scrubbed += 1
    return scrubbed


def _forget_delivered_values(hub: Hub, identifiers: list[dict[str, Any]]) -> int:
    keys = {
        key
        for identifier in identifiers
        if (key := unchanged.person_key(identifier, hub.identity_type)) is not None
    }
    if not keys:
        return 0
    deleted, _per_model = DeliveredValue.objects.filter(hub=hub, person_key__in=keys).delete()
    return deleted


def _erase_hub(entry: _HubFound) -> HubCounts:
    counts = HubCounts(
        delivery_attempts_scrubbed=_scrub_attempts(entry.submission_ids, entry.identifiers),
        delivered_values=_forget_delivered_values(entry.hub, entry.identifiers),
    )
    _total, per_model = Submission.objects.filter(pk__in=entry.submission_ids).delete()
    counts.submissions = per_model.get(Submission._meta.label, 0)
    counts.attempt_items = per_model.get(AttemptItem._meta.label, 0)
    counts.transactional_sends = per_model.get(TransactionalSend._meta.label, 0)
    return counts


def person_erase(
    kind: str, value: str, hubs: Iterable[Hub], *, user: Any = None, braze: bool = False
) -> ErasureRecord:
    """Erase the person in these hubs; returns the record (see the module docstring).

    Raises ``ErasureInputError`` for an identifier that cannot name anyone.
    """
    hubs = list(hubs)
    with transaction.atomic():
        found = _found(kind, value, hubs)
        counts = {entry.hub.slug: _erase_hub(entry) for entry in found.values()}
    record = ErasureRecord(
        user=user if getattr(user, "pk", None) else None,
        actor=user.get_username() if getattr(user, "pk", None) else COMMAND_ACTOR,
        identifier_kind=kind,
        hub_slugs=sorted(hub.slug for hub in hubs),
        counts={slug: item.as_dict() for slug, item in sorted(counts.items())},
    )
    if braze:
        record.braze_outcome, record.braze_answer = _braze_delete(list(found.values()))
    record.save()
    return record


# --- Braze ------------------------------------------------------------------------------------


def _braze_delete(entries: list[_HubFound]) -> tuple[str, str]:
    """Ask each hub's Braze workspace to delete the profile; (outcome, answer without
    identifiers). One set of requests per workspace (endpoint and key), hubs sharing one
    are asked once."""
    by_workspace: dict[tuple[str, str], list[_HubFound]] = defaultdict(list)
    lines: list[str] = []
    outcomes: set[str] = set()
    connections = {
        c.hub_id: c
        for c in BrazeConnection.objects.filter(hub__in=[entry.hub for entry in entries])
    }
    for entry in entries:
        connection = connections.get(entry.hub.pk)
        if connection is None:
            lines.append(f"{entry.hub.slug}: " + _("no Braze connection; nothing asked."))
            outcomes.add("skipped")
        elif not entry.identifiers:
            lines.append(f"{entry.hub.slug}: " + _("no Braze identifier found; nothing asked."))
            outcomes.add("skipped")
        elif not endpoint_allowed(connection.rest_endpoint, settings.BRAZE_EXTRA_ENDPOINTS):
            lines.append(f"{entry.hub.slug}: " + _("the REST endpoint is not an allowed Braze "
                                                   "host; nothing was sent."))
            outcomes.add("failed")
        else:
            by_workspace[(connection.rest_endpoint, connection.api_key)].append(entry)
    for (endpoint, api_key), group in by_workspace.items():
        identifiers: dict[str, list[Any]] = defaultdict(list)
        for entry in group:
            for identifier in entry.identifiers:
                for key, wanted in identifier.items():
                    identifiers[_DELETE_KIND[key]].append(wanted)
        results = braze_api.braze_client().users_delete(
            endpoint=endpoint, api_key=api_key, identifiers=identifiers
        )
        outcome, answer = _braze_summary(results)
        outcomes.add(outcome)
        slugs = ", ".join(entry.hub.slug for entry in group)
        lines.append(f"{slugs}: {_without_identifiers(answer, group)}")
    if not lines:
        return "nothing_found", _("Nobody was found, so Braze was not asked.")
    for outcome in ("not_permitted", "failed", "deleted", "skipped"):
        if outcome in outcomes:
            return outcome, "\n".join(lines)
    return "skipped", "\n".join(lines)


def _braze_summary(results: tuple[TrackResult, ...]) -> tuple[str, str]:
    """Braze's answers in plain words: the deleted count and each refusal."""
    if not results:
        return "skipped", _("nothing to ask.")
    deleted = 0
    problems: list[str] = []
    for result in results:
        if result.outcome in (Outcome.UNAUTHORIZED, Outcome.FORBIDDEN):
            return "not_permitted", _(
                "Braze refused (HTTP %(code)s): the API key lacks the users.delete permission. "
                "Delete the profile in Braze's dashboard, or give the key that permission and "
                "erase again."
            ) % {"code": result.status_code}
        if result.ok:
            deleted += _deleted_count(result.response_text)
        else:
            problems.append(f"HTTP {result.status_code or '—'} {result.outcome}: {result.message}")
    text = _("Braze deleted %(count)d profile(s) in %(requests)d request(s).") % {
        "count": deleted, "requests": len(results),
    }
    if problems:
        return "failed", text + " " + " · ".join(problems)
    return "deleted", text


def _deleted_count(text: str) -> int:
    try:
        answer = json.loads(text)
    except ValueError:
        return 0
    count = answer.get("deleted") if isinstance(answer, dict) else None
    return count if isinstance(count, int) else 0


def _without_identifiers(text: str, entries: list[_HubFound]) -> str:
    """Braze's messages should never echo identifiers; if one does, it is not kept."""
    for entry in entries:
        for identifier in entry.identifiers:
            for wanted in identifier.values():
                # An alias's label ("email") names no one: only its name is theirs.
                values = [wanted.get("alias_name")] if isinstance(wanted, dict) else [wanted]
                for item in values:
                    if isinstance(item, str) and len(item) > 2:
                        text = text.replace(item, ERASED)
    return text
