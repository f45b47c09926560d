"""Reads for views, the admin and the API."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from integrations import blind_index, health
from integrations.batching import batch_build
from integrations.mapping import map_submission
from integrations.models import (
    PROBLEM_STATUSES,
    AttemptItem,
    DeliveryAttempt,
    Hub,
    HubMembership,
    HubRole,
    Submission,
    SubmissionStatus,
)
from integrations.services.delivery import objects_of, problems_as_json
from integrations.spec import HubSpec


def hubs_visible_to(user) -> QuerySet[Hub]:
    if user.is_superuser:
        return Hub.objects.all()
    return Hub.objects.filter(memberships__user=user).distinct()


def hubs_editable_by(user) -> QuerySet[Hub]:
    if user.is_superuser:
        return Hub.objects.all()
    return Hub.objects.filter(memberships__user=user, memberships__role=HubRole.EDITOR).distinct()


# Roles whose work needs people's personal data (support, marketers); HEALTH members see health
# and masked lists only. The one place that decides who may see or erase personal data.
PERSONAL_DATA_ROLES = (HubRole.VIEWER, HubRole.EDITOR)


def hubs_with_personal_data(user) -> QuerySet[Hub]:
    """Hubs whose submissions' personal data the user may see (and erase a person from)."""
    if user.is_superuser:
        return Hub.objects.all()
    return Hub.objects.filter(
        memberships__user=user, memberships__role__in=PERSONAL_DATA_ROLES
    ).distinct()


def personal_data_hub_ids(user) -> frozenset[int]:
    """The same as ids, once per page, for lists that mask rows of other hubs."""
    if user.is_superuser:
        return frozenset(Hub.objects.values_list("pk", flat=True))
    return frozenset(hubs_with_personal_data(user).values_list("pk", flat=True))


def can_see_personal_data(user, hub: Hub) -> bool:
    return bool(user.is_active) and (
        user.is_superuser
        or HubMembership.objects.filter(user=user, hub=hub, role__in=PERSONAL_DATA_ROLES).exists()
    )


def person_shown(submission: Submission, visible_hub_ids: frozenset[int]) -> str:
    """A list cell: the person as captured where the user may see it, else masked."""
    person = submission.person
    return (person.label if submission.hub_id in visible_hub_ids else person.masked) or "—"


def user_can_edit_hub(user, hub: Hub) -> bool:
    return (
        user.is_superuser
        or HubMembership.objects.filter(user=user, hub=hub, role=HubRole.EDITOR).exists()
    )


# --- access: hub memberships decide (portal pages and admin) ---------------------------------
def _is_staff(user: Any) -> bool:
    return bool(user.is_active and user.is_staff)


def can_view_hub(user: Any, hub: Hub | None) -> bool:
    """Without a hub: whether the user may see any hub at all."""
    if not _is_staff(user):
        return False
    if user.is_superuser:
        return True
    if hub is None:
        return HubMembership.objects.filter(user=user).exists()
    return hubs_visible_to(user).filter(pk=hub.pk).exists()


def can_edit_hub(user: Any, hub: Hub | None) -> bool:
    """Without a hub: whether the user edits at least one hub."""
    if not _is_staff(user):
        return False
    if hub is None:
        return user.is_superuser or hubs_editable_by(user).exists()
    return user_can_edit_hub(user, hub)


def can_create_hubs(user: Any) -> bool:
    # Marketers create hubs: an editor of any hub, or anyone granted Django's add_hub permission.
    return _is_staff(user) and (
        user.is_superuser or user.has_perm("integrations.add_hub") or can_edit_hub(user, None)
    )


KNOWN_FIELDS_SAMPLE = 200


def hub_known_fields(hub: Hub) -> set[str] | None:
    """The Komo keys seen in the hub's recent submissions; None when nothing arrived yet.

    None switches the "is this field captured?" check off: a new hub has no evidence either way.
    """
    if hub.pk is None:
        return None
    payloads = (
        Submission.objects.filter(hub=hub)
        .order_by("-received_at")
        .values_list("payload", flat=True)[:KNOWN_FIELDS_SAMPLE]
    )
    keys: set[str] = set()
    for payload in payloads:
        if isinstance(payload, dict):
            keys.update(str(key) for key in payload)
    return keys or None


def submission_preview(*, spec: HubSpec, payload: dict[str, Any]) -> dict[str, Any]:
    """Exactly the /users/track body this payload would produce alone, and its problems."""
    result = map_submission(spec, payload)
    body: dict[str, Any] = {}
    if result.deliverable:
        batch, _ = batch_build([("preview", objects_of(result))])
        body = batch.body
    return {
        "body": body,
        "problems": problems_as_json(result),
        "hold_reason": result.hold_reason,
        "delivered_event": str(payload.get("event", "")) in spec.events,
    }


