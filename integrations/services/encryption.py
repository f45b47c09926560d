"""Bringing stored rows under encryption (``privacy_upgrade``) and under the newest key
(``rotate_encryption_key``), in short batches while the portal keeps receiving and delivering.

Both walk each table by primary key (keyset: ``id > last``, ``LIMIT n``), each batch its own
transaction, and take no row locks: every write is a compare-and-swap on the value it replaces
(``WHERE id = … AND <column still holds what was read>``), so a row changed meanwhile by intake,
delivery, retention or erasure is left as that writer left it (which is always encrypted under
the newest key). What is left to do is found from the data itself (a legacy column still set, a
value that is no Fernet token, a token under an older key), so an interrupted run is resumed by
running the command again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import models, transaction
from django.db.models import Q, TextField, Value
from django.db.models.functions import Cast

from integrations import crypto
from integrations.blind_index import HASH_CHARS
from integrations.fields import FERNET_TOKEN_PREFIX, is_token
from integrations.models import (
    AttemptItem,
    BrazeConnection,
    DeliveredValue,
    DeliveryAttempt,
    Hub,
    Submission,
    TransactionalSend,
)

DEFAULT_BATCH_SIZE = 500
KEYED_PERSON_KEY = re.compile(rf"^[0-9a-f]{{{HASH_CHARS}}}$")


class Progress(Protocol):
    """What a caller (a command with a progress bar, a test) is told while steps run."""

    def step_started(self, label: str, total: int) -> None: ...

    def advanced(self, rows: int) -> None: ...


class _Silent:
    def step_started(self, label: str, total: int) -> None:
        pass

    def advanced(self, rows: int) -> None:
        pass


@dataclass
class StepResult:
    label: str
    examined: int = 0
    changed: int = 0
    skipped: int = 0  # changed by someone else meanwhile, or already done
    unreadable: int = 0  # a token no configured key decrypts


@dataclass
class Report:
    steps: list[StepResult] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(step.changed for step in self.steps)

    @property
    def unreadable(self) -> int:
        return sum(step.unreadable for step in self.steps)


@dataclass(frozen=True)
class Step:
    label: str
    pending: Callable[[], models.QuerySet]  # the rows with work left (any order)
    columns: tuple[str, ...]
    apply: Callable[[list[dict[str, Any]], StepResult], None]


def steps_run(
    steps: Iterable[Step], *, batch_size: int = DEFAULT_BATCH_SIZE, progress: Progress | None = None
) -> Report:
    progress = progress or _Silent()
    report = Report()
    for step in steps:
        result = StepResult(step.label)
        report.steps.append(result)
        progress.step_started(step.label, step.pending().count())
        last = 0
        while True:
            with transaction.atomic():
                rows = list(
                    step.pending().filter(pk__gt=last).order_by("pk").values(*step.columns)[
                        :batch_size
                    ]
                )
                if not rows:
                    break
                step.apply(rows, result)
            result.examined += len(rows)
            last = rows[-1]["id"]
            progress.advanced(len(rows))
    return report


def _raw(column: str) -> Cast:
    """A column's stored text as it is (the token), bypassing the field's decryption."""
    return Cast(column, output_field=TextField())


def _swap(model: type[models.Model], pk: int, column: str, old: str, **values: Any) -> bool:
    """Write ``values`` only if ``column`` still holds ``old`` (as stored)."""
    return bool(
        model.objects.annotate(_stored=_raw(column)).filter(pk=pk, _stored=old).update(**values)
    )


# --- privacy_upgrade: plain rows from before encryption ---------------------------------------


def _submissions_pending() -> models.QuerySet:
    return Submission.objects.filter(
        Q(payload_legacy__isnull=False) | Q(problems_legacy__isnull=False)
    )


def _submissions_upgrade(rows: list[dict[str, Any]], result: StepResult) -> None:
    from integrations.services.intake import person_hash_columns

    hubs = Hub.objects.in_bulk({row["hub_id"] for row in rows})
    for row in rows:
        values: dict[str, Any] = {"payload_legacy": None, "problems_legacy": None}
        if row["payload_legacy"] is not None:
            payload = row["payload_legacy"]
            values["payload"] = payload
            values.update(person_hash_columns(hubs[row["hub_id"]], payload)
                          if isinstance(payload, dict) else {})
        if row["problems_legacy"] is not None:
            values["problems"] = row["problems_legacy"]
        updated = (
            Submission.objects.filter(pk=row["id"])
            .filter(Q(payload_legacy__isnull=False) | Q(problems_legacy__isnull=False))
            .update(**values)
        )
        result.changed += updated
        result.skipped += 1 - updated


def _legacy_body_step(model: type[models.Model]) -> Step:
    def pending() -> models.QuerySet:
        return model.objects.filter(request_body_legacy__isnull=False)

    def apply(rows: list[dict[str, Any]], result: StepResult) -> None:
        for row in rows:
            updated = model.objects.filter(pk=row["id"], request_body_legacy__isnull=False).update(
                request_body=row["request_body_legacy"], request_body_legacy=None
            )
            result.changed += updated
            result.skipped += 1 - updated

    return Step(
        f"{model._meta.verbose_name_plural}: request_body",
        pending,
        ("id", "request_body_legacy"),
        apply,
    )


def _plain_text_step(model: type[models.Model], column: str) -> Step:
    """Text kept in a column before it was encrypted (it is no Fernet token) → a token."""

    def pending() -> models.QuerySet:
        return (
            model.objects.annotate(_stored=_raw(column))
            .exclude(_stored="")
            .exclude(_stored__startswith=FERNET_TOKEN_PREFIX)
        )

    def apply(rows: list[dict[str, Any]], result: StepResult) -> None:
        for row in rows:
            plain = row["_stored"]
            swapped = _swap(model, row["id"], column, plain, **{column: plain})
            result.changed += swapped
            result.skipped += not swapped

    return Step(f"{model._meta.verbose_name_plural}: {column}", pending, ("id", "_stored"), apply)


def _delivered_values_pending() -> models.QuerySet:
    return DeliveredValue.objects.exclude(person_key__regex=KEYED_PERSON_KEY.pattern)


def _delivered_values_drop(rows: list[dict[str, Any]], result: StepResult) -> None:
    """Rows keyed by a person's plain identifier: dropped (each costs one resend of values
    Braze already has, when that person comes back), never re-keyed (the key is a hash of the
    Braze identifier object, which the old text held in a different form)."""
    stale = [row["id"] for row in rows if not KEYED_PERSON_KEY.match(row["person_key"])]
    deleted, _ = DeliveredValue.objects.filter(pk__in=stale).delete()
    result.changed += deleted


def upgrade_steps() -> list[Step]:
    return [
        Step(
            "submissions: payload, problems, blind index",
            _submissions_pending,
            ("id", "hub_id", "payload_legacy", "problems_legacy"),
            _submissions_upgrade,
        ),
        _legacy_body_step(DeliveryAttempt),
        _legacy_body_step(TransactionalSend),
        _plain_text_step(DeliveryAttempt, "response_body"),
        _plain_text_step(TransactionalSend, "response_body"),
        _plain_text_step(AttemptItem, "error"),
        Step(
            "delivered values: plain person keys",
            _delivered_values_pending,
            ("id", "person_key"),
            _delivered_values_drop,
        ),
    ]


def privacy_upgrade(
    *, batch_size: int = DEFAULT_BATCH_SIZE, progress: Progress | None = None
) -> Report:
    """Encrypt and index what an installation stored in plain text before encryption."""
    return steps_run(upgrade_steps(), batch_size=batch_size, progress=progress)


def privacy_upgrade_remaining() -> int:
    return sum(step.pending().count() for step in upgrade_steps())


# --- rotate_encryption_key: every token under the newest key ----------------------------------

ENCRYPTED_COLUMNS: tuple[tuple[type[models.Model], str], ...] = (
    (BrazeConnection, "api_key"),
    (Hub, "signing_secret"),
    (Hub, "signing_secret_previous"),
    (Submission, "payload"),
    (Submission, "problems"),
    (DeliveryAttempt, "request_body"),
    (DeliveryAttempt, "response_body"),
    (AttemptItem, "error"),
    (TransactionalSend, "request_body"),
    (TransactionalSend, "response_body"),
)


def _rotate_step(model: type[models.Model], column: str) -> Step:
    def pending() -> models.QuerySet:
        return model.objects.annotate(_stored=_raw(column)).filter(
            _stored__startswith=FERNET_TOKEN_PREFIX
        )

    def apply(rows: list[dict[str, Any]], result: StepResult) -> None:
        for row in rows:
            token = row["_stored"]
            if not is_token(token) or crypto.is_current(token):
                result.skipped += 1
                continue
            try:
                rotated = crypto.rotate(token)
            except crypto.DecryptionError:
                result.unreadable += 1
                continue
            stored = Value(rotated, output_field=TextField())  # the token as it is
            swapped = _swap(model, row["id"], column, token, **{column: stored})
            result.changed += swapped
            result.skipped += not swapped

    return Step(f"{model._meta.verbose_name_plural}: {column}", pending, ("id", "_stored"), apply)


def encryption_rotate(
    *, batch_size: int = DEFAULT_BATCH_SIZE, progress: Progress | None = None
) -> Report:
    """Re-encrypt every encrypted column under the first key of FIELD_ENCRYPTION_KEYS. Tokens
    already under it are left alone, so a second run (or one resumed) writes only what is left."""
    steps = [_rotate_step(model, column) for model, column in ENCRYPTED_COLUMNS]
    return steps_run(steps, batch_size=batch_size, progress=progress)
