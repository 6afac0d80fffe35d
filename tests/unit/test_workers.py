"""workers.in_parallel: every item once, at most the window's limit at a time, workers
that follow the limit down (they leave) and up (more are started)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import pytest

from deployer import workers
from deployer.concurrency import Controller, Window


class Counted:
    """Runs items, counting how many run at once: over the whole run, and as items from
    `late` on start; calls `at(n)` when item `n` starts."""

    def __init__(
        self, delay_s: float, *, late: int = 0, at: Callable[[int], None] = lambda n: None
    ) -> None:
        self.delay_s = delay_s
        self.late = late
        self.at = at
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.most_late = 0

    def __call__(self, item: int) -> int:
        self.at(item)
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            if item >= self.late:
                self.most_late = max(self.most_late, self.now)
        try:
            time.sleep(self.delay_s)
            if item % 17 == 0:
                raise ValueError(item)
            return item * 2
        finally:
            with self.lock:
                self.now -= 1


def fixed_window(limit: int) -> Window:
    """A window whose limit only the test moves."""
    return Window(Controller(limit=limit, cap=64, fixed=True))


def count_waits(window: Window) -> Callable[[], int]:
    """Count the times a worker sleeps waiting for a slot of `window`."""
    cond = window._cond  # the sleeps are what is measured
    plain_wait = cond.wait
    waits = 0
    lock = threading.Lock()

    def counting_wait(timeout: float | None = None) -> bool:
        nonlocal waits
        with lock:
            waits += 1
        return plain_wait(timeout)

    cond.wait = counting_wait  # type: ignore[method-assign]
    return lambda: waits


def run(window: Window, fn: Callable[[int], int], items: range) -> dict[int, object]:
    """Every item's result (or the error it raised), as `in_parallel` yields them."""
    got: dict[int, object] = {}
    with ThreadPoolExecutor(max_workers=64) as pool:
        results = workers.in_parallel(pool, fn, items, lambda: None, window, tick_every_s=0.05)
        with closing(results):
            for item, err, result in results:
                assert item not in got
                got[item] = err if err is not None else result
    return got


def test_every_item_once_with_its_result_or_error() -> None:
    work = Counted(0.001)
    got = run(fixed_window(6), work, range(300))
    assert sorted(got) == list(range(300))
    for item, value in got.items():
        if item % 17 == 0:
            assert isinstance(value, ValueError) and value.args == (item,)
        else:
            assert value == item * 2
    assert work.most == 6  # the limit, and all of it used


def test_workers_over_a_lowered_limit_leave_instead_of_waiting() -> None:
    """The limit drops from 8 to 2 at item 40 of 200: from then on at most 2 run, and the
    6 workers over the limit leave. Left waiting, each release would wake one of them for
    a slot its releaser takes back at once: a sleep per item for the rest of the run
    (~150 here, 3,774 in a deploy of 5,000 files on loopback)."""
    window = fixed_window(8)
    waits = count_waits(window)

    def lower(item: int) -> None:
        if item == 40:
            window.controller.limit = 2

    work = Counted(0.002, late=60, at=lower)  # by item 60 those in flight at 40 are done
    got = run(window, work, range(200))
    assert sorted(got) == list(range(200))
    assert work.most == 8
    assert work.most_late == 2
    assert waits() <= 8  # at most one sleep per worker caught mid-acquire at the drop


def test_a_raised_limit_gets_more_workers() -> None:
    window = fixed_window(2)

    def raise_it(item: int) -> None:
        if item == 20:
            window.controller.limit = 8

    work = Counted(0.003, late=40, at=raise_it)
    got = run(window, work, range(200))
    assert sorted(got) == list(range(200))
    assert work.most == work.most_late == 8


@pytest.mark.parametrize("limit", [1, 4])
def test_leaving_early_stops_the_workers_after_their_item(limit: int) -> None:
    window = fixed_window(limit)
    started: list[int] = []
    lock = threading.Lock()

    def fn(item: int) -> int:
        with lock:
            started.append(item)
        time.sleep(0.002)
        return item

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = workers.in_parallel(
            pool, fn, range(1000), lambda: None, window, tick_every_s=0.05
        )
        with closing(results):
            for _ in zip(range(10), results, strict=False):
                pass
        seen = len(started)
    assert 10 <= seen <= 10 + 2 * limit  # the items in flight when it was left, no more
    assert window.in_flight == 0


def test_the_deploy_pool_left_normally_does_not_wait_for_what_still_runs() -> None:
    """Left normally: a task still running (a connection being opened ahead) is not waited
    for, and queued ones are dropped; the caller goes on to the record at once."""
    release = threading.Event()
    ran: list[str] = []
    started = time.monotonic()
    with workers.deploy_pool(1) as pool:
        running = pool.submit(release.wait, 10)
        queued = pool.submit(ran.append, "queued")
    left_after = time.monotonic() - started
    try:
        assert left_after < 5
        assert not running.done()
        assert queued.cancelled() and not ran
    finally:
        release.set()
    assert running.result(timeout=10) is True


def test_the_deploy_pool_left_by_an_error_waits_for_its_tasks() -> None:
    """Left by an exception: every task has ended when it propagates (nothing of a failed
    deploy runs on after it is reported)."""
    finished = threading.Event()

    def slow() -> None:
        time.sleep(0.2)
        finished.set()

    with pytest.raises(RuntimeError, match="failed"), workers.deploy_pool(2) as pool:
        pool.submit(slow)
        raise RuntimeError("failed")
    assert finished.is_set()
