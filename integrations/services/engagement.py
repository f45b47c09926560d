"""What delivery knows about a person beyond one payload, for the pure mapping's MappingContext.

Braze has no "set once" for custom attributes, so a hub's ``first_engaged_at`` can only be sent
on the submission that really is the person's first with the hub. The portal knows: a person is
new to a hub when none of the hub's submissions for the same identity has been delivered yet.
Within one batch, only the earliest submission of a new person counts as first.
"""

from __future__ import annotations

from collections.abc import Iterable

from integrations.event_mapping import MappingContext
from integrations.models import Hub, IdentityType, Submission, SubmissionStatus

# The blind-index column intake fills for each identity type (braze_id has none): the same
# person, however the value was written (case of an email, format of a phone), has one hash.
_PERSON_COLUMN = {
    IdentityType.EXTERNAL_ID: "external_id_hash",
    IdentityType.ALIAS_EMAIL: "email_hash",
    IdentityType.EMAIL: "email_hash",
    IdentityType.ALIAS_PHONE: "phone_hash",
    IdentityType.PHONE: "phone_hash",
}


def mapping_contexts(*, hub: Hub, submissions: Iterable[Submission]) -> dict[int, MappingContext]:
    """submission pk → MappingContext, for the submissions of one delivery batch.

    Empty (every submission gets the default context) unless the hub keeps ``first_engaged_at``
    and its identity has a person column.
    """
    column = _PERSON_COLUMN.get(hub.identity_type)
    settings = hub.engagement_attributes if isinstance(hub.engagement_attributes, dict) else {}
    if column is None or not settings.get("first_engaged_at"):
        return {}
    batch = sorted(submissions, key=lambda s: (s.komo_timestamp is None, s.komo_timestamp, s.pk))
    people = {getattr(s, column) for s in batch if getattr(s, column)}
    seen = set(
        Submission.objects.filter(
            hub=hub, status=SubmissionStatus.DELIVERED, **{f"{column}__in": people}
        ).values_list(column, flat=True)
    )
    contexts: dict[int, MappingContext] = {}
    for submission in batch:
        person = getattr(submission, column)
        first = bool(person) and person not in seen
        if person:
            seen.add(person)
        contexts[submission.pk] = MappingContext(first_engagement=first)
    return contexts
