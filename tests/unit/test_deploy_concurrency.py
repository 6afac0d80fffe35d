"""deploy.run keeps the window: a fixed `concurrency` is the most in flight; `auto`
backs off when the store's requests are throttled, and says so at debug level."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from deployer import ahead, concurrency, parts
from deployer.model import LocalFile, RemoteObject
from tests.unit.test_deploy import Events, FakeStore, World, write_site

FILES = {f"assets/chunk-{i:03d}.js": f"console.log({i})".encode() for i in range(120)}


class SlowStore(FakeStore):
    """Each PUT takes `delay_s` and counts how many run at once; the PUTs numbered in
    `throttle_at` meet a SlowDown first (the wire reports it, then retries)."""

    def __init__(self, events: Events, delay_s: float, throttle_at: set[int]) -> None:
        super().__init__(events)
        self.delay_s = delay_s
        self.throttle_at = throttle_at
        self.now = 0
        self.most = 0
        self.started = 0
        self.in_flight_seen: list[int] = []
        self.gate = threading.Lock()

    def put_file(self, file: LocalFile, lanes: parts.Lanes | None = None) -> str:
        with self.gate:
            self.now += 1
            self.started += 1
            number = self.started
            self.most = max(self.most, self.now)
            self.in_flight_seen.append(self.now)
        try:
            if number in self.throttle_at:
                concurrency.note_retry("throttled")
            time.sleep(self.delay_s)
            return super().put_file(file)
        finally:
            with self.gate:
                self.now -= 1


def world_with(tmp_path: Path, store: SlowStore) -> World:
    world = World(tmp_path)
    write_site(world.site, FILES)
    world.store = store
    store.events = world.events
    return world


def test_fixed_concurrency_is_the_most_in_flight(tmp_path: Path) -> None:
    """`concurrency: 3`: never more than 3 PUTs at once, and 3 are used."""
    store = SlowStore(Events(), 0.01, set())
    world = world_with(tmp_path, store)
    outcome = world.deploy(concurrency="3")
    assert len(outcome.uploaded) == len(FILES) + 5
    assert store.most == 3
    assert not any("->" in line for line in world.log.debugs)


def test_auto_backs_off_on_slowdown_and_logs_it(tmp_path: Path) -> None:
    """`auto` starts at 16; SlowDown answers (every PUT from the 40th) halve it at once,
    the deploy still completes, and the debug log tells the limit's moves."""
    store = SlowStore(Events(), 0.01, set(range(40, 1000)))
    world = world_with(tmp_path, store)
    outcome = world.deploy()
    assert len(outcome.uploaded) == len(FILES) + 5
    assert store.most <= concurrency.INITIAL * 2
    moves = [line for line in world.log.debugs if "->" in line]
    assert any("(throttled)" in line for line in moves), world.log.debugs
    # The limit went down to 1 and the last PUTs ran alone.
    assert "-> 1 (throttled)" in moves[-1]
    assert store.in_flight_seen[-5:] == [1] * 5
    assert any(line.startswith("Requests in flight: at most") for line in world.log.debugs)


class FarStore(SlowStore):
    """The first request takes `connect_s` on the wire (a far bucket)."""

    def __init__(self, events: Events, connect_s: float) -> None:
        super().__init__(events, 0.01, set())
        self.connect_s = connect_s


def test_a_far_bucket_starts_with_a_wider_window(tmp_path: Path) -> None:
    """A first request of 360 ms (180 ms round trips) on a first deploy: the window starts
    at the cap (said at debug level), a connection is opened ahead for every upload it can
    hold (all 126 are certain: the bucket is empty), and more than 16 PUTs run at once."""
    store = FarStore(Events(), 0.36)
    world = world_with(tmp_path, store)
    outcome = world.deploy()
    assert len(outcome.uploaded) == len(FILES) + 5
    assert "Requests in flight: 16 -> 256 (link)" in world.log.debugs
    assert store.prepared == len(FILES) + 5 + 1  # the files and the record
    assert store.most > concurrency.INITIAL


def test_a_near_bucket_keeps_the_first_window(tmp_path: Path) -> None:
    """A first request of a millisecond: the window starts at 16. Connections open ahead
    for what it reaches (32: its doubling) and more as it grows, never beyond the certain
    uploads."""
    store = FarStore(Events(), 0.001)
    world = world_with(tmp_path, store)
    world.deploy()
    assert not any("(link)" in line for line in world.log.debugs)
    grown = [line for line in world.log.debugs if "(grow" in line]
    assert grown, world.log.debugs  # this store carries more at every doubling
    assert concurrency.INITIAL * 2 <= store.prepared <= len(FILES) + 5 + 1
    assert store.most <= store.prepared


def test_a_deploy_that_sends_nothing_opens_only_the_first_few(tmp_path: Path) -> None:
    """Every key already in the bucket: no upload is certain, so only `ahead.FIRST`
    connections open ahead, whatever the window (each costs handshakes for nothing)."""
    store = FarStore(Events(), 0.36)
    world = world_with(tmp_path, store)
    world.deploy()
    store.prepared = 0
    world.deploy()
    assert store.prepared == ahead.FIRST


