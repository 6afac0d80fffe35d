"""A function over many items on the deploy's window: as many workers as its limit.

Each worker takes a slot of the window (`concurrency.Window`), then the next item itself:
no Future per item (at 20,000 files those cost ~1 KB each, and submitting them one by one
from the caller's thread cost more GIL time than the uploads' own bookkeeping), and O(1)
per completion (`wait(FIRST_COMPLETED)` in a loop locks every pending future on each call:
O(n^2)). Workers are added as the window grows (a thread only when needed), and leave as
it shrinks: a worker over the limit ends instead of waiting for a slot.

Why leave rather than wait. When the limit halves (a step back from a doubling that did
not pay, a throttled answer), a worker left waiting is woken by each release (one slot,
one waiter), finds the slot taken again by the worker that released it (which did not
sleep), and sleeps again: two thread switches and two GIL hand-overs per request, for
nothing, as long as the limit stays down. Counted in a deploy of 5,000 files straight to
SeaweedFS on loopback, where the limit moves between 32 and 128: 3,774 such waits (none
once workers leave), and 7-11% of the deploy's CPU (2.07 -> 1.84 s, medians of 5 runs).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar, cast

from deployer.concurrency import Window
from deployer.progress import PROGRESS_EVERY_S

_T = TypeVar("_T")
_I = TypeVar("_I")
_END = object()

Done = tuple[_I, BaseException | None, _T | None]


@contextmanager
def deploy_pool(max_workers: int) -> Iterator[ThreadPoolExecutor]:
    """The deploy's thread pool. Left normally, its threads are not joined: every request
    has its answer by then (each phase waits for its own), and what is left, idle threads
    and connections still being opened ahead for a window that no longer needs them, ends
    by itself while the deploy goes on (queued openings are dropped). Joining up to 260
    threads took 18-20 ms between the last entry file's answer and the record's PUT
    (a timeline of a cold deploy at 180 ms round trips). Left by an exception, it waits for
    them as `with ThreadPoolExecutor` does, so nothing of a failed deploy runs on."""
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="deploy")
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True)
        raise
    pool.shutdown(wait=False, cancel_futures=True)


def in_parallel(
    pool: ThreadPoolExecutor,
    fn: Callable[[_I], _T],
    items: Iterable[_I],
    tick: Callable[[], None],
    window: Window,
    *,
    tick_every_s: float = PROGRESS_EVERY_S,
) -> Generator[Done[_I, _T], None, None]:
    """`fn(item)` for every item, at most `window.limit` at a time on threads of `pool`,
    yielding `(item, error, result)` as each finishes; `tick()` at least every
    `tick_every_s` while waiting. Use it in `closing()`: leaving early stops the workers
    after their current item."""
    done: queue.SimpleQueue[Done[_I, _T] | None] = queue.SimpleQueue()
    todo = iter(items)
    lock = threading.Lock()  # guards `todo` and `active`
    stop = threading.Event()
    exhausted = threading.Event()
    active = 0  # workers started and not yet left

    def over_limit() -> bool:
        """Leave if the window shrank below the workers (the lock held by the caller)."""
        nonlocal active
        if active > window.limit:
            active -= 1
            return True
        return False

    def worker() -> None:
        try:
            while not stop.is_set():
                with lock:
                    if over_limit():
                        return
                token = window.acquire(stop)
                if token is None:
                    return
                with lock:
                    item = next(todo, _END)
                if item is _END:
                    exhausted.set()
                    window.cancel(token)
                    return
                try:
                    with window.running(token):
                        result = fn(cast(_I, item))
                except BaseException as err:  # handed to the caller
                    done.put((cast(_I, item), err, None))
                else:
                    done.put((cast(_I, item), None, result))
        finally:
            done.put(None)  # this worker is finished

    runners: list[Future[None]] = []  # to cancel those not started yet, when left early

    def add_workers() -> int:
        """Start workers up to the window's limit; how many were started."""
        nonlocal active
        added = 0
        while not exhausted.is_set() and not stop.is_set():
            with lock:
                if active >= window.limit:
                    break
                active += 1
            if not added:  # a limit that moves often would otherwise keep every one
                runners[:] = [runner for runner in runners if not runner.done()]
            runners.append(pool.submit(worker))
            added += 1
        return added

    live = add_workers()
    try:
        while live:
            try:
                got = done.get(timeout=tick_every_s)
            except queue.Empty:
                tick()
                continue
            if got is None:
                live -= 1
            else:
                yield got
            live += add_workers()
    finally:
        stop.set()
        for runner in runners:
            runner.cancel()
