"""Connections opened ahead: a few at the start, more only for uploads the first listing
page makes certain, decided once the walk and the first page are both known, and again
as the window's reach moves."""

from __future__ import annotations

import threading

import pytest

from deployer import ahead, concurrency
from deployer.model import RemoteObject


def page(keys: list[str], *, complete: bool = True) -> tuple[list[RemoteObject], bool]:
    return [RemoteObject(key, 1, "e") for key in keys], complete


class Opened:
    """Counts the connections `Ahead` opens (from any thread)."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def __call__(self) -> None:
        with self.lock:
            self.count += 1


def test_certain_uploads_are_the_keys_a_whole_listing_lacks() -> None:
    local = ["a", "b", "c", "d"]
    assert ahead.certain_uploads(local, page([])) == 4  # a first deploy
    assert ahead.certain_uploads(local, page(["a", "b", "c", "d", "z"])) == 0  # nothing new
    assert ahead.certain_uploads(local, page(["b", "z"])) == 3
    # A bucket of more than a page: nothing is certain from its first page.
    assert ahead.certain_uploads(local, page([], complete=False)) == 0


@pytest.mark.parametrize("walk_first", [True, False])
def test_decided_once_both_are_known_in_either_order(walk_first: bool) -> None:
    opened = Opened()
    opening = ahead.Ahead(lambda: 128, opened)
    keys = [f"k{i}" for i in range(500)]
    calls = [lambda: opening.walked(keys), lambda: opening.listed(page([]))]
    if not walk_first:
        calls.reverse()
    calls[0]()
    assert opened.count == 0  # half known: nothing yet
    calls[1]()
    assert opened.count == 128 - ahead.FIRST  # the window's limit, beyond those opened first
    opening.walked(["x"])
    opening.listed(page([]))
    assert opened.count == 128 - ahead.FIRST  # decided once


def test_nothing_more_for_a_deploy_that_sends_nothing_or_a_few_files() -> None:
    local = [f"k{i}" for i in range(500)]
    for listed, expected in ((local, 0), (local[5:], 0), (local[100:], 100 - ahead.FIRST)):
        opened = Opened()
        opening = ahead.Ahead(lambda: 256, opened)
        opening.walked(local)
        opening.listed(page(listed))
        assert opened.count == expected


def test_the_two_halves_from_two_threads_decide_once() -> None:
    for _ in range(50):
        opened = Opened()
        opening = ahead.Ahead(lambda: 64, opened)
        threads = [
            threading.Thread(target=opening.walked, args=([f"k{i}" for i in range(100)],)),
            threading.Thread(target=opening.listed, args=(page([]),)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert opened.count == 64 - ahead.FIRST


def test_each_move_of_the_window_opens_what_its_reach_adds_within_the_certain_uploads() -> None:
    opened = Opened()
    reach = [32]
    opening = ahead.Ahead(lambda: reach[0], opened)
    opening.moved()
    assert opened.count == 0  # nothing known yet: nothing opened
    opening.walked([f"k{i}" for i in range(500)])
    opening.listed(page([]))
    assert opened.count == 32 - ahead.FIRST
    reach[0] = 64  # the window doubled to 32, and may double again
    opening.moved()
    assert opened.count == 64 - ahead.FIRST
    reach[0] = 32  # the doubling was undone: what is open stays open, nothing more
    opening.moved()
    assert opened.count == 64 - ahead.FIRST
    reach[0] = 1024  # never beyond the 500 certain uploads
    opening.moved()
    assert opened.count == 500 - ahead.FIRST


def test_a_move_after_the_pool_shut_down_opens_nothing_and_raises_nothing() -> None:
    """The window's last move can come as the deploy's pool shuts down; `submit` then
    raises RuntimeError, which must not end the request whose release moved it."""

    def shut_down() -> None:
        raise RuntimeError("cannot schedule new futures after shutdown")

    reach = [32]
    opening = ahead.Ahead(lambda: reach[0], shut_down)
    opening.walked(["a", "b", "c", "d"] * 20)
    opening.listed(page([]))  # raises nothing
    reach[0] = 64
    opening.moved()  # nor here


def test_while_the_first_page_is_awaited_the_floor_opens_within_the_local_files() -> None:
    """Before the first page: connections for the window's least start (`waiting`), only
    once the walk has found the keys, never beyond them; the page's own decision then
    counts what is open already."""
    opened = Opened()
    opening = ahead.Ahead(lambda: 256, opened)
    opening.waiting(64)
    assert opened.count == 0  # the keys are not known yet
    opening.walked([f"k{i}" for i in range(100)])
    assert opened.count == 64 - ahead.FIRST  # the floor, remembered from before the walk
    opening.waiting(128)
    assert opened.count == 100 - ahead.FIRST  # one per local key at most
    opening.listed(page([]))  # 100 certain uploads: all open already
    assert opened.count == 100 - ahead.FIRST
    opening.waiting(256)  # the page has come: the floor no longer counts
    assert opened.count == 100 - ahead.FIRST


def test_what_the_floor_opened_counts_when_the_page_shows_more_uploads() -> None:
    opened = Opened()
    opening = ahead.Ahead(lambda: 256, opened)
    opening.walked([f"k{i}" for i in range(500)])
    opening.waiting(32)
    assert opened.count == 32 - ahead.FIRST
    opening.listed(page([]))
    assert opened.count == 256 - ahead.FIRST  # up to the window's reach, not 256 more


class Clock:
    """A fake first answer's wait: `while_listing` sleeps on the event, which advances it."""

    def __init__(self, answer_at: float | None) -> None:
        self.now = 0.0
        self.answer_at = answer_at  # when the first page comes (None: never, here)
        self.listed = threading.Event()
        self.floors: list[tuple[float, int]] = []
        self.waits: list[float] = []

    def waited(self) -> float | None:
        return None if self.listed.is_set() else self.now

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None and timeout > 0
        self.waits.append(timeout)
        self.now += timeout
        if self.answer_at is not None and self.now >= self.answer_at:
            self.listed.set()
        return self.listed.is_set()


