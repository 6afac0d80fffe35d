"""Progress lines for long phases (uploads, HEADs, deletes): how far, how many bytes,
what was retried and why, and how the window of requests in flight moved.

Pure apart from the clock and the log it is given; `deploy.py` steps it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from deployer.report import format_bytes
from deployer.retries import RETRIES, Retries
from deployer.retries import describe as describe_retries

PROGRESS_EVERY_S = 2.0
STALLED_EVERY_S = 30.0  # while nothing finishes, one line this often (not every 2 s)


class ProgressLog(Protocol):
    def progress(self, msg: str, /) -> None: ...


class Progress:
    """Prints a progress line at most every `PROGRESS_EVERY_S` seconds, and at the end.

    A line is printed only when something moved since the last one: while requests wait
    (S3 retrying after errors, throttling, a slow link), the same line is not repeated
    every two seconds; instead, every `STALLED_EVERY_S`, one line says how long nothing
    has finished. Each line also says which requests were retried since the last, and
    why (`retries.RETRIES`, told by the S3 wire), and how the window of requests in
    flight moved (`limit`: it halves on throttling and timeouts, see `concurrency.py`).
    """

    def __init__(
        self,
        log: ProgressLog,
        label: str,
        total: int,
        clock: Callable[[], float],
        *,
        retries: Retries = RETRIES,
        limit: Callable[[], int] | None = None,
    ) -> None:
        self.log, self.label, self.total, self.clock = log, label, total, clock
        self.retries, self.limit = retries, limit
        self.seen_retries = retries.snapshot()
        self.seen_limit = limit() if limit is not None else 0
        self.done = 0
        self.bytes = 0
        self.last = self.moved_at = clock()
        self.shown = (0, 0)

    def step(self, size: int = 0, count: int = 1) -> None:
        self.done += count
        self.bytes += size
        self.moved_at = self.clock()
        self.tick()

    def tick(self) -> None:
        now = self.clock()
        if now - self.last < PROGRESS_EVERY_S or self.done >= self.total:
            return
        if (self.done, self.bytes) != self.shown:
            self.last = now
            self._print("")
        elif now - self.last >= STALLED_EVERY_S:
            self.last = now
            self._print(f"; nothing finished for {now - self.moved_at:.0f} s")

    def _print(self, note: str) -> None:
        self.shown = (self.done, self.bytes)
        now_retries = self.retries.snapshot()
        retried = describe_retries(now_retries - self.seen_retries)
        self.seen_retries = now_retries
        pct = 100 * self.done // max(1, self.total)
        extra = f", {format_bytes(self.bytes)}" if self.bytes else ""
        note += f"; {retried}" if retried else ""
        limit = self.limit() if self.limit is not None else 0
        if limit != self.seen_limit:
            verb = "cut" if limit < self.seen_limit else "raised"
            note += f"; requests in flight {verb} from {self.seen_limit} to {limit}"
            self.seen_limit = limit
        self.log.progress(f"{self.label}: {self.done}/{self.total} ({pct}%){extra}{note}")
