"""fanout.each: every item at once, results and errors in the items' order."""

from __future__ import annotations

import threading
import time

from deployer import fanout


def test_results_and_errors_keep_the_items_order() -> None:
    def fn(n: int) -> int:
        time.sleep(0.01 * (5 - n))  # the later items finish first
        if n == 2:
            raise ValueError("two")
        return n * 10

    got = fanout.each(fn, [0, 1, 2, 3, 4])
    assert got[:2] == [0, 10] and got[3:] == [30, 40]
    assert isinstance(got[2], ValueError) and str(got[2]) == "two"


def test_the_items_run_at_the_same_time() -> None:
    """Three calls that each wait for the other two: only at once do they all finish."""
    barrier = threading.Barrier(3, timeout=5)
    assert fanout.each(lambda n: barrier.wait() >= 0 and n, [1, 2, 3]) == [1, 2, 3]


def test_one_item_runs_on_the_calling_thread() -> None:
    caller = threading.current_thread()
    assert fanout.each(lambda _: threading.current_thread() is caller, ["x"]) == [True]
    assert fanout.each(lambda n: n, []) == []
