"""Bench-only intake ceilings (served only under ``portal.settings_bench``, never in production).

* ``bare``: answers 202 and does nothing else: gunicorn + Django + middleware.
* ``insert``: stores the body with one INSERT (autocommit: one statement, one transaction)
  as a row of the submissions table, the queue of record with its indexes, and answers 202: the
  floor of any durable intake into this schema. The ratio target is measured against this one.
  Its row has the webhook's shape: a payload as long as the webhook's ciphertext and the three
  blind-index hashes a webhook with an email and a phone writes (issue 9).
* ``insert_small``: the same INSERT into a one-index bench table (``bench_raw``, created by the
  runner): the floor of a durable intake with no schema at all, for reference.
* ``webhook_plain`` (not a ceiling): the webhook's work without DRF, measured in process only
  (``tests/bench/inprocess.py``: what DRF costs).

The ceilings do no JSON parsing, no validation, no authentication: just the write. Plain Django
views without CSRF, like the webhook, and served the webhook's way: ``portal.settings_bench``
adds ``/bench/`` to ``INTAKE_PATH_PREFIXES``, so they take the same short path through the
middleware
(``IntakeMiddleware``), run their INSERT through the webhook's own executor (one kept cursor,
server-side parameters, prepared by psycopg after a few runs: ``statement_run``) and answer with
a Content-Length as the webhook does. Only the work differs.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from integrations.services.insert import statement_run

ACCEPTED = b'{"status":"pending"}'
CEILING_HUB = "bench-ceiling"
SMALL_INSERT_SQL = "INSERT INTO bench_raw (body, received_at) VALUES (%s, CURRENT_TIMESTAMP)"
# Columns of a submission row the ceiling fills itself; every other column gets its model default
# as a constant, so a field added to Submission later is still filled.
_EXPRESSIONS = {
    "hub_id": "%s",
    "payload": "%s",
    "public_id": "gen_random_uuid()",
    "komo_id": "gen_random_uuid()::text",
    "event": "'bench'",
    "received_at": "now()",
    "status": "'ignored'",
    # A webhook's row is encrypted and carries its blind-index hashes (an entry in each hash
    # index), so the floor of a durable intake into this schema does too: a payload as long as
    # the webhook's ciphertext (base64 of the body) and three hashes. Encrypting and hashing
    # themselves are the webhook's work, measured against this floor.
    "email_hash": "md5(gen_random_uuid()::text)",
    "email_local_hash": "md5(gen_random_uuid()::text)",
    "phone_hash": "md5(gen_random_uuid()::text)",
}


def _accepted() -> HttpResponse:
    response = HttpResponse(ACCEPTED, status=202, content_type="application/json")
    response["Content-Length"] = str(len(ACCEPTED))
    return response


@csrf_exempt
def bare(request: HttpRequest) -> HttpResponse:
    return _accepted()


@lru_cache(maxsize=1)
def _submission_insert() -> tuple[str, int]:
    """The INSERT statement (defaults inlined as literals) and the ceiling hub's id."""
    from integrations.models import Hub, Submission

    fields = [f for f in Submission._meta.local_concrete_fields if not f.primary_key]
    values = [
        _EXPRESSIONS.get(f.column)
        or connection.ops.compose_sql("%s", [f.get_db_prep_save(f.get_default(), connection)])
        for f in fields
    ]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(Submission._meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(values)})"  # noqa: S608
    return sql, Hub.objects.values_list("pk", flat=True).get(slug=CEILING_HUB)


@csrf_exempt
def insert(request: HttpRequest) -> HttpResponse:
    sql, hub_id = _submission_insert()
    statement_run(sql, [hub_id, base64.urlsafe_b64encode(request.body).decode()])
    return _accepted()


@csrf_exempt
def insert_small(request: HttpRequest) -> HttpResponse:
    statement_run(SMALL_INSERT_SQL, [request.body.decode("utf-8")])
    return _accepted()


@csrf_exempt
def webhook_plain(request: HttpRequest, slug: str) -> HttpResponse:
    """The webhook's work for a valid body without DRF (``tests/bench/inprocess.py`` measures
    what DRF costs against it): the same hub lookup and token check, intake limit, signature
    check, envelope serializer, ``submission_receive`` and answer, called from a plain view.
    Refusals are not this probe's concern (any problem is a plain 400)."""
    from integrations.apis import _answer
    from integrations.services.intake import (
        hub_authenticate_by_slug,
        hub_signature_check,
        submission_receive,
    )
    from integrations.services.intake_window import intake_rate_wait
    from integrations.webhook.serializers import KomoWebhookSerializer

    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    hub = hub_authenticate_by_slug(slug=slug, token=token)
    if hub is None or intake_rate_wait(hub=hub):
        return HttpResponse(status=400)
    body = request.body
    hub_signature_check(hub=hub, header=request.headers.get("X-Komo-Signature"), body=body)
    checked = KomoWebhookSerializer(data=body)
    if not checked.is_valid():
        return HttpResponse(status=400)
    result = submission_receive(
        hub=hub, payload=checked.validated_data, text=checked.text, komo_time=checked.komo_time
    )
    return _answer(result.public_id, result.status, status=202 if result.created else 200)
