"""Large files in parts: the part plan (pure), the in-order reader that hashes each part,
and the runner that sends the parts on the deploy's window.

A multipart upload's parts share the deploy's concurrency window with the small files'
PUTs (`concurrency.Window`): the limit bounds every request in flight, and the
controller measures the parts too. Deadlock-free by construction: the thread that holds
the file's slot sends parts itself until none is left, so the file always moves on its
own slot; helpers (tasks on the deploy's pool) each take another slot per part while
parts are left, so the parts fan out when slots are free, and give an unused slot back.

Integrity, and why parts are hashed again here: each part carries `Content-MD5` of its
bytes, which needs the part's MD5 before it is sent. Parts are taken in order, one at a
time, and read once to hash them, feeding one running MD5 of the whole file; reading
the last part compares that with the MD5 the scan computed (a file rewritten since, at
the same size, fails there, before CompleteMultipartUpload). Each part is then streamed
from disk (a second read, from the page cache) as an exact slice, and the server checks
it against its `Content-MD5`. Memory stays one 1 MiB buffer per file plus the socket
buffers, whatever the part size and the slots in flight: keeping parts in memory would
cost part size x slots (16 MiB x 256 = 4 GiB at the window's cap). The price is one
more MD5 pass over large files (about 0.2 s of CPU per 100 MB here), overlapped with
the network since the parts already hashed are being sent.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from deployer.concurrency import Controller, Window
from deployer.s3wire import BodyChangedError

MIB = 1024 * 1024
MIN_PART = 5 * MIB  # S3: every part but the last is at least 5 MiB
MAX_PART = 5 * 1024 * MIB  # S3: at most 5 GiB per part
MAX_PARTS = 10_000  # S3: part numbers 1 to 10,000
HASH_BLOCK = MIB
# Helpers one file starts in a deploy: at most 16 of its parts in flight. Each waits for
# a slot on a thread of the deploy's pool, so this also bounds the threads one file can
# hold while the small files' workers wait for one.
HELPERS = 15
# Part sizes (`preferred_part_size`): all of a file's parts in flight at once, in parts of
# at least 8 MiB and at most 64 MiB. Measured (`bench/multipart.py`, BENCHMARKS.md): 80 MiB
# in 8 MiB parts beat 16 MiB parts on a capped link (1.32 vs 1.59 s at 80 ms, 1.71 vs
# 2.03 s at 180 ms); 256 MiB in 16 MiB parts beat 8 MiB ones (3.46 vs 4.74 s uncapped at
# 80 ms: half the requests). The 64 MiB bound is not measured: it keeps what a failed
# part sends again small next to the file.
SMALLEST_PART = 8 * MIB
LARGEST_PART = 64 * MIB
Token = tuple[int, float, int]  # what `concurrency.Window.acquire` hands out
_P = TypeVar("_P")


@dataclass(frozen=True, slots=True)
class Part:
    """Bytes `offset` to `offset + size` of the file, sent as part `number` (from 1)."""

    number: int
    offset: int
    size: int


def part_size_for(size: int, preferred: int) -> int:
    """The part size for a file of `size` bytes: `preferred`, but at least S3's 5 MiB
    minimum and large enough for the file to fit in 10,000 parts (then rounded up to a
    whole MiB), and at most S3's 5 GiB."""
    needed = -(-size // MAX_PARTS)  # ceiling division
    if needed > preferred:
        preferred = -(-needed // MIB) * MIB
    return min(MAX_PART, max(MIN_PART, preferred))


def preferred_part_size(size: int, in_flight: int = HELPERS + 1) -> int:
    """The part size that puts all of a file's parts in flight at once (`in_flight` of
    them), in whole MiB, within `SMALLEST_PART` and `LARGEST_PART`."""
    wave = -(-size // max(1, in_flight))
    return min(LARGEST_PART, max(SMALLEST_PART, -(-wave // MIB) * MIB))


def plan(size: int, part_size: int) -> list[Part]:
    """The parts of a file of `size` bytes: `part_size` each, the last one the rest."""
    if part_size <= 0:
        raise ValueError("part_size must be positive")
    return [
        Part(number, offset, min(part_size, size - offset))
        for number, offset in enumerate(range(0, size, part_size), start=1)
    ] or [Part(1, 0, 0)]


class ContentChangedError(Exception):
    """The file's bytes, read for its parts, do not have the MD5 the scan computed (it
    was rewritten at the same size since it was hashed)."""


class InOrder:
    """Reads a file's parts in order (a call per part, one call at a time) and returns each
    with its MD5 in base64 (for `Content-MD5`); the whole file's MD5, fed by every part,
    is compared with `md5` when the last part is read: `ContentChangedError` if it
    differs, `BodyChangedError` if the file's size is not `size` or it ends early."""

    def __init__(self, path: str, size: int, md5: str) -> None:
        self.path, self.size, self.md5 = path, size, md5
        self._whole = hashlib.md5(usedforsecurity=False)
        self._offset = 0
        self._buffer = bytearray(HASH_BLOCK)

    def __call__(self, part: Part) -> tuple[Part, str]:
        if part.offset != self._offset:
            raise ValueError(f"part {part.number} read out of order")
        digest = hashlib.md5(usedforsecurity=False)
        view = memoryview(self._buffer)
        with Path(self.path).open("rb") as file:
            found = os.fstat(file.fileno()).st_size
            if found != self.size:
                raise BodyChangedError(self.size, found)
            file.seek(part.offset)
            left = part.size
            while left:
                count = file.readinto(view[: min(HASH_BLOCK, left)])
                if not count:
                    raise BodyChangedError(self.size, None)
                digest.update(view[:count])
                self._whole.update(view[:count])
                left -= count
        self._offset += part.size
        if self._offset == self.size and self._whole.hexdigest() != self.md5:
            raise ContentChangedError(self.path)
        return part, base64.b64encode(digest.digest()).decode("ascii")


class Slots(Protocol):
    """The deploy's window as the runner uses it (`concurrency.Window`)."""

    def acquire(self, stop: threading.Event) -> Token | None: ...

    def cancel(self, token: Token) -> None: ...

    def running(self, token: Token) -> AbstractContextManager[None]: ...


@dataclass(frozen=True, slots=True)
class Lanes:
    """Where a file's parts run beside the thread that holds its slot: `slots` (each part
    a helper sends holds one slot of it), `submit` (starts a helper, on the deploy's
    thread pool) and `helpers`, the most helpers one file starts."""

    slots: Slots
    submit: Callable[[Callable[[], None]], object]
    helpers: int


@contextmanager
def own_lanes(helpers: int) -> Iterator[Lanes]:
    """Lanes of their own, for an upload outside a deploy's window: a fixed window of
    `helpers` slots and as many threads (the calling thread makes one more)."""
    window = Window(Controller(limit=helpers, cap=helpers, fixed=True))
    with ThreadPoolExecutor(max(1, helpers), thread_name_prefix="part") as pool:
        yield Lanes(window, pool.submit, helpers)


def send_all(
    parts: Sequence[Part],
    prepare: Callable[[Part], _P],
    send: Callable[[_P], str],
    lanes: Lanes,
) -> list[str]:
    """Every part sent: the ETag `send` returned for each, in part order.

    The calling thread holds a slot already and sends parts until none is left; up to
    `lanes.helpers` helpers (never more than the parts after the first) take a slot per
    part while parts are left. Parts are `prepare`d one at a time, in order (see
    `InOrder`), then sent at once. On the first error no part more starts, the parts in
    flight end, and that error is raised here, on the calling thread."""
    run = _Run(parts, prepare, send, lanes.slots)
    for _ in range(min(lanes.helpers, len(parts) - 1)):
        try:
            lanes.submit(run.helper)
        except RuntimeError:  # the pool is shutting down: this thread sends them all
            break
    return run.own()


class _Run(Generic[_P]):
    """One file's parts being sent: which part is next, which are in flight, the first error."""

    def __init__(
        self,
        parts: Sequence[Part],
        prepare: Callable[[Part], _P],
        send: Callable[[_P], str],
        slots: Slots,
    ) -> None:
        self.parts, self.prepare, self.send, self.slots = parts, prepare, send, slots
        self.etags = [""] * len(parts)
        self.error: BaseException | None = None
        self.closed = threading.Event()  # no part more starts: all taken, or one failed
        self._next = 0
        self._active = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_order = threading.Lock()

    def own(self) -> list[str]:
        """The calling thread's share: parts until none is left, then wait for the
        helpers' parts in flight."""
        try:
            while (taken := self._take()) is not None:
                self._send(*taken)
        except BaseException as err:  # an interrupt: stop the helpers, then leave
            self._fail(err)
        with self._lock:
            while self._active:
                self._idle.wait()
        if self.error is not None:
            raise self.error
        return self.etags

    def helper(self) -> None:
        """A helper's share: a slot per part, while parts are left."""
        while not self.closed.is_set():
            token = self.slots.acquire(self.closed)
            if token is None:
                return
            taken = self._take()
            if taken is None:
                self.slots.cancel(token)
                return
            with self.slots.running(token):
                self._send(*taken)

    def _take(self) -> tuple[int, _P] | None:
        """The next part, prepared (counted in flight); None when none is left or one failed."""
        with self._in_order:
            with self._lock:
                if self.closed.is_set():
                    return None
                index = self._next
                self._next += 1
                if self._next == len(self.parts):
                    self.closed.set()
                self._active += 1
            try:
                return index, self.prepare(self.parts[index])
            except BaseException as err:
                self._fail(err)
                self._done()
                return None

    def _send(self, index: int, prepared: _P) -> None:
        try:
            self.etags[index] = self.send(prepared)
        except BaseException as err:
            self._fail(err)
        finally:
            self._done()

    def _fail(self, err: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = err
            self.closed.set()

    def _done(self) -> None:
        with self._lock:
            self._active -= 1
            if not self._active:
                self._idle.notify_all()