# Counts on the hub list and dashboard stop at this many rows (shown as "1000+"): each is an
# index range scan that reads at most this many entries, however long the hub's history.
HEALTH_COUNT_CAP = 1000


@dataclass(frozen=True)
class HubHealth:
    pending: int
    overdue: int
    held: int
    failed: int
    delivered_24h: int
    received_24h: int
    last_delivered_at: Any
    last_attempt: DeliveryAttempt | None
    causes: tuple[health.Cause, ...] = ()

    @property
    def level(self) -> str:
        """ok | warning | error, for the at-a-glance badge: the worst of the causes."""
        return health.health_level(list(self.causes))


def _capped_count(queryset: QuerySet, cap: int = HEALTH_COUNT_CAP) -> tuple[str, tuple]:
    """SQL counting at most ``cap`` rows of ``queryset`` (a LIMITed subquery)."""
    sql, params = queryset.order_by().values("pk")[:cap].query.sql_with_params()
    return f"(SELECT COUNT(*) FROM ({sql}) capped)", params  # noqa: S608 (ORM-compiled SQL)


def _newest(queryset: QuerySet, field: str) -> tuple[str, tuple]:
    """SQL of the newest row's ``field`` (by the index on it), or its id for ``started_at``."""
    column = "pk" if field == "started_at" else field
    newest = queryset.order_by(f"-{field}", "-pk").values(column)[:1]
    sql, params = newest.query.sql_with_params()
    return f"({sql})", params


def _oldest(queryset: QuerySet, field: str) -> tuple[str, tuple]:
    sql, params = queryset.order_by(field).values(field)[:1].query.sql_with_params()
    return f"({sql})", params


def _sample_problems(rows: QuerySet, start: int) -> list[tuple[str, tuple]]:
    """Of the SHARE_SAMPLE submissions received before the ``start`` newest: how many there
    are, and how many of them are held or failed (an index range of the hub's newest rows)."""
    sample = rows.order_by("-received_at").values("status")[start:start + health.SHARE_SAMPLE]
    sql, params = sample.query.sql_with_params()
    marks = ", ".join(["%s"] * len(PROBLEM_STATUSES))
    return [
        (f"(SELECT COUNT(*) FROM ({sql}) sampled)", params),  # noqa: S608
        (f"(SELECT COUNT(*) FROM ({sql}) sampled WHERE sampled.status IN ({marks}))",  # noqa: S608
         (*params, *PROBLEM_STATUSES)),
    ]


def _health_parts(hub_id: int, now: Any) -> list[tuple[str, tuple]]:
    """The health figures of one hub as bounded SQL expressions, each served by an index:
    the partial indexes on pending / held / failed / delivered rows and (hub, received_at)."""
    day_ago = now - timedelta(hours=24)
    rows = Submission.objects.filter(hub_id=hub_id)
    pending = rows.filter(status=SubmissionStatus.PENDING)
    delivered = rows.filter(status=SubmissionStatus.DELIVERED)
    days_before = [
        _capped_count(rows.filter(received_at__lt=now - timedelta(days=day),
                                  received_at__gte=now - timedelta(days=day + 1)), cap=1)
        for day in range(1, health.DAILY_DAYS + 1)
    ]
    return [
        _capped_count(pending),
        _capped_count(pending.filter(next_attempt_at__lt=now - timedelta(minutes=5))),
        _capped_count(rows.filter(status=SubmissionStatus.HELD)),
        _capped_count(rows.filter(status=SubmissionStatus.FAILED)),
        _capped_count(delivered.filter(delivered_at__gte=day_ago)),
        _capped_count(rows.filter(received_at__gte=day_ago)),
        _newest(delivered, "delivered_at"),
        _newest(DeliveryAttempt.objects.filter(hub_id=hub_id), "started_at"),
        _oldest(pending, "next_attempt_at"),
        *_sample_problems(rows, 0),
        *_sample_problems(rows, health.SHARE_SAMPLE),
        *days_before,
    ]


HEALTH_FIGURES = ("pending", "overdue", "held", "failed", "delivered_24h", "received_24h",
                  "last_delivered_at", "last_attempt", "oldest_due_at", "recent_sample",
                  "recent_problems", "earlier_sample", "earlier_problems",
                  *(f"day_{day}" for day in range(1, health.DAILY_DAYS + 1)))
SHOWN_FIGURES = ("pending", "overdue", "held", "failed", "delivered_24h", "received_24h",
                 "last_delivered_at", "last_attempt")


