"""Pages and background queries stay bounded as submissions pile up (issue 9, "fast at volume").

Speed itself is measured by ``make bench-volume`` (tests/bench/volume.py) on PostgreSQL; these
tests pin the shape that makes it fast: one sweep trigger per hub, a bounded number of queries per
page, and no COUNT over a whole table.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import (
    ConnectionStatus,
    Submission,
    SubmissionStatus,
    TransactionalSend,
)
from integrations.services import sweep


def _submissions(hub, count: int, **values) -> None:
    now = timezone.now()
    defaults = {"event": "CompetitionEntrySuccess", "payload": {"id": "x"},
                "status": SubmissionStatus.PENDING, "next_attempt_at": now - timedelta(seconds=5)}
    Submission.objects.bulk_create(
        Submission(hub=hub, komo_id=str(uuid.uuid4()), **{**defaults, **values})
        for _ in range(count)
    )


@pytest.fixture
def four_hubs(make_hub):
    busy, _ = make_hub(slug="busy", name="Busy")
    quiet, _ = make_hub(slug="quiet", name="Quiet")
    off, _ = make_hub(slug="off", name="Off", active=False)
    paused, _ = make_hub(slug="paused", name="Paused")
    paused.connection.status = ConnectionStatus.PAUSED
    paused.connection.save()
    return busy, quiet, off, paused


def test_the_sweep_triggers_each_hub_with_a_backlog_once(four_hubs, monkeypatch):
    # given: a backlog of due rows on two hubs, one switched off, one paused, and rows not due
    busy, quiet, off, paused = four_hubs
    _submissions(busy, 40)
    _submissions(quiet, 3)
    _submissions(quiet, 5, next_attempt_at=timezone.now() + timedelta(hours=1))
    _submissions(quiet, 5, claimed_until=timezone.now() + timedelta(minutes=1))
    _submissions(off, 10)
    _submissions(paused, 10)
    triggered: list[int] = []
    monkeypatch.setattr(sweep, "hub_delivery_trigger",
                        lambda *, hub_id: triggered.append(hub_id) or True)

    # when
    count = sweep.sweep_due()

    # then: once per hub with due work, never once per due row
    assert sorted(triggered) == sorted([busy.pk, quiet.pk])
    assert count == 2


def test_a_lapsed_lease_is_due_again(four_hubs, monkeypatch):
    busy = four_hubs[0]
    _submissions(busy, 4, claimed_until=timezone.now() - timedelta(seconds=1))
    triggered: list[int] = []
    monkeypatch.setattr(sweep, "hub_delivery_trigger",
                        lambda *, hub_id: triggered.append(hub_id) or True)

    sweep.sweep_due()

    assert triggered == [busy.pk]


def test_the_transactional_sweep_triggers_each_hub_once(four_hubs, monkeypatch):
    from integrations.services import transactional

    busy, quiet, off, _paused = four_hubs
    for hub, count in ((busy, 25), (quiet, 2), (off, 4)):
        _submissions(hub, count, status=SubmissionStatus.DELIVERED)
        TransactionalSend.objects.bulk_create(
            TransactionalSend(hub=hub, submission=submission, campaign_id="c",
                              external_send_id=str(uuid.uuid4()),
                              next_attempt_at=timezone.now() - timedelta(seconds=1))
            for submission in Submission.objects.filter(hub=hub)
        )
    triggered: list[int] = []
    monkeypatch.setattr(transactional, "transactional_trigger",
                        lambda *, hub_id: triggered.append(hub_id) or True)

    assert transactional.transactional_sweep() == 2
    assert sorted(triggered) == sorted([busy.pk, quiet.pk])