class AwaitedStore(FarStore):
    """A far bucket whose first page is still on its way after `waited_s` (what the wire
    tells while it is awaited); the page comes once `ready` connections are open, or
    after a second. `opened_first`: how many were open when it came."""

    def __init__(self, events: Events, waited_s: float, ready: int) -> None:
        super().__init__(events, max(waited_s, 0.001))
        self.waited_s = waited_s
        self.ready = ready
        self.opened_first: int | None = None

    def first_page(self, prefix: str) -> tuple[list[RemoteObject], bool]:
        deadline = time.monotonic() + 1.0
        while self.prepared < self.ready and time.monotonic() < deadline:
            time.sleep(0.005)
        if self.opened_first is None:
            self.opened_first = self.prepared
        self.waited_s = None  # answered
        return super().first_page(prefix)


def test_a_far_first_page_opens_the_window_before_it_comes(tmp_path: Path) -> None:
    """Awaited 0.3 s: the window will start at the cap, so a connection for every local
    file (126 and the record, fewer than 256) opens before the page comes; none more after
    it (all the uploads it makes certain have theirs)."""
    store = AwaitedStore(Events(), 0.3, ready=len(FILES) + 5 + 1)
    world = world_with(tmp_path, store)
    outcome = world.deploy()
    assert len(outcome.uploaded) == len(FILES) + 5
    assert store.opened_first == len(FILES) + 5 + 1
    assert store.prepared == len(FILES) + 5 + 1


def test_a_near_first_page_opens_nothing_more_while_awaited(tmp_path: Path) -> None:
    """Awaited 20 ms so far (under the first step, 32 ms): only `ahead.FIRST` are open when
    it comes, however long the page then takes here (a second)."""
    store = AwaitedStore(Events(), 0.02, ready=ahead.FIRST + 1)
    world = world_with(tmp_path, store)
    world.deploy()
    assert store.opened_first == ahead.FIRST


def test_a_far_deploy_that_sends_nothing_opens_at_most_one_per_file(tmp_path: Path) -> None:
    """The price of opening before the page: a far bucket that needs nothing gets a
    connection per local file (here 126 and the record), never more, and none after the
    page."""
    store = AwaitedStore(Events(), 0.3, ready=len(FILES) + 5 + 1)
    world = world_with(tmp_path, store)
    world.deploy()
    store.prepared, store.opened_first, store.waited_s = 0, None, 0.3
    outcome = world.deploy()
    assert not outcome.uploaded
    assert store.opened_first == len(FILES) + 5 + 1
    assert store.prepared == len(FILES) + 5 + 1


class StuckStore(AwaitedStore):
    """Connections opened while the first page is awaited never finish opening (until
    the test lets them): a far link's handshakes, for a deploy that needs none."""

    def __init__(self, events: Events) -> None:
        super().__init__(events, 0.3, ready=len(FILES) + 5 + 1)
        self.release = threading.Event()

    def prepare(self) -> None:
        super().prepare()
        if threading.current_thread().name == "deploy-ahead":
            self.release.wait(10)


def test_the_deploy_does_not_wait_for_connections_opened_while_listing(tmp_path: Path) -> None:
    """A far deploy that sends nothing ends without waiting for the connections opened
    for the window before its first page came (they run on daemon threads)."""
    store = StuckStore(Events())
    world = world_with(tmp_path, store)
    store.release.set()
    world.deploy()  # fills the bucket
    store.release.clear()
    store.prepared, store.opened_first, store.waited_s = 0, None, 0.3
    started = time.monotonic()
    outcome = world.deploy()
    took = time.monotonic() - started
    stuck = [t for t in threading.enumerate() if t.name == "deploy-ahead"]
    store.release.set()
    assert not outcome.uploaded
    assert stuck and all(t.daemon for t in stuck)  # still opening when the deploy ended
    assert took < 5


def test_delete_batches_go_at_once(tmp_path: Path) -> None:
    """2,500 deletions are 3 batches of at most 1,000, sent at the same time."""
    world = World(tmp_path)
    world.deploy()
    for i in range(2500):
        world.store.put_raw(f"old/{i:04d}.txt", b"x")
    active, most, calls = [0], [0], []
    lock = threading.Lock()
    inner = world.store.delete

    def delete(keys: Sequence[str]) -> list[tuple[str, str]]:
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
            calls.append(len(keys))
        time.sleep(0.2)
        try:
            return inner(keys)
        finally:
            with lock:
                active[0] -= 1

    world.store.delete = delete  # type: ignore[method-assign]
    outcome = world.deploy(**{"max-delete": "3000"})
    assert sorted(calls) == [500, 1000, 1000]
    assert most[0] == 3
    assert len(outcome.deleted) == 2500
