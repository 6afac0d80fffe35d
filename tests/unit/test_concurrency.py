"""The requests-in-flight controller, driven by a fake clock and fake latencies."""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable

import pytest

from deployer import concurrency
from deployer.concurrency import CAP, INITIAL, Change, Controller, Window

Latency = Callable[[float], float]  # start time -> when the answer arrives (may keep state)


def simulate(
    controller: Controller,
    requests: int,
    latency: Latency,
    *,
    throttle: Callable[[int], bool] = lambda n: False,
) -> tuple[float, list[Change], list[int]]:
    """Run `requests` requests through `controller` on a fake clock.

    A request started at `t` is answered at `latency(t)`; `throttle(number)` says
    whether the request numbered so is answered SlowDown first (reported when its answer
    arrives, then retried as a new request). Returns (seconds, changes, limit after
    each completion).
    """
    now = 0.0
    # (end, seq, epoch, start, in flight at start, answered SlowDown)
    running: list[tuple[float, int, int, float, int, bool]] = []
    changes: list[Change] = []
    limits: list[int] = []
    todo, seq = requests, 0
    while todo or running:
        while todo and len(running) < controller.limit:
            todo -= 1
            seq += 1
            n = len(running) + 1
            item = (latency(now), seq, controller.started(), now, n, throttle(seq))
            heapq.heappush(running, item)
        end, _, epoch, start, n, throttled = heapq.heappop(running)
        n = max(n, len(running) + 1)  # as `Window.release` reports it
        now = end
        if throttled:  # back off; the request goes again
            change = controller.throttled(epoch)
            todo += 1
        else:
            change = controller.finished(epoch, now - start, n)
        if change is not None:
            changes.append(change)
        limits.append(controller.limit)
    return now, changes, limits


def wan(rtt: float) -> Latency:
    """A link where every request takes one round trip, however many are in flight."""
    return lambda start: start + rtt


def server(
    service_s: float, rtt: float, pace: Callable[[float], float] = lambda start: 1.0
) -> Latency:
    """A server that handles one request at a time, `service_s` each (times `pace(start)`
    of the request), first come first served, `rtt` away: beyond rtt / service_s in
    flight, requests only queue."""
    free = [0.0]

    def answer(start: float) -> float:
        factor = pace(start)
        begin = max(start + rtt / 2, free[0])
        free[0] = begin + service_s * factor
        return free[0] + rtt / 2

    return answer


def test_grows_on_a_wan_link_up_to_the_cap() -> None:
    """At 180 ms per request, throughput doubles with every doubling: it grows to the cap."""
    controller = Controller()
    seconds, changes, _ = simulate(controller, 5000, wan(0.18))
    assert controller.limit == CAP
    assert [c.new for c in changes] == [32, 64, 128, 256]
    assert all(c.reason == "grow" for c in changes)
    # 5,000 requests: the ramp costs a few round trips over 5000/256 x 0.18 = 3.5 s.
    assert seconds < 5000 / CAP * 0.18 + 8 * 0.18


@pytest.mark.parametrize(
    ("connect_s", "first"),
    [(0.002, 16), (0.03, 16), (0.04, 32), (0.08, 64), (0.16, 128), (0.26, 256), (0.72, 256)],
)
def test_a_slow_first_request_widens_the_first_window(connect_s: float, first: int) -> None:
    """The first request's time on the wire (two round trips, three or four with TLS)
    sizes the first window for `SEED_RATE` requests a second: loopback and near links
    keep 16; 80 ms round trips start at 128, 130 ms and more at the cap."""
    controller = Controller()
    change = controller.seed(connect_s)
    assert controller.limit == first
    assert change == (None if first == INITIAL else Change(INITIAL, first, "link", 0.0))


def test_the_seed_comes_once_and_only_before_the_first_request() -> None:
    """Only the first connection to open counts; once a request has started, or for a
    fixed number, the seed changes nothing."""
    controller = Controller()
    assert controller.seed(0.16) is not None
    assert controller.seed(0.9) is None and controller.limit == 128
    started = Controller()
    started.started()
    assert started.seed(0.36) is None and started.limit == INITIAL
    fixed = concurrency.controller_for(8)
    assert fixed.seed(0.36) is None and fixed.limit == 8
    small = Controller(cap=40)
    small.seed(0.36)
    assert small.limit == 32  # powers of two, within the cap


@pytest.mark.parametrize("waited_s", [0.0, 0.01, 0.031, 0.032, 0.05, 0.07, 0.2, 0.3, 2.0])
def test_the_floor_is_what_the_seed_gives_any_answer_at_least_that_late(waited_s: float) -> None:
    """While the first answer is awaited `waited_s`, the floor is the window a seed of
    that latency gives, and a seed of any later answer gives at least as much: what is
    opened for the floor is never more than the window starts at."""
    floor = Controller().floor(waited_s)
    assert floor == concurrency.seed_limit(waited_s)
    for later in (waited_s, waited_s + 0.001, waited_s * 1.5 + 0.01, waited_s + 1.0):
        seeded = Controller()
        seeded.seed(later)
        assert seeded.limit >= floor


