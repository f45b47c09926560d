"""SSRF: no hub configuration makes the portal call anything but Braze's REST hosts and the
operator's extra endpoints; redirects are never followed; an endpoint that slipped into the
database anyway (an old row, a narrowed setting) is refused before a byte is sent."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError
from urllib3.util import parse_url

from integrations.braze.instances import BRAZE_REST_HOSTS, endpoint_allowed
from integrations.models import BrazeConnection, ConnectionStatus, Submission, SubmissionStatus
from integrations.services.braze_api import braze_client
from integrations.services.delivery import delivery_run
from integrations.services.hubs import connection_test, hub_config_import
from integrations.services.intake import submission_receive
from tests.conftest import DEFAULT_CONFIG, DEMO_KEY, komo_entry

SANDBOX_PREFIX = "http://127.0.0.1:9400"


class Recorder:
    """A loopback HTTP server that counts what reaches it; optionally answers with a redirect."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.hits: list[tuple[str, str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                recorder.hits.append(("POST", self.path, self.headers.get("Authorization", "")))
                if redirect_to:
                    self.send_response(307)
                    self.send_header("Location", redirect_to + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b'{"message":"success"}'
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def evil() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_client():
    braze_client.cache_clear()
    yield
    braze_client.cache_clear()


HOSTILE_ENDPOINTS = [
    "http://169.254.169.254/latest/meta-data",
    "http://rest.iad-01.braze.com",  # not https
    "https://rest.iad-01.braze.com.evil.example",
    "https://rest.iad-01.braze.com@evil.example",
    "https://evil.example/rest.iad-01.braze.com",
    "https://evil.example#@rest.iad-01.braze.com",
    "https://evil.example\\@rest.iad-01.braze.com",
    "https://rest.iad-01.braze.com:444",
    "https://rest.iad-01.braze.com/users/track?next=http://evil.example",
    "http://127.0.0.1:9401",  # a neighbour of the allowed sandbox port
    "http://127.0.0.1:9400@169.254.169.254",
    "http://127.0.0.1:9400.evil.example",
    "http://localhost:9400",  # the prefix names 127.0.0.1, not localhost
    "http://2130706433:9400",  # 127.0.0.1 as a decimal
    "http://[::1]:9400",
    "file:///etc/passwd",
    "gopher://127.0.0.1:9400/",
    "https://rest.iad-01.braze.com\t.evil.example",
    " https://evil.example",
    "https://ｒｅｓｔ.iad-01.braze.com",
]


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", HOSTILE_ENDPOINTS)
def test_import_refuses_every_endpoint_outside_the_allow_list(endpoint, settings):
    settings.BRAZE_EXTRA_ENDPOINTS = [SANDBOX_PREFIX]
    config = copy.deepcopy(DEFAULT_CONFIG)
    config["braze"] = {"rest_endpoint": endpoint, "api_key": DEMO_KEY}
    with pytest.raises(ValidationError):
        hub_config_import(config=config)
    assert not BrazeConnection.objects.exists()


# Pieces that URL parsers are known to disagree about, to build hostile URLs from.
_pieces = st.sampled_from([
    "https://", "http://", "rest.iad-01.braze.com", "127.0.0.1", ":9400", ":443", "@", "\\",
    "#", "?", "/", "%2f", "%40", "evil.example", ".", "[::1]", "user:pw@", "%00", " ", "\t",
    "．", "@evil.example", "/users/track", ":", "//",
])


@settings(max_examples=500, deadline=None)
@given(parts=st.lists(_pieces, min_size=1, max_size=8))
def test_whatever_is_allowed_is_what_requests_would_call(parts):
    """The allow-list and the HTTP library agree on the host: nothing allowed by one is sent
    somewhere else by the other."""
    url = "".join(parts)
    if not endpoint_allowed(url, [SANDBOX_PREFIX]):
        return
    target = parse_url(url.strip().rstrip("/") + "/users/track")
    braze = target.scheme == "https" and target.host in BRAZE_REST_HOSTS and target.port is None
    sandbox = target.scheme == "http" and target.host == "127.0.0.1" and target.port == 9400
    assert braze or sandbox, url
    assert target.auth is None, url


def _connection_tampered(make_hub, settings, endpoint: str):
    """A hub whose stored endpoint is outside the allow-list (saved before a setting narrowed,
    or written to the database directly)."""
    settings.BRAZE_EXTRA_ENDPOINTS = ["http://127.0.0.1:"]
    hub, _ = make_hub(endpoint="http://127.0.0.1:1")
    BrazeConnection.objects.filter(hub=hub).update(rest_endpoint=endpoint)
    settings.BRAZE_EXTRA_ENDPOINTS = [SANDBOX_PREFIX]
    hub.refresh_from_db()
    return hub


@pytest.mark.django_db
def test_delivery_refuses_a_stored_endpoint_outside_the_allow_list(make_hub, settings, evil):
    # given
    hub = _connection_tampered(make_hub, settings, evil.url)
    submission_receive(hub=hub, payload=komo_entry())
    # when
    report = delivery_run(hub_id=hub.pk)
    # then nothing was sent, the connection is paused with the reason, the submission waits
    assert evil.hits == []
    assert report.paused and report.requests == 0
    hub.connection.refresh_from_db()
    assert hub.connection.status == ConnectionStatus.PAUSED
    assert "not an allowed Braze host" in hub.connection.status_reason
    assert Submission.objects.get().status == SubmissionStatus.PENDING


@pytest.mark.django_db
def test_connection_test_refuses_a_stored_endpoint_outside_the_allow_list(
    make_hub, settings, evil
):
    hub = _connection_tampered(make_hub, settings, evil.url)
    connection_test(connection=hub.connection)
    assert evil.hits == []


@pytest.mark.django_db
def test_redirects_are_never_followed(make_hub, settings, evil):
    # given an allowed endpoint that answers with a redirect to a server outside the list
    redirector = Recorder(redirect_to=evil.url)
    try:
        settings.BRAZE_EXTRA_ENDPOINTS = [redirector.url]
        hub, _ = make_hub(endpoint=redirector.url)
        submission_receive(hub=hub, payload=komo_entry())
        # when
        delivery_run(hub_id=hub.pk)
        connection_test(connection=BrazeConnection.objects.get(hub=hub))
    finally:
        redirector.stop()
    # then the redirect target never saw a request, let alone the key
    assert len(redirector.hits) == 2
    assert evil.hits == []
    connection = BrazeConnection.objects.get(hub=hub)
    assert connection.status == ConnectionStatus.PAUSED
    assert Submission.objects.get().status == SubmissionStatus.PENDING