def hubs_health(*, hubs: list[Hub]) -> dict[int, HubHealth]:
    """Health of several hubs in two statements, whatever their number or history: one SELECT
    of bounded subqueries (figures and the latest attempt's id), then those attempts. The
    hubs' connections should be loaded with them (``select_related("connection")``)."""
    if not hubs:
        return {}
    now = timezone.now()
    parts = [part for hub in hubs for part in _health_parts(hub.pk, now)]
    sql = "SELECT " + ", ".join(text for text, _params in parts)
    params = [param for _text, part_params in parts for param in part_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        values = list(cursor.fetchone())
    width = len(HEALTH_FIGURES)
    rows = [dict(zip(HEALTH_FIGURES, values[i * width:(i + 1) * width], strict=True))
            for i in range(len(hubs))]
    attempt_ids = [row["last_attempt"] for row in rows if row["last_attempt"]]
    attempts = DeliveryAttempt.objects.defer("request_body", "response_body").in_bulk(attempt_ids)
    result = {}
    for hub, row in zip(hubs, rows, strict=True):
        row["last_delivered_at"] = _as_datetime(row["last_delivered_at"])
        row["last_attempt"] = attempts.get(row["last_attempt"])
        causes = health.health_causes(_figures(hub, row), now=now)
        result[hub.pk] = HubHealth(**{name: row[name] for name in SHOWN_FIGURES},
                                   causes=tuple(causes))
    return result


def _figures(hub: Hub, row: dict[str, Any]) -> health.Figures:
    braze = getattr(hub, "connection", None)
    attempt = row["last_attempt"]
    return health.Figures(
        active=hub.active,
        has_connection=braze is not None,
        connection_status=braze.status if braze else "",
        connection_reason=braze.reason if braze else None,
        connection_reason_text=braze.status_reason if braze else "",
        ever_succeeded=bool(braze and (braze.last_success_at or braze.status == "ok")),
        pending=row["pending"],
        held=row["held"],
        failed=row["failed"],
        received_24h=row["received_24h"],
        oldest_due_at=_as_datetime(row["oldest_due_at"]),
        last_attempt_outcome=attempt.outcome if attempt else "",
        last_attempt={"outcome": attempt.outcome, "status_code": attempt.status_code,
                      "message": attempt.message[:300]} if attempt else {},
        recent_sample=row["recent_sample"],
        recent_problems=row["recent_problems"],
        earlier_sample=row["earlier_sample"],
        earlier_problems=row["earlier_problems"],
        received_days_before=sum(row[f"day_{day}"] for day in range(1, health.DAILY_DAYS + 1)),
    )


def _as_datetime(value: Any) -> datetime | None:
    """A raw timestamp column as a datetime (PostgreSQL gives one; SQLite gives text in UTC)."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else parse_datetime(str(value))
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


def attempt_item_count() -> Subquery:
    """Each attempt's number of submissions, computed for the listed rows only."""
    items = AttemptItem.objects.filter(attempt=OuterRef("pk")).order_by().values("attempt")
    return Subquery(items.annotate(count=Count("pk")).values("count"))


def hub_health(*, hub: Hub) -> HubHealth:
    return hubs_health(hubs=[hub])[hub.pk]


def submissions_search(*, queryset: QuerySet[Submission], term: str) -> QuerySet[Submission]:
    """Find by Komo id or our id (whole), or a person as support types them: an email in any
    case, whole or the part before its ``@``; a phone in any format (read with each searched
    hub's default region); an external id. Personal data is encrypted at rest, so people are
    found through the blind index (keyed hashes of normalised values), never by substring."""
    term = term.strip()
    if not term:
        return queryset
    # One read of the hubs (a few rows): a local number means something else in each hub's
    # region, so every hub's is tried; and the Komo id is asked for within the hubs, so the
    # unique (hub, komo_id) index answers (there is no index on the Komo id alone).
    hubs = list(Hub.objects.values_list("pk", "default_phone_region"))
    regions = tuple(sorted({region for _pk, region in hubs} | {""}))
    hashes = blind_index.search_hashes(term, regions=regions)
    condition = Q(komo_id=term, hub_id__in=[pk for pk, _region in hubs])
    if hashes.email:
        condition |= Q(email_hash=hashes.email)
    if hashes.email_local:
        condition |= Q(email_local_hash=hashes.email_local)
    if hashes.phones:
        condition |= Q(phone_hash__in=hashes.phones)
    if hashes.external_id:
        condition |= Q(external_id_hash=hashes.external_id)
    with contextlib.suppress(ValueError):
        condition |= Q(public_id=uuid.UUID(term))
    return queryset.filter(condition)
