"""privacy_upgrade (plain rows of an older installation → encrypted and indexed) and
rotate_encryption_key (every encrypted column under the newest key), both in resumable batches."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.db.models import TextField, Value

from integrations import crypto
from integrations.fields import is_token
from integrations.models import (
    AttemptItem,
    DeliveredValue,
    DeliveryAttempt,
    Submission,
    TransactionalSend,
)
from integrations.services.braze_api import braze_client
from integrations.services.encryption import (
    ENCRYPTED_COLUMNS,
    StepResult,
    _submissions_upgrade,
    privacy_upgrade,
    privacy_upgrade_remaining,
)
from tests.privacy_data import HUB_CHANGES, plaintexts, populate

pytestmark = pytest.mark.django_db

HASHES = ("email_hash", "email_local_hash", "phone_hash", "external_id_hash")


@pytest.fixture(autouse=True)
def _fresh_client():
    cache.clear()
    braze_client.cache_clear()
    yield
    braze_client.cache_clear()


@pytest.fixture
def world(make_hub, sandbox):
    hub, _ = make_hub(endpoint=sandbox.url, **HUB_CHANGES)
    hub.skip_unchanged = True  # so DeliveredValue has rows
    hub.save()
    submissions = populate(hub)
    assert DeliveryAttempt.objects.exists() and AttemptItem.objects.exists()
    assert TransactionalSend.objects.filter(status="sent").exists()
    assert DeliveredValue.objects.exists()
    return hub, submissions


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def raw_values(table: str, column: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} ORDER BY id")  # noqa: S608
        return [row[0] for row in cursor.fetchall()]


def plain(text: str) -> Value:
    return Value(text, output_field=TextField())


def make_legacy() -> dict:
    """Rewrite every row in the shape an installation had before encryption; return what each
    should read back as."""
    expected = {"submissions": {}, "attempts": {}, "sends": {}, "items": {}}
    for submission in Submission.objects.all():
        problems = [{"field": "mobile", "value": "0412 555 301"}]
        expected["submissions"][submission.pk] = (
            submission.payload, problems,
            {column: getattr(submission, column) for column in HASHES},
        )  # fmt: skip
        Submission.objects.filter(pk=submission.pk).update(
            payload=None, problems=[], payload_legacy=submission.payload,
            problems_legacy=problems, **dict.fromkeys(HASHES, ""),
        )  # fmt: skip
    for model, key in ((DeliveryAttempt, "attempts"), (TransactionalSend, "sends")):
        for row in model.objects.all():
            expected[key][row.pk] = (row.request_body, row.response_body)
            model.objects.filter(pk=row.pk).update(
                request_body={}, request_body_legacy=row.request_body,
                response_body=plain(row.response_body),
            )  # fmt: skip
    for item in AttemptItem.objects.all():
        error = f"invalid email Zelda.Quackenbush@Example.org ({item.pk})"
        expected["items"][item.pk] = error
        AttemptItem.objects.filter(pk=item.pk).update(error=plain(error))
    for value in DeliveredValue.objects.all():
        value.person_key = f'user_alias:{{"alias_name":"zelda{value.pk}@example.org"}}'
        value.save()
    return expected


def assert_upgraded(expected: dict) -> None:
    for submission in Submission.objects.all():
        payload, problems, hashes = expected["submissions"][submission.pk]
        assert (submission.payload, submission.problems) == (payload, problems)
        assert {column: getattr(submission, column) for column in HASHES} == hashes
        assert (submission.payload_legacy, submission.problems_legacy) == (None, None)
    for model, key in ((DeliveryAttempt, "attempts"), (TransactionalSend, "sends")):
        for row in model.objects.all():
            assert (row.request_body, row.response_body) == expected[key][row.pk]
            assert row.request_body_legacy is None
    for item in AttemptItem.objects.all():
        assert item.error == expected["items"][item.pk]
    for table, column in (
        ("integrations_submission", "payload"), ("integrations_submission", "problems"),
        ("integrations_deliveryattempt", "request_body"),
        ("integrations_deliveryattempt", "response_body"),
        ("integrations_transactionalsend", "request_body"),
        ("integrations_attemptitem", "error"),
    ):  # fmt: skip
        assert all(is_token(value) for value in raw_values(table, column) if value), column
    assert not DeliveredValue.objects.exists()
    assert privacy_upgrade_remaining() == 0


def test_privacy_upgrade_encrypts_and_indexes_plain_rows(world):
    expected = make_legacy()
    assert privacy_upgrade_remaining() > 0
    assert Submission.objects.filter(email_hash="").count() == 4

    out = run("privacy_upgrade", "--batch-size", "3")

    assert_upgraded(expected)
    assert "left" in out and " 0 left" in out
    everything = " ".join(
        str(value) for table, column in (
            ("integrations_submission", "payload"), ("integrations_attemptitem", "error"),
            ("integrations_deliveryattempt", "response_body"),
        ) for value in raw_values(table, column)
    ).lower()  # fmt: skip
    assert not [text for text in plaintexts() if text.lower() in everything]
    # a second run finds nothing to do
    assert "Upgraded 0 row(s); 0 left." in run("privacy_upgrade")


class Interrupted(Exception):
    pass


class StopAfter:
    """A progress listener that stops the run after some batches, like a Ctrl-C would."""

    def __init__(self, batches: int) -> None:
        self.batches = batches

    def step_started(self, label: str, total: int) -> None:
        pass

    def advanced(self, rows: int) -> None:
        self.batches -= 1
        if self.batches <= 0:
            raise Interrupted


def test_an_interrupted_upgrade_is_resumed_by_running_it_again(world):
    expected = make_legacy()
    before = privacy_upgrade_remaining()

    with pytest.raises(Interrupted):
        privacy_upgrade(batch_size=2, progress=StopAfter(batches=3))

    left = privacy_upgrade_remaining()
    assert 0 < left < before
    # the first step (submissions, 2 batches) finished, the second was cut short
    assert Submission.objects.filter(payload_legacy__isnull=True).count() == 4
    assert Submission.objects.filter(payload_legacy__isnull=False).count() == 0
    report = privacy_upgrade(batch_size=2)
    assert report.changed == left
    assert_upgraded(expected)


def test_a_row_changed_meanwhile_is_left_as_its_writer_left_it(world):
    """Retention (or erasure) emptied a row between the upgrade's read and its write: the
    upgrade must not bring the plain payload back."""
    make_legacy()
    first = Submission.objects.order_by("pk").first()
    stale = list(Submission.objects.filter(pk=first.pk).values(
        "id", "hub_id", "payload_legacy", "problems_legacy"))  # fmt: skip
    Submission.objects.filter(pk=first.pk).update(payload_legacy=None, problems_legacy=None)

    result = StepResult("submissions")
    _submissions_upgrade(stale, result)

    assert (result.changed, result.skipped) == (0, 1)
    first.refresh_from_db()
    assert first.payload is None and first.email_hash == ""


def test_rotation_re_encrypts_every_column_and_the_old_key_can_go(world, settings):
    old_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *old_keys]
    readable = {
        (model, column): {row.pk: getattr(row, column) for row in model.objects.all()}
        for model, column in ENCRYPTED_COLUMNS
    }
    assert all(readable.values()), "every encrypted column has rows"
    # A value written as a Fernet token (before AES-GCM) under the old key: read, then rewritten.
    legacy_item = AttemptItem.objects.first()
    fernet_token = Fernet(old_keys[0].encode()).encrypt(b"refused: anna@example.com").decode()
    AttemptItem.objects.filter(pk=legacy_item.pk).update(error=plain(fernet_token))
    readable[AttemptItem, "error"][legacy_item.pk] = "refused: anna@example.com"

    out = run("rotate_encryption_key", "--batch-size", "2")
    assert "Re-encrypted" in out

    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is gone
    for (model, column), values in readable.items():
        assert {row.pk: getattr(row, column) for row in model.objects.all()} == values
        table = model._meta.db_table
        for token in raw_values(table, model._meta.get_field(column).column):
            if token:
                assert token.startswith(crypto.GCM_PREFIX), (table, column)
                crypto.decrypt_bytes(token)  # raises if any row is still under the old key
    # a second run writes nothing
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *old_keys]
    assert "Re-encrypted 0 value(s)" in run("rotate_encryption_key")


def test_rotation_names_values_no_key_can_read(world, settings):
    from django.core.management import CommandError

    foreign = Fernet(Fernet.generate_key()).encrypt(b'"x"').decode()
    first = AttemptItem.objects.first()
    AttemptItem.objects.filter(pk=first.pk).update(error=plain(foreign))
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(),
                                      *settings.FIELD_ENCRYPTION_KEYS]
    with pytest.raises(CommandError, match="1 value"):
        run("rotate_encryption_key")
