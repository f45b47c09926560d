"""The sandbox over HTTP: the threaded server, the request handler (routing, bodies, faults that
drop connections, the inspection routes) and the ``BrazeSandbox`` facade that starts and stops it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from integrations.braze_sandbox.config import SandboxConfig, SandboxConfigError
from integrations.braze_sandbox.page import render_page
from integrations.braze_sandbox.rules import Identity, identity_of, parse_json_object
from integrations.braze_sandbox.state import MAX_BODY_BYTES, ApiRequest, Reply, SandboxState

logger = logging.getLogger(__name__)

# Bodies above the limit are still read (up to this much) so the client receives the 413 instead
# of a reset connection while it is still sending.
_DRAIN_LIMIT: Final = 64 * 1024 * 1024
_INSPECT_BODY_LIMIT: Final = 1024 * 1024
_SEND_PATH: Final = re.compile(r"/transactional/v1/campaigns/([^/]+)/send")


# --------------------------------------------------------------------------------------------
# HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: SandboxState) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can stall start-up.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
    # Headers and body go out in two writes; without TCP_NODELAY, delayed ACKs add ~40 ms each.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("braze sandbox: " + format, *args)

    def _route(self, method: str) -> None:
        path = urlsplit(self.path).path
        try:
            send = _SEND_PATH.fullmatch(path)
            if method == "POST" and (path in ("/users/track", "/users/delete") or send):
                self._api(path, unquote(send[1]) if send else "")
            elif path == "/_sandbox" or path.startswith("/_sandbox/"):
                self._inspect(method, path)
            else:
                self._read_small_body()
                self._write(Reply(404, {"message": "Not Found"}))
        except Exception:
            logger.exception("braze sandbox: error while answering %s %s", method, path)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._write(Reply(500, {"message": "Sandbox internal error"}))

    def _api(self, path: str, campaign_id: str) -> None:
        state = self.server.state
        generation = state.generation()
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._write(Reply(411, {"message": "Length Required"}))
            return
        size = self._content_length()
        if size is None:
            self.close_connection = True
            self._write(Reply(400, {"message": "Invalid Content-Length"}))
            return
        body = self._read_api_body(size)
        delay = state.latency_seconds()
        if delay > 0:
            time.sleep(delay)
        route = "send" if campaign_id else "delete" if path == "/users/delete" else "track"
        request = ApiRequest(
            route, path, campaign_id, self.headers.get("Authorization"), body, size, generation
        )
        reply = state.handle(request)
        if reply is None:
            self._drop()
        else:
            self._write(reply)

    def _content_length(self) -> int | None:
        raw = self.headers.get("Content-Length", "0").strip()
        return int(raw) if raw.isdigit() else None

    def _read_api_body(self, size: int) -> bytes | None:
        if size <= MAX_BODY_BYTES:
            return self.rfile.read(size)
        if size > _DRAIN_LIMIT:
            self.close_connection = True
            return None
        remaining = size
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1024 * 1024))
            if not chunk:
                break
            remaining -= len(chunk)
        return None

    def _read_small_body(self) -> bytes:
        size = self._content_length()
        if size is None or size > _INSPECT_BODY_LIMIT:
            self.close_connection = True
            return b""
        return self.rfile.read(size) if size else b""

    def _inspect(self, method: str, path: str) -> None:
        state = self.server.state
        body = self._read_small_body()
        route = path.removeprefix("/_sandbox").strip("/")
        getters: dict[str, Callable[[], Any]] = {
            "api/requests": state.requests,
            "api/profiles": state.profiles,
            "api/sends": state.sends,
            "api/stats": state.stats,
            "api/config": state.config,
        }
        if method == "GET" and route == "":
            page = render_page(state.requests(), state.profiles())
            self._write(Reply(200, page, _PAGE_HEADERS, "text/html; charset=utf-8"))
        elif method == "GET" and route in getters:
            self._write(Reply(200, getters[route]()))
        elif method == "POST" and route in ("api/config", "api/reset"):
            self._write(self._inspect_post(route, body))
        else:
            self._write(Reply(404, {"message": "Not Found"}))

    def _inspect_post(self, route: str, body: bytes) -> Reply:
        state = self.server.state
        payload, problem = parse_json_object(body) if body.strip() else ({}, "")
        if payload is None:
            return Reply(400, {"message": problem})
        if route == "api/reset":
            state.reset(config=payload.get("config") is True)
            return Reply(200, {"status": "reset", "config": state.config()})
        try:
            return Reply(200, state.configure(payload))
        except SandboxConfigError as exc:
            return Reply(400, {"message": str(exc)})

    def _write(self, reply: Reply) -> None:
        body = reply.body()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        try:
            self.end_headers()  # the first actual write: status line and headers
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (e.g. its read timeout during injected latency). Only
            # these two, and only here: anything else is a sandbox bug and is logged as one.
            self.close_connection = True
            logger.debug(
                "braze sandbox: client went away before the %s answer to %s %s was written",
                reply.status,
                self.command,
                urlsplit(self.path).path,
            )

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may already be gone
            self.connection.shutdown(socket.SHUT_RDWR)


_PAGE_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


# --------------------------------------------------------------------------------------------
# Public facade


class BrazeSandbox:
    """A Braze look-alike listening on ``host:port`` (port 0 picks a free one).

    Use as ``with BrazeSandbox(api_keys={"k"}) as sandbox: ...`` or ``start()``/``stop()``;
    ``serve_forever()`` serves in the calling thread instead. ``**config`` takes any
    ``SandboxConfig`` setting (``rate_limit``, ``fail_rate``, ``latency_ms``, …).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 9400,
        api_keys: Iterable[str] = (),
        forbidden_keys: Iterable[str] = (),
        accept_any_key: bool = False,
        **config: Any,
    ) -> None:
        settings = SandboxConfig().updated(
            {
                "api_keys": tuple(api_keys),
                "forbidden_keys": tuple(forbidden_keys),
                "accept_any_key": accept_any_key,
                **config,
            }
        )
        self.host = host
        self._requested_port = port
        self._state = SandboxState(settings)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._serving_in_caller = threading.Event()

    @property
    def port(self) -> int:
        """The bound port (the requested one until the server is bound)."""
        return self._server.server_address[1] if self._server else self._requested_port

    @property
    def url(self) -> str:
        """Base URL to use as the Braze REST endpoint, e.g. ``http://127.0.0.1:9400``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> BrazeSandbox:
        """Bind and serve in a daemon thread; returns self. Raises OSError if the port is taken."""
        server = self._bind()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"braze-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Bind (if needed) and serve in the calling thread until ``KeyboardInterrupt`` or until
        ``stop()`` is called from another thread."""
        server = self._server or self._bind()
        self._serving_in_caller.set()
        try:
            server.serve_forever(poll_interval=0.05)
        finally:
            self._serving_in_caller.clear()
            self._close()

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call more than once."""
        server, thread = self._server, self._thread
        if server is None:
            return
        # shutdown() waits for the serving loop, so only call it when one runs (or is starting).
        if thread is not None or self._serving_in_caller.is_set():
            server.shutdown()
        if thread is not None:
            thread.join(timeout=5)
        self._close()

    def __enter__(self) -> BrazeSandbox:
        return self if self.running else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def requests(self) -> list[dict[str, Any]]:
        """The request log, oldest first (copies)."""
        return self._state.requests()

    def profiles(self) -> list[dict[str, Any]]:
        """All profiles as JSON-ready dicts (copies)."""
        return self._state.profiles()

    def sends(self) -> list[dict[str, Any]]:
        """Transactional sends, oldest first (duplicates by external_send_id are not listed)."""
        return self._state.sends()

    def stats(self) -> dict[str, Any]:
        """Counts: requests, by_status, profiles, sends."""
        return self._state.stats()

    def find_profile(self, **identifier: Any) -> dict[str, Any] | None:
        """The profile for exactly one of ``external_id``, ``braze_id``, ``email``, ``phone``,
        ``user_alias={"alias_name", "alias_label"}`` (or ``alias_name`` + ``alias_label``)."""
        if set(identifier) == {"alias_name", "alias_label"}:
            identifier = {"user_alias": identifier}
        identity = identity_of(identifier) if len(identifier) == 1 else None
        if not isinstance(identity, Identity):
            raise ValueError(f"not one valid identifier: {sorted(identifier)}")
        return self._state.find_profile(identity)

    def config(self) -> dict[str, Any]:
        """The current settings, keys masked."""
        return self._state.config()

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change settings at runtime (all or nothing); returns the new settings, keys masked."""
        return self._state.configure(changes)

    def reset(self, *, config: bool = False) -> None:
        """Forget requests, profiles and sends; with ``config=True`` also restore the settings."""
        self._state.reset(config=config)

    def _bind(self) -> _Server:
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        self._server = _Server((self.host, self._requested_port), self._state)
        return self._server

    def _close(self) -> None:
        server, self._server, self._thread = self._server, None, None
        if server is not None:
            server.server_close()