class FakeEvent(threading.Event):
    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def is_set(self) -> bool:
        return self.clock.listed.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.clock.wait(timeout)


class Recorder(ahead.Ahead):
    def __init__(self, clock: Clock) -> None:
        super().__init__(lambda: 256, lambda: None)
        self.clock = clock

    def waiting(self, floor: int) -> None:
        self.clock.floors.append((round(self.clock.now, 6), floor))


@pytest.mark.parametrize(
    ("answer_at", "expected"),
    [
        (0.002, []),  # loopback: answered before the first step, nothing opened
        (0.05, [(0.032, 32)]),
        (0.2, [(0.032, 32), (0.064, 64), (0.128, 128)]),
        (None, [(0.032, 32), (0.064, 64), (0.128, 128), (0.256, 256)]),  # then it stops
    ],
)
def test_while_listing_tells_each_step_of_the_seed_until_the_page_comes(
    answer_at: float | None, expected: list[tuple[float, int]]
) -> None:
    clock = Clock(answer_at)
    opening = Recorder(clock)
    controller = concurrency.Controller()
    ahead.while_listing(opening, clock.waited, controller.floor, FakeEvent(clock))
    assert clock.floors == expected
    assert len(clock.waits) <= len(expected) + 1  # it sleeps between steps, no polling


def test_while_listing_waits_for_the_request_to_leave_and_ends_when_listed() -> None:
    """Until the first request has left (`waited` None) it looks every `POLL_S`."""
    clock = Clock(0.04)
    looks = [0]

    def waited() -> float | None:
        looks[0] += 1
        return None if looks[0] <= 2 else clock.waited()  # leaves on the third look

    opening = Recorder(clock)
    ahead.while_listing(opening, waited, concurrency.Controller().floor, FakeEvent(clock))
    assert clock.waits[:2] == [ahead.POLL_S, ahead.POLL_S]
    assert [floor for _, floor in clock.floors] == [32]


def test_a_fixed_number_below_the_first_window_opens_nothing_while_listing() -> None:
    clock = Clock(None)
    opening = Recorder(clock)
    ahead.while_listing(opening, clock.waited, concurrency.controller_for(8).floor,
                        FakeEvent(clock))  # fmt: skip
    assert clock.floors == []
