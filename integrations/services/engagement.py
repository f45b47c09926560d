"""What delivery knows about a person beyond one payload, for the pure mapping's MappingContext.

Braze has no "set once" for custom attributes, so a hub's ``first_engaged_at`` can only be sent
on the submission that really is the person's first with the hub. The portal knows: a person is
new to a hub when none of the hub's submissions for the same identity has been delivered yet.
Within one batch, only the earliest submission of a new person counts as first.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Max, Min

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


def person_column(identity_type: str) -> str | None:
    """The blind-index column that tells one person of a hub from another (None: braze_id)."""
    return _PERSON_COLUMN.get(identity_type)


def mapping_contexts(*, hub: Hub, submissions: Iterable[Submission]) -> dict[int, MappingContext]:
    """submission pk → MappingContext, for the submissions of one delivery batch.

    Judged by the submissions' own (Komo) times, not the order they arrive in, so a backfill of
    old rows delivered after live traffic stays right: a submission is a person's *first* when
    no delivered one of the person is earlier (and it is the earliest of them in the batch), and
    their *latest* when no delivered one is later (and it is the latest in the batch).

    Empty (every submission gets the default context) unless the hub keeps ``first_engaged_at``
    or ``last_engaged_at`` and its identity has a person column.
    """
    column = _PERSON_COLUMN.get(hub.identity_type)
    settings = hub.engagement_attributes if isinstance(hub.engagement_attributes, dict) else {}
    if column is None or not (settings.get("first_engaged_at") or settings.get("last_engaged_at")):
        return {}
    batch = sorted(submissions, key=lambda s: (s.komo_timestamp is None, s.komo_timestamp, s.pk))
    people = {getattr(s, column) for s in batch if getattr(s, column)}
    known = {
        row[column]: (row["earliest"], row["latest"])
        for row in Submission.objects.filter(
            hub=hub, status=SubmissionStatus.DELIVERED, **{f"{column}__in": people}
        )
        .values(column)
        .annotate(earliest=Min("komo_timestamp"), latest=Max("komo_timestamp"))
        .order_by()
    }
    last_in_batch = {getattr(s, column): s.pk for s in batch if getattr(s, column)}
    contexts: dict[int, MappingContext] = {}
    seen: set[str] = set()
    for submission in batch:
        person, moment = getattr(submission, column), submission.komo_timestamp
        earliest, latest = known.get(person, (None, None)) if person else (None, None)
        first = bool(person) and person not in seen and (
            person not in known or (moment is not None and earliest is not None
                                    and moment < earliest)
        )  # fmt: skip
        is_latest = not person or (
            last_in_batch[person] == submission.pk
            and (latest is None or moment is None or moment >= latest)
        )
        if person:
            seen.add(person)
        contexts[submission.pk] = MappingContext(
            first_engagement=first, latest_engagement=is_latest
        )
    return contexts
