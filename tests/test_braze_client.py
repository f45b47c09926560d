"""BrazeClient over real HTTP: against the sandbox, and against a stub for odd answers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from integrations.braze.client import (
    RESPONSE_TEXT_LIMIT,
    BrazeClient,
    ItemError,
    Outcome,
    RateLimit,
    TrackResult,
    body_size,
    serialize_body,
)
from integrations.braze_sandbox import BrazeSandbox

KEY = "client-test-key-5f0c2a9e-0001"
FORBIDDEN = "client-test-key-without-users-track"


def track_body(*external_ids: str) -> dict[str, Any]:
    return {"attributes": [{"external_id": x, "first_name": "Ada"} for x in external_ids]}


def assert_key_hidden(result: TrackResult, key: str = KEY) -> None:
    assert key not in repr(result)


@pytest.fixture
def sandbox() -> Iterator[BrazeSandbox]:
    """A fresh sandbox per test (shadows the shared one in conftest: these tests reconfigure it)."""
    with BrazeSandbox(port=0, api_keys={KEY}, forbidden_keys={FORBIDDEN}) as server:
        yield server


@pytest.fixture
def client() -> Iterator[BrazeClient]:
    with BrazeClient(connect_timeout=2, read_timeout=3) as braze:
        yield braze


@dataclass
class Stub:
    """A tiny HTTP server that answers every POST with ``answer`` and records what it received."""

    url: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    echo_authorization: bool = False
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def stub() -> Iterator[Stub]:
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append((self.path, dict(self.headers.items()), data))
            body = state.body
            if state.echo_authorization:
                key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                answer = {"message": f"unknown key {key}", "errors": [f"key={key}"]}
                body = json.dumps(answer).encode()
            self.send_response(state.status)
            for name, value in state.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


# ---- against the sandbox


def test_success(sandbox: BrazeSandbox, client: BrazeClient) -> None:
    # given
    body = track_body("u1", "u2")
    # when
    result = client.track(endpoint=sandbox.url, api_key=KEY, body=body)
    # then
    assert result.outcome is Outcome.SUCCESS
    assert result.ok
    assert result.status_code == 201
    assert result.message == "success"
    assert result.item_errors == ()
    assert json.loads(result.response_text)["attributes_processed"] == 2
    assert result.request_bytes == body_size(body) == len(serialize_body(body))
    assert result.duration_ms > 0
    assert result.rate_limit is not None
    assert (result.rate_limit.limit, result.rate_limit.remaining) == (3000, 2999)
    assert sandbox.find_profile(external_id="u2") is not None
    assert_key_hidden(result)


def test_partial_errors_are_mapped_by_array_and_index(
    sandbox: BrazeSandbox, client: BrazeClient
) -> None:
    # given: attributes[1] and events[0] are invalid
    body = {
        "attributes": [
            {"external_id": "ok-0", "dob": "1990-01-31"},
            {"external_id": "bad-1", "dob": "31/01/1990"},
            {"external_id": "ok-2"},
        ],
        "events": [
            {"external_id": "ok-0", "name": "entered"},
            {"external_id": "ok-0", "name": "entered", "time": "2024-05-01T10:00:00Z"},
        ],
    }
    # when
    result = client.track(endpoint=sandbox.url, api_key=KEY, body=body)
    # then
    assert result.outcome is Outcome.PARTIAL
    assert result.ok
    assert [(e.input_array, e.index) for e in result.item_errors] == [
        ("attributes", 1),
        ("events", 0),
    ]
    assert "dob" in result.item_errors[0].type
    assert sandbox.find_profile(external_id="bad-1") is None
    assert sandbox.find_profile(external_id="ok-2") is not None


@pytest.mark.parametrize(
    ("key", "status", "outcome"),
    [
        ("unknown-key-0000-1111-2222", 401, Outcome.UNAUTHORIZED),
        (FORBIDDEN, 403, Outcome.FORBIDDEN),
    ],
)
def test_refused_keys(
    sandbox: BrazeSandbox, client: BrazeClient, key: str, status: int, outcome: Outcome
) -> None:
    result = client.track(endpoint=sandbox.url, api_key=key, body=track_body("u1"))

    assert (result.status_code, result.outcome) == (status, outcome)
    assert not result.ok
    assert result.message
    assert_key_hidden(result, key)


def test_body_over_4_mb_is_too_large(sandbox: BrazeSandbox, client: BrazeClient) -> None:
    body = {"attributes": [{"external_id": "u1", "notes": "x" * (4 * 1024 * 1024)}]}

    result = client.track(endpoint=sandbox.url, api_key=KEY, body=body)

    assert (result.status_code, result.outcome) == (413, Outcome.TOO_LARGE)
    assert result.request_bytes > 4 * 1024 * 1024


def test_429_with_rate_limit_headers(sandbox: BrazeSandbox, client: BrazeClient) -> None:
    # given a budget of one request per minute
    sandbox.configure(rate_limit=1, rate_window=60)
    first = client.track(endpoint=sandbox.url, api_key=KEY, body=track_body("u1"))
    # when
    second = client.track(endpoint=sandbox.url, api_key=KEY, body=track_body("u2"))
    # then
    assert first.outcome is Outcome.SUCCESS
    assert first.rate_limit == RateLimit(limit=1, remaining=0, reset=first.rate_limit.reset)
    assert (second.status_code, second.outcome) == (429, Outcome.RATE_LIMITED)
    assert second.rate_limit is not None
    assert second.rate_limit.remaining == 0
    assert second.rate_limit.reset is not None
    assert time.time() + 50 < second.rate_limit.reset <= time.time() + 61


@pytest.mark.parametrize("status", [500, 502, 503])
def test_injected_server_errors(sandbox: BrazeSandbox, client: BrazeClient, status: int) -> None:
    sandbox.configure(status_next=[status])

    failed = client.track(endpoint=sandbox.url, api_key=KEY, body=track_body("u1"))
    recovered = client.track(endpoint=sandbox.url, api_key=KEY, body=track_body("u1"))

    assert (failed.status_code, failed.outcome) == (status, Outcome.SERVER_ERROR)
    assert recovered.outcome is Outcome.SUCCESS


def test_slow_answer_is_a_timeout(sandbox: BrazeSandbox) -> None:
    # given
    sandbox.configure(latency_ms=600)
    impatient = BrazeClient(connect_timeout=1, read_timeout=0.15)
    # when
    started = time.perf_counter()
    result = impatient.track(endpoint=sandbox.url, api_key=KEY, body=track_body("u1"))
    elapsed = time.perf_counter() - started
    impatient.close()
    # then
    assert (result.status_code, result.outcome) == (None, Outcome.TIMEOUT)
    assert "timeout" in result.message.lower()
    assert elapsed < 0.55
    assert_key_hidden(result)


def test_dropped_connection_is_a_connection_error(
    sandbox: BrazeSandbox, client: BrazeClient
) -> None:
    sandbox.configure(drop_next=1)

    result = client.track(endpoint=sandbox.url, api_key=KEY, body=track_body("u1"))

    assert (result.status_code, result.outcome) == (None, Outcome.CONNECTION_ERROR)
    assert result.message.startswith("Connection reset")
    assert sandbox.stats()["by_status"] == {"dropped": 1}


def test_nothing_listening_is_a_connection_error(client: BrazeClient) -> None:
    # given a port that was free a moment ago
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    # when
    result = client.track(endpoint=f"http://127.0.0.1:{port}", api_key=KEY, body=track_body("u"))
    # then
    assert (result.status_code, result.outcome) == (None, Outcome.CONNECTION_ERROR)
    assert "refused" in result.message.lower()


def test_transactional_send(sandbox: BrazeSandbox, client: BrazeClient) -> None:
    body = {"external_send_id": "entry-42", "recipient": {"external_user_id": "u1"}}

    result = client.send_transactional(
        endpoint=sandbox.url, api_key=KEY, campaign_id="camp/1", body=body
    )

    assert result.outcome is Outcome.SUCCESS
    assert json.loads(result.response_text)["status"] == "queued"
    [send] = sandbox.sends()
    assert send["campaign_id"] == "camp/1"


def test_body_that_is_not_json_is_not_sent(sandbox: BrazeSandbox, client: BrazeClient) -> None:
    result = client.track(
        endpoint=sandbox.url, api_key=KEY, body={"attributes": [{"n": float("nan")}]}
    )

    assert (result.status_code, result.outcome) == (None, Outcome.BAD_REQUEST)
    assert sandbox.requests() == []


@pytest.mark.parametrize("key", ["", "two words", "line\nbreak", "ключ"])
def test_key_that_cannot_be_sent_is_unauthorized_without_a_request(
    sandbox: BrazeSandbox, client: BrazeClient, key: str
) -> None:
    result = client.track(endpoint=sandbox.url, api_key=key, body=track_body("u1"))

    assert (result.status_code, result.outcome) == (None, Outcome.UNAUTHORIZED)
    assert sandbox.requests() == []


# ---- against a stub, for answers the sandbox never gives


def test_request_is_exactly_what_the_contract_says(stub: Stub, client: BrazeClient) -> None:
    # given
    stub.status, stub.body = 201, b'{"message":"success"}'
    body = {"attributes": [{"external_id": "u1", "city": "Zürich"}]}
    # when
    client.track(endpoint=stub.url + "/", api_key=KEY, body=body)
    # then
    [(path, headers, data)] = stub.received
    assert path == "/users/track"
    assert data == serialize_body(body)
    assert json.loads(data) == body
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "komo-braze-portal/1.0"


def test_redirect_is_not_followed(stub: Stub, sandbox: BrazeSandbox, client: BrazeClient) -> None:
    # given a server that redirects to a (working) Braze look-alike
    stub.status, stub.headers = 302, {"Location": f"{sandbox.url}/users/track"}
    # when
    result = client.track(endpoint=stub.url, api_key=KEY, body=track_body("u1"))
    # then
    assert (result.status_code, result.outcome) == (302, Outcome.REDIRECT)
    assert sandbox.url in result.message
    assert len(stub.received) == 1
    assert sandbox.requests() == []


def test_key_echoed_by_the_server_is_redacted(stub: Stub, client: BrazeClient) -> None:
    stub.status, stub.echo_authorization = 400, True

    result = client.track(endpoint=stub.url, api_key=KEY, body=track_body("u1"))

    assert result.outcome is Outcome.BAD_REQUEST
    assert "[redacted]" in result.message
    assert "[redacted]" in result.response_text
    assert_key_hidden(result)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SUCCESS),
        (202, Outcome.SUCCESS),
        (400, Outcome.BAD_REQUEST),
        (404, Outcome.NOT_FOUND),
        (405, Outcome.BAD_REQUEST),
        (413, Outcome.TOO_LARGE),
        (422, Outcome.BAD_REQUEST),
        (504, Outcome.SERVER_ERROR),
        (301, Outcome.REDIRECT),
    ],
)
def test_status_code_mapping(
    stub: Stub, client: BrazeClient, status: int, outcome: Outcome
) -> None:
    stub.status = status

    assert client.track(endpoint=stub.url, api_key=KEY, body={}).outcome is outcome


def test_odd_error_shapes_are_tolerated(stub: Stub, client: BrazeClient) -> None:
    # given errors[] in every shape seen or imaginable
    errors = [
        "plain text error",
        {"type": "no index", "input_array": "events"},
        {"type": "string index", "input_array": "attributes", "index": "3"},
        {"message": "message instead of type", "index": 2},
        {"index": True, "input_array": 7},
        42,
    ]
    stub.status, stub.body = 201, json.dumps({"message": "success", "errors": errors}).encode()
    # when
    result = client.track(endpoint=stub.url, api_key=KEY, body={})
    # then
    assert result.outcome is Outcome.PARTIAL
    assert result.item_errors == (
        ItemError(input_array="", index=None, type="plain text error"),
        ItemError(input_array="events", index=None, type="no index"),
        ItemError(input_array="attributes", index=3, type="string index"),
        ItemError(input_array="", index=2, type="message instead of type"),
        ItemError(input_array="", index=None, type='{"index": true, "input_array": 7}'),
        ItemError(input_array="", index=None, type="42"),
    )


def test_non_json_answer_keeps_a_truncated_text(stub: Stub, client: BrazeClient) -> None:
    stub.status, stub.body = 502, b"<html>" + b"x" * (RESPONSE_TEXT_LIMIT * 2) + b"</html>"

    result = client.track(endpoint=stub.url, api_key=KEY, body={})

    assert (result.outcome, result.message) == (Outcome.SERVER_ERROR, "HTTP 502")
    assert result.item_errors == ()
    assert len(result.response_text) == RESPONSE_TEXT_LIMIT
    assert result.response_text.startswith("<html>")


def test_empty_errors_list_is_plain_success(stub: Stub, client: BrazeClient) -> None:
    stub.status, stub.body = 201, b'{"message":"success","errors":[]}'

    assert client.track(endpoint=stub.url, api_key=KEY, body={}).outcome is Outcome.SUCCESS


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {"x-ratelimit-limit": "3000", "X-RATELIMIT-REMAINING": "12", "X-RateLimit-Reset": "17"},
            RateLimit(limit=3000, remaining=12, reset=17),
        ),
        ({"X-RateLimit-Remaining": "5.0"}, RateLimit(limit=None, remaining=5, reset=None)),
        ({"X-RateLimit-Reset": "soon"}, None),
        ({}, None),
    ],
)
def test_rate_limit_headers_are_parsed_case_insensitively(
    stub: Stub, client: BrazeClient, headers: dict[str, str], expected: RateLimit | None
) -> None:
    stub.status, stub.headers = 201, headers

    assert client.track(endpoint=stub.url, api_key=KEY, body={}).rate_limit == expected


def test_client_uses_the_given_session_and_never_follows_redirects(stub: Stub) -> None:
    # given a session that would follow redirects by default
    session = requests.Session()
    stub.status, stub.headers = 307, {"Location": stub.url + "/elsewhere"}
    # when
    result = BrazeClient(session=session).track(endpoint=stub.url, api_key=KEY, body={})
    # then
    assert result.outcome is Outcome.REDIRECT
    assert [path for path, _headers, _data in stub.received] == ["/users/track"]
