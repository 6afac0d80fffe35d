"""A counting HTTP proxy on loopback: sits between a tool and the S3 server.

It passes bytes through unchanged (the Host header too, so SigV4 signatures
stay valid) and parses only the request heads and their body framing, so that
it can count every request by kind and timestamp the first one. Responses are
copied back as an opaque stream: the clients measured here never pipeline.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from bench.relay import stop_serving

_CHUNK = 256 * 1024
# Our tool's deploy record: counted as its own kind so that "files sent" stays files.
RECORD_BASENAME = ".s3-cloudfront-deploy.json"


def classify(method: str, target: str, headers: dict[str, str]) -> str:
    """The kind of one S3 request (path-style addressing: `/bucket/key?query`)."""
    kind = _classify(method, target, headers)
    if kind in ("GET", "PUT", "HEAD") and urlsplit(target).path.endswith("/" + RECORD_BASENAME):
        return kind + "_RECORD"
    return kind


def _classify(method: str, target: str, headers: dict[str, str]) -> str:
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    path = parts.path.lstrip("/")
    has_key = "/" in path and path.split("/", 1)[1] != ""
    if method == "GET":
        if not path:
            return "LIST_BUCKETS"
        if not has_key:
            return (
                "LIST" if ("list-type" in query or not query or "prefix" in query) else "GET_BUCKET"
            )
        return "GET"
    if method == "HEAD":
        return "HEAD" if has_key else "HEAD_BUCKET"
    if method == "PUT":
        if not has_key:
            return "PUT_BUCKET"
        if "uploadId" in query:
            return "PART_COPY" if "x-amz-copy-source" in headers else "PART"
        return "COPY" if "x-amz-copy-source" in headers else "PUT"
    if method == "POST":
        if "delete" in query:
            return "DELETE_BATCH"
        if "uploads" in query:
            return "MPU_INIT"
        if "uploadId" in query:
            return "MPU_COMPLETE"
        return "POST"
    if method == "DELETE":
        if "uploadId" in query:
            return "MPU_ABORT"
        return "DELETE" if has_key else "DELETE_BUCKET"
    return method


@dataclass
class Tally:
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    first_request: float | None = None  # time.monotonic() of the first request head
    last_request: float | None = None
    bytes_up: int = 0
    connections: int = 0  # TCP connections the tool opened
    # (request head seen, first byte of its answer back): for the round trips in sequence
    intervals: list[tuple[float, float]] = field(default_factory=list)


def rounds(intervals: list[tuple[float, float]]) -> int:
    """Round trips on the critical path: the most requests of which each started after
    the one before had its answer (the largest set of non-overlapping intervals, by the
    earliest-end greedy rule)."""
    count, free_from = 0, float("-inf")
    for start, end in sorted(intervals, key=lambda iv: iv[1]):
        if start >= free_from:
            count += 1
            free_from = end
    return count


class CountingProxy:
    """Run with `with CountingProxy(upstream_host, upstream_port) as proxy:`; `proxy.url`."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.tally = Tally()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> Tally:
        """Start a new count; returns the previous one."""
        with self._lock:
            old, self.tally = self.tally, Tally()
        return old

    def _record(self, kind: str, body: int) -> None:
        now = time.monotonic()
        with self._lock:
            tally = self.tally
            tally.counts[kind] += 1
            tally.bytes_up += body
            if tally.first_request is None:
                tally.first_request = now
            tally.last_request = now

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        fut.result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        stop_serving(self._loop, self._thread, self._server)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, limit=1 << 20)
        self.port = self._server.sockets[0].getsockname()[1]

    def _answered(self, waiting: list[float]) -> None:
        """The first bytes of an answer went back: close the oldest open request."""
        if waiting:
            start = waiting.pop(0)
            with self._lock:
                self.tally.intervals.append((start, time.monotonic()))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A connection cut at shutdown ends quietly (asyncio logs every client task that
        # ends cancelled).
        with contextlib.suppress(asyncio.CancelledError):
            await self._serve(reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.tally.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        waiting: list[float] = []  # request heads not yet answered (no pipelining)
        pump = asyncio.create_task(_pipe(up_reader, writer, lambda: self._answered(waiting)))
        try:
            await self._requests(reader, up_writer, waiting)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                up_writer.write_eof()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pump, timeout=120)
            for w in (up_writer, writer):
                with contextlib.suppress(Exception):
                    w.close()

    async def _requests(
        self, reader: asyncio.StreamReader, up: asyncio.StreamWriter, waiting: list[float]
    ) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            waiting.append(time.monotonic())
            lines = head.decode("latin-1").split("\r\n")
            method, target = lines[0].split(" ")[:2]
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            up.write(head)
            body = 0
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = await _copy_chunked(reader, up)
            else:
                length = int(headers.get("content-length", "0") or "0")
                self._record(classify(method, target, headers), length)
                await _copy_exact(reader, up, length)
                continue
            self._record(classify(method, target, headers), body)


async def _copy_exact(reader: asyncio.StreamReader, up: asyncio.StreamWriter, n: int) -> None:
    while n > 0:
        data = await reader.read(min(n, _CHUNK))
        if not data:
            raise ConnectionError("client closed mid-body")
        up.write(data)
        n -= len(data)
        await up.drain()


async def _copy_chunked(reader: asyncio.StreamReader, up: asyncio.StreamWriter) -> int:
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        up.write(size_line)
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            while True:  # trailers, then the empty line
                line = await reader.readuntil(b"\r\n")
                up.write(line)
                if line == b"\r\n":
                    await up.drain()
                    return total
        await _copy_exact(reader, up, size + 2)
        total += size


async def _pipe(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, on_data: Callable[[], None]
) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while True:
            data = await src.read(_CHUNK)
            if not data:
                break
            on_data()
            dst.write(data)
            await dst.drain()
    with contextlib.suppress(Exception):
        dst.close()


@contextlib.contextmanager
def counting(proxy: CountingProxy) -> Iterator[Tally]:
    """Count the requests made inside the block into the yielded tally."""
    proxy.reset()
    tally = proxy.tally
    yield tally
    proxy.reset()
