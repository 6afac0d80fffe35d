"""Connections opened ahead: a few at the start, more only for uploads the first listing
page makes certain, decided once the walk and the first page are both known, and again
as the window's reach moves."""

from __future__ import annotations

import threading

import pytest

from deployer import ahead
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