def test_the_floor_of_a_fixed_number_or_a_started_window_is_its_limit_or_less() -> None:
    assert concurrency.controller_for(8).floor(0.5) == 8  # never more than the number
    assert concurrency.controller_for(64).floor(0.04) == 32  # nor more than the wait says
    assert concurrency.controller_for(64).floor(0.5) == 64
    assert Controller(cap=40).floor(0.5) == 32  # within the cap, in powers of two
    started = Controller()
    started.started()
    assert started.floor(0.5) == INITIAL  # the seed is past: the limit as it is


def test_the_seed_steps_are_where_the_limit_doubles() -> None:
    """`next_seed_s`: the wait at which the seed next doubles, None at the cap."""
    assert concurrency.next_seed_s(0.0) == pytest.approx(0.032)
    assert concurrency.next_seed_s(0.032) == pytest.approx(0.064)
    assert concurrency.next_seed_s(0.1) == pytest.approx(0.128)
    assert concurrency.next_seed_s(0.2) == pytest.approx(0.256)
    assert concurrency.next_seed_s(0.256) is None
    assert concurrency.next_seed_s(0.1, cap=64) is None
    for wait in (0.0, 0.032, 0.1, 0.2):
        step = concurrency.next_seed_s(wait)
        assert step is not None
        assert concurrency.seed_limit(step) == 2 * concurrency.seed_limit(wait)
        assert concurrency.seed_limit(step - 1e-6) == concurrency.seed_limit(wait)


def test_a_seeded_window_gets_to_the_cap_in_fewer_round_trips() -> None:
    """1,000 requests at 180 ms a round trip: seeded from a first request of two round
    trips, the window starts at the cap and finishes in fewer round trips than the ramp
    from 16."""
    plain = Controller()
    plain_s, _, _ = simulate(plain, 1000, wan(0.18))
    seeded = Controller()
    seeded.seed(0.36)
    seeded_s, changes, _ = simulate(seeded, 1000, wan(0.18))
    assert changes == [] and seeded.limit == CAP
    assert seeded_s <= plain_s - 2 * 0.18


def test_stops_where_throughput_stops_growing_and_tries_again_ever_later() -> None:
    """A server that saturates at 16 in flight: the doubling is tried, undone, and tried
    again after 4, then 8, then 16 ... epochs held at 16, so 16 is the limit most of the
    time."""
    controller = Controller()
    _, changes, limits = simulate(controller, 4000, server(0.001, 0.016))
    pairs = [(c.old, c.new, c.reason) for c in changes]
    assert pairs[:2] == [(16, 32, "grow"), (32, 16, "undo")]
    assert set(pairs) == {(16, 32, "grow"), (32, 16, "undo")}
    assert limits.count(INITIAL) > 0.75 * len(limits)
    # The holds between tries grow: completions at 16 between one undo and the next try.
    held, runs = 0, []
    for before, after in itertools.pairwise(limits):
        if after == INITIAL:
            held += 1
        elif before == INITIAL and held:
            runs.append(held)
            held = 0
    assert len(runs) >= 2 and runs == sorted(runs) and runs[-1] > runs[0]


def test_one_slow_epoch_does_not_hold_the_window_for_the_rest_of_the_deploy() -> None:
    """Every request started between 0.25 and 0.45 s takes 0.2 s instead of 0.08 (a slow
    moment of the link): the doubling judged then is undone, and tried again once the
    hold is over, so the window still reaches the cap (it stayed at 32 before)."""
    controller = Controller()
    slow_moment = lambda start: start + (0.2 if 0.25 <= start < 0.45 else 0.08)  # noqa: E731
    seconds, changes, limits = simulate(controller, 5000, slow_moment)
    assert ("undo" in [c.reason for c in changes]) and limits[-1] == CAP
    steady, _, _ = simulate(Controller(), 5000, wan(0.08))
    assert seconds < steady + 1.0


def test_stops_at_the_knee_of_a_faster_server() -> None:
    """A server of 1,000 requests/s, 64 ms away (its knee: ~65 in flight): the limit ends
    between the knee and twice it, after one doubling was undone, and the run takes
    within 10% of what the server allows."""
    controller = Controller()
    seconds, changes, _ = simulate(controller, 5000, server(0.001, 0.064))
    assert changes[-1].reason == "undo"
    assert 64 <= controller.limit <= 128
    assert seconds < 1.1 * 5000 * 0.001


