"""How many requests to keep in flight: `concurrency: auto` (the default) or a fixed number.

`Controller` is the pure decision (no threads, no clock of its own): it is told when a
request starts and how long each took, and when S3 throttles (`SlowDown`, 503, 429)
or a request times out; it answers with the new limit. `Window` is the thin
thread-safe shell the deploy's workers share; `note_retry` is how the S3 wire tells
the window of the calling thread that it is about to retry.

The rule, for `auto`:
- start at `INITIAL` in flight (the loopback optimum, measured: see BENCHMARKS.md), or
  more on a slow link: the deploy's first request (the first listing page, asked while
  the folder is walked) is timed on the wire, its connection's opening included (about
  two round trips, three or four with TLS), and `seed` widens the first window to what
  would carry `SEED_RATE` requests a second over that time: at 180 ms a round trip,
  doubling from 16 to 128 costs four round trips, each paying new connections'
  handshakes, which is most of a 1,000-file deploy;
- an epoch is the first `SAMPLES` requests started under the current limit to finish
  (about one round trip); its throughput is Little's law, the most requests in flight over
  their median latency: new connections' handshakes and the odd slow request do not
  hide a gain;
- grow while throughput grows: double while an epoch beats the best one so far by
  `GAIN`; the first epoch that does not is undone (back to the best limit), and the
  limit holds there for `HOLD` epochs, then the step is tried again, judged against the
  best throughput so far (the hold doubles after every try that does not pay: 4, 8, 16 ...
  epochs). One noisy epoch must not decide a long deploy: a cold deploy of 5,000 files at
  80 ms round trips once measured its doubling to 128 at 845 requests a second against a
  bar of 847, and held 64 for the 4,500 uploads left (8.2 s instead of 3.8-4.4 s);
- back off at once on a throttle or a timeout: halve (at most once per epoch, so the
  answers to requests already in flight do not cut again), then grow again by an
  eighth per epoch while throughput grows;
- never above `cap` (`CAP` = 256; see README "Performance" for why) nor below 1.

A fixed number is a fixed limit: no growth, no back-off (the retries still back off).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

CAP = 256
INITIAL = 16
SAMPLES = 16  # finished requests of one epoch before it is judged (about one round trip)
GAIN = 1.2  # a doubling must raise throughput by at least this factor to keep growing
# The first window is sized for this many requests a second over the first request's
# time on the wire (about two round trips: 2,000 a second over one round trip), near what
# this program and a local SeaweedFS carry on loopback (1,500-1,800 requests a second at 32
# and 64 in flight, the growth log of a cold run). Loopback answers in 2-30 ms and keeps
# 16; a 20 ms round trip starts at 32, 80 ms at 128 and 180 ms at the cap, 256. Each
# doubling after the seed costs about two round trips (one to fill the window, one to
# judge it): at 180 ms that was 0.4-0.6 s of a 1,000-file deploy when the seed was 400 a
# second (BENCHMARKS.md). S3 takes 3,500 writes a second per prefix and answers more with
# SlowDown, which halves the window at once; past the seed it grows only as measured
# throughput grows.
SEED_RATE = 1000.0
HOLD = 4  # epochs held after the first growth that did not pay, before trying again
Reason = Literal["link", "grow", "undo", "throttled", "timeout"]


@dataclass(frozen=True, slots=True)
class Change:
    """The limit moved: from `old` to `new`, why, and the throughput that decided it."""

    old: int
    new: int
    reason: Reason
    rate: float  # requests per second (Little's law estimate), 0 when not measured


@dataclass(slots=True)
class Controller:
    """The limit on requests in flight, decided from what requests took (pure)."""

    limit: int = INITIAL
    cap: int = CAP
    fixed: bool = False
    epoch: int = 0
    growing: bool = True
    doubling: bool = True
    best_rate: float = 0.0
    best_limit: int = 0
    _cut_epoch: int = -1
    _hold: int = HOLD // 2  # epochs to hold after an undo (doubled at each undo)
    _held: int = 0
    _starts: int = 0
    _burst: int = 0
    _latencies: list[float] = field(default_factory=list)
    _in_flight: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.limit = max(1, min(self.limit, self.cap))
        self.best_limit = self.limit
        self._burst = self.limit

    def seed(self, latency_s: float) -> Change | None:
        """The deploy's first request took `latency_s` on the wire, opening its
        connection included: widen the first window for a slow link (powers of two from
        `INITIAL`, up to the cap). Only before the first request of the window has
        started; never for a fixed number."""
        if self.fixed or self.epoch or self._starts or self.limit != INITIAL:
            return None
        limit = seed_limit(latency_s, self.cap)
        if limit == self.limit:
            return None
        old, self.limit = self.limit, limit
        self.best_limit = self._burst = limit
        return Change(old, limit, "link", 0.0)

    def floor(self, waited_s: float) -> int:
        """The fewest requests the window will allow in flight once the first answer
        comes, when it has been awaited `waited_s` so far (it took at least that long,
        so `seed` gives at least `seed_limit(waited_s)`); a fixed number never more than
        itself. What connections are worth opening while the first page is on its way
        (`ahead.py`). Once a request of the window has started: its limit."""
        if self.epoch or self._starts or (not self.fixed and self.limit != INITIAL):
            return self.limit
        return min(self.limit if self.fixed else self.cap, seed_limit(waited_s, self.cap))

    def reach(self) -> int:
        """The limit the current epoch grows to if it shows a gain (the limit itself when
        it cannot grow): what connections are worth opening before it is judged."""
        if self.fixed or not self.growing:
            return self.limit
        return self._step_up()

    def _step_up(self) -> int:
        """The limit one growth step above the current one: doubled, or an eighth more
        after a cut; within the cap."""
        step = self.limit if self.doubling else max(1, self.limit // 8)
        return min(self.cap, self.limit + step)

    def started(self) -> int:
        """A request starts; returns the epoch to hand back to `finished` or `throttled`.

        The burst that fills a new window is not judged (returned as the epoch before):
        those requests meet a queue that is not yet full, and would flatter the limit."""
        self._starts += 1
        return self.epoch if self._starts > self._burst else self.epoch - 1

    def finished(
        self, epoch: int, latency_s: float, in_flight: int, *, connected: bool = False
    ) -> Change | None:
        """A request of `epoch` finished after `latency_s`; `in_flight` requests (itself
        included) were in flight when it started or when it ended, whichever is more (a
        window filled at once has its first requests start with fewer in flight).
        `connected`: it opened a connection first (TCP and TLS handshakes, one to three
        round trips more); not a sample of the link's throughput, so not counted."""
        if self.fixed or epoch != self.epoch or connected:
            return None
        if not self.growing and self.limit >= self.cap:
            return None  # nothing left to try
        self._latencies.append(max(latency_s, 1e-6))
        self._in_flight.append(in_flight)
        if len(self._latencies) < min(SAMPLES, self.limit):
            return None
        rate = _rate(self._in_flight, self._latencies)
        old = self.limit
        if not self.growing:
            return self._held_one(rate)
        if self.best_rate and rate < self.best_rate * self._gain():
            # Growing did not pay: back to the best limit, and hold (`_held_one`).
            self.growing = False
            self.best_rate = max(self.best_rate, rate)
            self._hold, self._held = self._hold * 2, 0
            self._next_epoch()
            if self.best_limit == old:
                return None
            self.limit = self.best_limit
            return Change(old, self.limit, "undo", rate)
        self.best_rate, self.best_limit = rate, old
        self.limit = self._step_up()
        self._next_epoch(self.limit - old)
        if self.limit == old:
            self.growing = False
            return None
        return Change(old, self.limit, "grow", rate)

    def _held_one(self, rate: float) -> Change | None:
        """One more epoch held; after `_hold` of them, try the step again. The try is
        judged against the best throughput measured so far, the held epochs' included:
        a step that pays (a far link: twice the requests in flight, about twice the
        throughput) passes that bar at once, and noise does not (on loopback, epochs of
        the same limit vary by tens of percent, and tries judged against the last held
        epoch alone ratcheted the window up to the cap, with a thread and its buffers
        for every request in flight: see BENCHMARKS.md)."""
        self._held += 1
        self.best_rate = max(self.best_rate, rate)
        if self._held < self._hold:
            self._next_epoch()
            return None
        old = self.limit
        self.limit = self._step_up()
        self.best_limit = old
        self.growing, self._held = True, 0
        self._next_epoch(self.limit - old)
        return Change(old, self.limit, "grow", rate)

    def throttled(self, epoch: int, *, timeout: bool = False) -> Change | None:
        """S3 asked to slow down (or a request of `epoch` timed out): halve the limit,
        once per epoch, then grow again gently."""
        if self.fixed or epoch < self._cut_epoch:
            return None
        old = self.limit
        self.limit = max(1, old // 2)
        self.best_rate, self.best_limit = 0.0, self.limit
        self.growing, self.doubling = True, False
        self._next_epoch()
        self._cut_epoch = self.epoch
        if self.limit == old:  # already at 1: nothing moved
            return None
        return Change(old, self.limit, "timeout" if timeout else "throttled", 0.0)

    def _gain(self) -> float:
        if self.doubling:
            return GAIN
        # An additive step of an eighth: half of its ideal gain is enough.
        return 1.0 + 0.5 * max(1, self.best_limit // 8) / self.best_limit

    def _next_epoch(self, burst: int = 0) -> None:
        self.epoch += 1
        self._starts, self._burst = 0, burst
        self._latencies.clear()
        self._in_flight.clear()


def seed_limit(latency_s: float, cap: int = CAP) -> int:
    """The first window for a first answer that took `latency_s` on the wire: the most
    requests in flight, doubling from `INITIAL`, that carry at most `SEED_RATE` a second
    over that time, within `cap` (16 on loopback, 128 at 80 ms round trips, 256 from
    about 130 ms)."""
    limit = INITIAL
    while limit * 2 <= cap and limit * 2 <= SEED_RATE * latency_s:
        limit *= 2
    return limit


def next_seed_s(latency_s: float, cap: int = CAP) -> float | None:
    """The latency from which `seed_limit` gives more than it does at `latency_s`; None
    when it is at `cap` already (nothing more to wait for)."""
    limit = seed_limit(latency_s, cap)
    if limit * 2 > cap:
        return None
    return limit * 2 / SEED_RATE


def _rate(in_flight: list[int], latencies: list[float]) -> float:
    """Throughput by Little's law: requests in flight (the most seen: the window once
    filled) over their median latency (a few slow requests, a new connection's
    handshake or a large file, do not decide)."""
    ordered = sorted(latencies)
    return max(in_flight) / ordered[len(ordered) // 2]


def parse(value: str | int) -> int | None:
    """`auto` -> None; a number -> that number (validated by the settings)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    return int(value)


class Window:
    """The shared limit for the deploy's worker threads (the I/O shell of `Controller`).

    `slot()` blocks until a request may start and returns a context manager for it; the
    S3 wire's retries reach the window of the thread they run on through `note_retry`.
    """

    def __init__(
        self,
        controller: Controller,
        *,
        on_change: Callable[[Change], None] = lambda change: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.controller = controller
        self.on_change = on_change
        self.clock = clock
        self.in_flight = 0
        self.peak = 0
        self._cond = threading.Condition()

    @property
    def limit(self) -> int:
        return self.controller.limit

    @property
    def reach(self) -> int:
        """The limit the window grows to next if throughput grows (`Controller.reach`)."""
        with self._cond:
            return self.controller.reach()

    def acquire(self, stop: threading.Event) -> tuple[int, float, int] | None:
        """Wait for room; None when `stop` is set first. Returns the request's token."""
        with self._cond:
            while self.in_flight >= self.controller.limit:
                if stop.is_set():
                    return None
                self._cond.wait(timeout=0.2)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return self.controller.started(), self.clock(), self.in_flight

    def release(self, token: tuple[int, float, int], *, connected: bool = False) -> None:
        epoch, start, in_flight = token
        with self._cond:
            seen = max(in_flight, self.in_flight)
            self.in_flight -= 1
            change = self.controller.finished(
                epoch, self.clock() - start, seen, connected=connected
            )
            self._wake()
        if change is not None:
            self.on_change(change)

    def floor(self, waited_s: float) -> int:
        """`Controller.floor`: the fewest requests the window will allow once the first
        answer, awaited `waited_s` so far, comes."""
        with self._cond:
            return self.controller.floor(waited_s)

    def seed(self, latency_s: float) -> int:
        """The first request's time on the wire (see `Controller.seed`); returns how many
        more requests may now be in flight (connections worth opening ahead)."""
        with self._cond:
            change = self.controller.seed(latency_s)
            self._cond.notify_all()
        if change is None:
            return 0
        self.on_change(change)
        return change.new - change.old

    def throttled(self, epoch: int, *, timeout: bool) -> None:
        with self._cond:
            change = self.controller.throttled(epoch, timeout=timeout)
        if change is not None:
            self.on_change(change)

    def cancel(self, token: tuple[int, float, int]) -> None:
        """Give back a slot that was not used (nothing left to do): no measurement."""
        with self._cond:
            self.in_flight -= 1
            self._wake()

    def _wake(self) -> None:
        """Wake as many waiting threads as there is room (the lock held), not all of them.

        `notify_all` on every release woke every waiting worker (up to 128 when the limit
        halves) for one free slot: all but one went back to sleep, and each took the GIL to
        do so, at ~1,000 requests a second. A waiter that finds its slot taken by a thread
        that did not wait waits again; that thread's release wakes the next one, so no slot
        is left free while someone waits (and every wait re-checks after 0.2 s anyway)."""
        room = self.controller.limit - self.in_flight
        if room > 0:
            self._cond.notify(room)

    @contextmanager
    def running(self, token: tuple[int, float, int]) -> Iterator[None]:
        """The request of `token` runs in this block (on this thread): `note_retry` finds
        this window; the slot is released, and the latency measured, at the end."""
        _current.window, _current.epoch, _current.connected = self, token[0], False
        try:
            yield
        finally:
            _current.window = None
            self.release(token, connected=_current.connected)


_current = threading.local()


def note_connect() -> None:
    """Called by the S3 wire when it opens a connection for the calling thread's request."""
    _current.connected = True


def note_retry(reason: Literal["throttled", "timeout"]) -> None:
    """Called by the S3 wire before it retries: tells the calling thread's window, if any."""
    window: Window | None = getattr(_current, "window", None)
    if window is not None:
        window.throttled(_current.epoch, timeout=reason == "timeout")


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Ask glibc for at most `arenas` malloc arenas (what `MALLOC_ARENA_MAX` does).

    glibc gives threads their own arenas (up to 8 per core), and memory freed in one is
    not given back while any block in it lives: with the listing's ranges, the opened
    connections and the window's workers on threads of their own, a no-change deploy of
    20,000 files peaked 7 MB higher (measured: 63-64 MB against 56 MB, and 57.5 MB with
    `MALLOC_ARENA_MAX=2`). Threads here mostly wait on the network, so sharing two
    arenas costs nothing measurable. Not glibc (musl, macOS): nothing to do.
    """
    import ctypes  # noqa: PLC0415
    import os  # noqa: PLC0415

    if os.environ.get("MALLOC_ARENA_MAX"):
        return  # the user's own setting wins
    try:
        # The process's own symbols, libc's among them (`ctypes.util.find_library` would
        # run `ldconfig -p` in a subprocess to find the same library by name).
        mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
        if mallopt is not None and "glibc" in (os.confstr("CS_GNU_LIBC_VERSION") or ""):
            mallopt(_M_ARENA_MAX, arenas)
    except (OSError, ValueError):
        return


_M_ARENA_MAX = -8  # glibc's malloc.h


def controller_for(setting: int | None) -> Controller:
    """The controller for the `concurrency` setting: None is `auto`, a number is fixed."""
    if setting is None:
        return Controller()
    return Controller(limit=setting, cap=setting, fixed=True)


def most(setting: int | None) -> int:
    """The most requests the setting can put in flight (threads and connections to allow)."""
    return CAP if setting is None else setting
