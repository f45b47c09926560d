"""A small, bounded HTTP/1.1 load generator for the bench (asyncio streams, uvloop when present).

Two modes:

* ``closed_loop``: N concurrent senders, each sending its next request as soon as the previous
  answer is read, for a fixed time and at most a fixed count (the intake measurement);
* ``open_loop``: requests started on a fixed schedule (e.g. 20 per second), whatever the answers
  (the end-to-end measurement).

Requests are pre-rendered bytes (only the Komo id and the email change), connections are kept alive
when the server allows it, and the client's own CPU time is reported, so the bench can show that
the client is not what limits the figures. Only loopback addresses are ever contacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field

LOOPBACK = ("127.0.0.1", "localhost", "::1")
CONNECT_TIMEOUT = 5.0
ANSWER_TIMEOUT = 15.0

# One request: the bytes to send and a tag the caller wants back with the answer (e.g. its email).
Request = tuple[bytes, str]
RequestFactory = Callable[[int], Request]


@dataclass(frozen=True)
class Sample:
    status: int  # 0: no answer (connection error or timeout)
    latency: float  # seconds from writing the request (connecting included) to the full answer
    done_at: float  # wall clock (time.time()) when the answer was read
    tag: str


@dataclass
class LoadResult:
    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0  # length of the measured interval
    client_cpu_seconds: float = 0.0  # this process's CPU time during the measured interval

    def ok(self, status: int) -> list[Sample]:
        return [s for s in self.samples if s.status == status]

    def rate(self, status: int) -> float:
        return len(self.ok(status)) / self.seconds if self.seconds else 0.0

    def client_cores(self) -> float:
        return self.client_cpu_seconds / self.seconds if self.seconds else 0.0


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(share * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def http_post(host: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """The bytes of one HTTP/1.1 POST with a JSON body."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Status and whether the connection may be reused; the body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, keep_alive = 0, lines[0].startswith(b"HTTP/1.1")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            keep_alive = value.strip().lower() == b"keep-alive"
    if length:
        await reader.readexactly(length)
    return status, keep_alive


class _Connection:
    """One sender's connection, opened on demand and reopened after the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"the bench only talks to loopback, not {host!r}")
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def exchange(self, data: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), CONNECT_TIMEOUT
            )
        assert self.reader is not None
        self.writer.write(data)
        status, keep_alive = await asyncio.wait_for(_read_answer(self.reader), ANSWER_TIMEOUT)
        if not keep_alive:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _timed(connection: _Connection, request: Request) -> Sample:
    data, tag = request
    started = time.perf_counter()
    try:
        status = await connection.exchange(data)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
        connection.close()
        status = 0
    return Sample(status, time.perf_counter() - started, time.time(), tag)


async def _closed_loop(
    host: str,
    port: int,
    factory: RequestFactory,
    *,
    senders: int,
    warmup: float,
    seconds: float,
    max_requests: int,
) -> LoadResult:
    sequence = itertools.count()
    samples: list[Sample] = []
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    cpu: dict[str, float] = {}

    async def sender() -> None:
        connection = _Connection(host, port)
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                break
            if now >= measure_from and "start" not in cpu:
                cpu["start"] = _cpu_seconds()
            number = next(sequence)
            if number >= max_requests:
                break
            sample = await _timed(connection, factory(number))
            if measure_from <= time.perf_counter() <= stop_at:
                samples.append(sample)
        connection.close()

    await asyncio.gather(*(sender() for _ in range(senders)))
    measured = min(stop_at, time.perf_counter()) - measure_from
    client_cpu = _cpu_seconds() - cpu.get("start", _cpu_seconds())
    return LoadResult(samples, max(measured, 0.0), client_cpu)


async def _open_loop(
    host: str, port: int, factory: RequestFactory, *, rate: float, count: int
) -> LoadResult:
    start = time.perf_counter()
    cpu_start = _cpu_seconds()
    tasks = []
    for number in range(count):
        delay = start + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(_timed(_Connection(host, port), factory(number))))
    samples = list(await asyncio.gather(*tasks))
    return LoadResult(samples, time.perf_counter() - start, _cpu_seconds() - cpu_start)


def _run(coroutine):  # type: ignore[no-untyped-def]
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def closed_loop(
    host: str,
    port: int,
    factory: RequestFactory,
    *,
    senders: int = 32,
    warmup: float = 1.0,
    seconds: float = 8.0,
    max_requests: int = 200_000,
) -> LoadResult:
    """``senders`` concurrent senders for ``warmup + seconds`` (at most ``max_requests``); only
    answers read inside the measured ``seconds`` count."""
    return _run(
        _closed_loop(
            host,
            port,
            factory,
            senders=senders,
            warmup=warmup,
            seconds=seconds,
            max_requests=max_requests,
        )
    )


def open_loop(
    host: str, port: int, factory: RequestFactory, *, rate: float, count: int
) -> LoadResult:
    """``count`` requests started ``rate`` per second on a fixed schedule, each on its own
    connection, whatever the answers."""
    return _run(_open_loop(host, port, factory, rate=rate, count=count))