def test_halves_at_once_on_slowdown_and_once_per_epoch() -> None:
    """A burst of SlowDown answers to one window's requests cuts the limit once."""
    controller = Controller(limit=64)
    epoch = controller.started()
    first = controller.throttled(epoch)
    assert first == Change(64, 32, "throttled", 0.0)
    # Answers to requests started before the cut do not cut again.
    assert controller.throttled(epoch) is None
    assert controller.throttled(epoch, timeout=True) is None
    # A request started after the cut, throttled too: cut again.
    later = controller.started()
    assert controller.throttled(later, timeout=True) == Change(32, 16, "timeout", 0.0)


def test_throttled_link_backs_off_then_grows_gently() -> None:
    """30% of requests answered SlowDown: the limit drops from where it was, never to 0,
    every request still completes, and growth after a cut is by an eighth, not doubling."""
    controller = Controller(limit=64)
    rng = iter([i % 10 < 3 for i in range(10**6)])
    _, changes, limits = simulate(controller, 1000, wan(0.05), throttle=lambda n: next(rng))
    assert changes[0].reason == "throttled"
    assert min(limits) >= 1
    assert max(limits[len(limits) // 2 :]) < 64
    grows = [c for c in changes if c.reason == "grow"]
    assert all(c.new - c.old == max(1, c.old // 8) for c in grows)


def test_never_above_the_cap_nor_below_one() -> None:
    controller = Controller(limit=1000, cap=CAP)
    assert controller.limit == CAP
    for _ in range(20):
        controller.throttled(controller.started())
    assert controller.limit == 1
    assert controller.throttled(controller.started()) is None  # at 1: no move to report


def test_fixed_number_never_moves() -> None:
    """`concurrency: 8` stays 8: no growth on a fast link, no cut on SlowDown."""
    controller = concurrency.controller_for(8)
    _, changes, limits = simulate(controller, 500, wan(0.18))
    assert changes == [] and set(limits) == {8}
    assert controller.throttled(controller.started()) is None
    assert concurrency.most(8) == 8
    assert concurrency.most(None) == CAP


def test_stops_growing_when_the_window_is_not_filled() -> None:
    """With only 20 requests, in flight never exceeds 20: no growth past what is used."""
    controller = Controller()
    simulate(controller, 20, wan(0.1))
    assert controller.limit <= 32


@pytest.mark.parametrize(("text", "expected"), [("auto", None), ("AUTO", None), ("12", 12)])
def test_parse(text: str, expected: int | None) -> None:
    assert concurrency.parse(text) == expected


def test_window_blocks_beyond_the_limit_and_reports_changes() -> None:
    """The thread-safe shell: a third acquire waits until a slot is released; a retry
    noted on a worker thread reaches that thread's window and halves it."""
    changes: list[Change] = []
    clock = iter(float(i) for i in range(1000))
    window = Window(Controller(limit=2), on_change=changes.append, clock=lambda: next(clock))
    stop = threading.Event()
    a, b = window.acquire(stop), window.acquire(stop)
    assert a is not None and b is not None
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(window.acquire(stop)), daemon=True)
    waiter.start()
    waiter.join(timeout=0.5)
    assert waiter.is_alive() and not got  # blocked: 2 in flight, limit 2
    with window.running(a):
        concurrency.note_retry("throttled")  # the wire is about to retry a SlowDown
    waiter.join(timeout=0.5)
    assert waiter.is_alive()  # limit 1 now, b still in flight
    window.release(b)
    waiter.join(timeout=5)
    assert got and got[0] is not None
    assert changes == [Change(2, 1, "throttled", 0.0)]
    assert window.peak == 2
    concurrency.note_retry("throttled")  # outside any request: nothing happens
    assert len(changes) == 1


def test_a_release_wakes_as_many_waiters_as_there_is_room_not_all() -> None:
    """One free slot wakes one waiting worker: waking all of them (up to 128 when the limit
    halves) on every release cost each of them the GIL for nothing, ~1,000 times a
    second. Every waiter still gets its turn as slots come free."""
    fixed_clock = iter(float(i) for i in range(1000))
    window = Window(Controller(limit=1, fixed=True), clock=lambda: next(fixed_clock))
    wakeups = 0
    cond = window._cond  # counting its wakeups is the point of the test
    plain_wait = cond.wait

    def counting_wait(timeout: float | None = None) -> bool:
        nonlocal wakeups
        woken = plain_wait(timeout=60.0)  # no 0.2 s re-check: only notifications wake
        wakeups += 1
        return woken

    cond.wait = counting_wait  # type: ignore[method-assign]
    stop = threading.Event()
    first = window.acquire(stop)
    assert first is not None
    tokens: list[tuple[int, float, int]] = []
    lock = threading.Lock()

    def take() -> None:
        token = window.acquire(stop)
        assert token is not None
        with lock:
            tokens.append(token)

    waiters = [threading.Thread(target=take, daemon=True) for _ in range(8)]
    for thread in waiters:
        thread.start()
    deadline = time.monotonic() + 5
    while len(cond._waiters) < 8 and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.005)
    window.release(first)
    for _ in range(8):  # each slot, once taken, is given back: the next waiter goes
        deadline = time.monotonic() + 5
        while not tokens and time.monotonic() < deadline:
            time.sleep(0.005)
        with lock:
            token = tokens.pop()
        window.release(token)
    for thread in waiters:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in waiters)
    assert wakeups == 8  # one per waiter; waking all on each release made 8 + 7 + ... = 36


def test_window_acquire_gives_up_when_stopped() -> None:
    window = Window(Controller(limit=1))
    stop = threading.Event()
    assert window.acquire(stop) is not None
    stop.set()
    assert window.acquire(stop) is None


def test_requests_that_opened_a_connection_do_not_judge_an_epoch() -> None:
    """After a doubling, requests on new connections take a TLS handshake longer: they
    are not samples, so the epoch is judged on the requests that reused a connection."""
    controller = Controller()
    while controller.limit == 16:  # one round trip each at 16 in flight
        controller.finished(controller.started(), 0.1, 16)
    assert controller.limit == 32
    for _ in range(100):  # new connections, three round trips: ignored
        assert controller.finished(controller.started(), 0.3, 32, connected=True) is None
    assert controller.limit == 32
    changes = []
    while controller.limit == 32:  # reused connections: throughput doubled, keep growing
        changes.append(controller.finished(controller.started(), 0.1, 32))
    assert changes[-1] is not None and changes[-1].new == 64


def test_malloc_arenas_limit_leaves_a_users_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """`MALLOC_ARENA_MAX` set by the user: nothing is called; otherwise it never raises."""
    called: list[int] = []
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.setattr("ctypes.CDLL", lambda name: called.append(1))
    concurrency.limit_malloc_arenas()
    assert called == []
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    concurrency.limit_malloc_arenas()  # glibc or not, no error


def test_the_reach_is_the_limit_a_gain_would_bring() -> None:
    """What connections are worth opening before an epoch is judged: the doubled limit
    while doubling, an eighth more after a cut, the limit itself once growth stopped or
    for a fixed number, never above the cap."""
    controller = Controller()
    assert controller.reach() == 2 * INITIAL
    controller.seed(0.26)
    assert controller.limit == CAP and controller.reach() == CAP
    cut = Controller(limit=64)
    cut.throttled(cut.started())
    assert (cut.limit, cut.reach()) == (32, 36)
    assert concurrency.controller_for(8).reach() == 8
    held = Controller()
    seen: list[tuple[str, int, int]] = []

    def judged(start: float) -> float:  # a server saturating at 16; note each undo's reach
        if held.best_rate and not held.growing:
            seen.append(("held", held.limit, held.reach()))
        return saturating(start)

    saturating = server(0.001, 0.016)
    simulate(held, 2000, judged)
    assert ("held", INITIAL, INITIAL) in seen


def noisy_server(service_s: float, rtt: float, seed: int, period: float) -> Latency:
    """`server`, whose service time is multiplied by a factor drawn from 0.6-1.4 anew
    every `period` seconds: a server sharing its cores, as on loopback, where epochs of
    the same limit measure throughputs tens of percent apart."""
    rng = random.Random(seed)
    factors: dict[int, float] = {}

    def pace(start: float) -> float:
        moment = int(start / period)
        if moment not in factors:
            factors[moment] = rng.uniform(0.6, 1.4)
        return factors[moment]

    return server(service_s, rtt, pace)


def test_noise_does_not_ratchet_the_limit_up() -> None:
    """Six servers of 2,500 requests/s, 4 ms away (knee: ~10 in flight), noisy. A try
    after a hold is judged against the best throughput so far, so a lucky epoch after an
    unlucky one does not pass for a gain: the limit stays within a few doublings of the
    knee (mean over the servers 27). Judged against the last held epoch alone, it
    ratcheted up (mean 57; one server spent 74% of the run at 128-256), each request in
    flight a thread and its buffers for nothing (a cold deploy of 20,000 files on
    loopback: 61-64 MB instead of 52-54, BENCHMARKS.md)."""
    means = []
    for seed in range(6):
        controller = Controller()
        server_ = noisy_server(0.0004, 0.004, seed, 0.01)
        seconds, _, limits = simulate(controller, 20000, server_)
        above = sum(1 for limit in limits if limit > 64)
        assert above < 0.1 * len(limits), seed
        assert seconds < 1.05 * 20000 * 0.0004, seed  # the server's pace, not slower
        means.append(sum(limits) / len(limits))
    assert sum(means) / len(means) < 40
