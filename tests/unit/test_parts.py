"""Large files in parts: the part plan within S3's rules, the in-order reader's digests,
and the runner's scheduling on a fake window with fake part uploads."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployer import parts
from deployer.concurrency import Controller, Window
from deployer.parts import MAX_PART, MAX_PARTS, MIB, MIN_PART, Lanes, Part, Token
from deployer.s3wire import BodyChangedError

# -- the plan (pure) --------------------------------------------------------------------------


def test_part_size_is_the_preferred_one_when_the_file_fits() -> None:
    """A 200 MiB file in 16 MiB parts: 16 MiB (13 parts, the last 8 MiB)."""
    assert parts.part_size_for(200 * MIB, 16 * MIB) == 16 * MIB
    plan = parts.plan(200 * MIB, 16 * MIB)
    assert [p.number for p in plan] == list(range(1, 14))
    assert plan[-1] == Part(13, 192 * MIB, 8 * MIB)


def test_part_size_never_below_s3s_minimum() -> None:
    """A preferred size under 5 MiB is raised to 5 MiB (S3 refuses smaller parts)."""
    assert parts.part_size_for(12 * MIB, 1 * MIB) == MIN_PART


def test_part_size_grows_to_fit_ten_thousand_parts() -> None:
    """A 1 TiB file cannot go in 16 MiB parts (65,536): the size grows to a whole MiB that
    fits it in 10,000 parts."""
    size = 1024 * 1024 * MIB
    chosen = parts.part_size_for(size, 16 * MIB)
    assert chosen % MIB == 0
    assert len(parts.plan(size, chosen)) <= MAX_PARTS
    assert len(parts.plan(size, chosen - MIB)) > MAX_PARTS  # the smallest whole MiB that fits


@pytest.mark.parametrize(
    ("size_mib", "part_mib"),
    [(80, 8), (128, 8), (200, 13), (256, 16), (1024, 64), (4096, 64)],
)
def test_preferred_part_size_puts_a_files_parts_in_flight_at_once(
    size_mib: int, part_mib: int
) -> None:
    """Parts of 8 to 64 MiB, as few as lets all of them be in flight at once (16): 80 MiB
    in 10 parts of 8, 256 MiB in 16 of 16, 4 GiB in 64 of 64."""
    assert parts.preferred_part_size(size_mib * MIB) == part_mib * MIB
    assert parts.HELPERS + 1 == 16


def test_plan_of_an_exact_multiple_has_no_empty_part() -> None:
    """10 MiB in 5 MiB parts: exactly two parts."""
    assert parts.plan(10 * MIB, 5 * MIB) == [Part(1, 0, 5 * MIB), Part(2, 5 * MIB, 5 * MIB)]


def test_plan_of_a_file_smaller_than_a_part() -> None:
    """A file below the part size is one part, of its own size."""
    assert parts.plan(3, 5 * MIB) == [Part(1, 0, 3)]


@given(
    size=st.integers(min_value=1, max_value=5 * 1024**4),
    preferred=st.integers(min_value=1, max_value=6 * 1024**3),
)
def test_every_plan_keeps_s3s_rules(size: int, preferred: int) -> None:
    """Any size up to S3's 5 TiB, any preferred size: parts numbered 1..n, n <= 10,000,
    each part follows the last, every part but the last is 5 MiB to 5 GiB, and together
    they are the file."""
    plan = parts.plan(size, parts.part_size_for(size, preferred))
    assert 1 <= len(plan) <= MAX_PARTS
    assert [p.number for p in plan] == list(range(1, len(plan) + 1))
    offset = 0
    for part in plan:
        assert part.offset == offset
        assert 0 < part.size <= MAX_PART
        offset += part.size
    assert offset == size
    assert all(p.size >= MIN_PART for p in plan[:-1])


# -- reading parts in order --------------------------------------------------------------------


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_in_order_gives_each_parts_md5_and_checks_the_whole(tmp_path: Path) -> None:
    """Each part comes back with the base64 MD5 of its bytes; the last one is accepted
    because the whole file still has the scanned MD5."""
    data = bytes(range(256)) * (3 * 4096 + 7)  # 3 MiB + 1,792 bytes
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    reader = parts.InOrder(str(path), len(data), hashlib.md5(data).hexdigest())
    plan = parts.plan(len(data), MIB)
    got = [reader(part) for part in plan]
    assert [digest for _, digest in got] == [
        b64md5(data[p.offset : p.offset + p.size]) for p in plan
    ]


def test_in_order_finds_a_same_size_rewrite_at_the_last_part(tmp_path: Path) -> None:
    """Rewritten since the scan at the same size: the parts' own MD5s agree with what is read
    now, but the whole file's MD5 does not, and the last part says so."""
    path = tmp_path / "big.bin"
    path.write_bytes(b"b" * (2 * MIB))
    reader = parts.InOrder(str(path), 2 * MIB, hashlib.md5(b"a" * (2 * MIB)).hexdigest())
    first, last = parts.plan(2 * MIB, MIB)
    reader(first)
    with pytest.raises(parts.ContentChangedError):
        reader(last)


@pytest.mark.parametrize("now", [MIB + 10, MIB - 10])
def test_in_order_finds_another_size(tmp_path: Path, now: int) -> None:
    """Grown or shrunk since the scan: BodyChangedError with both sizes, at the first part."""
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * now)
    reader = parts.InOrder(str(path), MIB, hashlib.md5(b"x" * MIB).hexdigest())
    with pytest.raises(BodyChangedError) as caught:
        reader(parts.plan(MIB, MIB)[0])
    assert (caught.value.expected, caught.value.found) == (MIB, now)


def test_in_order_refuses_parts_out_of_order(tmp_path: Path) -> None:
    """The whole file's MD5 needs the parts in order: a skipped part is a programming error."""
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (2 * MIB))
    reader = parts.InOrder(str(path), 2 * MIB, "0" * 32)
    with pytest.raises(ValueError, match="out of order"):
        reader(parts.plan(2 * MIB, MIB)[1])


# -- the runner on a fake window ---------------------------------------------------------------


class FakeSlots:
    """A window of `limit` slots that records what the runner does with them. The calling
    thread of `send_all` holds one slot already (`owner=True` counts it)."""

    def __init__(self, limit: int, *, owner: bool = True) -> None:
        self.limit = limit
        self.in_flight = 1 if owner else 0
        self.peak = self.in_flight
        self.acquired = self.cancelled = self.released = 0
        self.cond = threading.Condition()
        self.running_threads: set[str] = set()

    def acquire(self, stop: threading.Event) -> Token | None:
        with self.cond:
            while self.in_flight >= self.limit:
                if stop.is_set():
                    return None
                self.cond.wait(timeout=0.01)
            self.in_flight += 1
            self.acquired += 1
            self.peak = max(self.peak, self.in_flight)
            return (0, 0.0, self.in_flight)

    def cancel(self, token: Token) -> None:
        with self.cond:
            self.in_flight -= 1
            self.cancelled += 1
            self.cond.notify_all()

    @contextmanager
    def running(self, token: Token) -> Iterator[None]:
        with self.cond:
            self.running_threads.add(threading.current_thread().name)
        try:
            yield
        finally:
            with self.cond:
                self.in_flight -= 1
                self.released += 1
                self.cond.notify_all()


class Sends:
    """A fake part upload: records which parts were sent, at most how many at once, and
    can wait, fail or block a part."""

    def __init__(
        self,
        *,
        delay_s: float = 0.0,
        fail: set[int] | None = None,
        wait: Callable[[Part], object] | None = None,
    ) -> None:
        self.delay_s, self.fail, self.wait = delay_s, fail or set(), wait
        self.sent: list[int] = []
        self.ended: list[int] = []
        self.now = self.most = 0
        self.lock = threading.Lock()

    def __call__(self, part: Part) -> str:
        with self.lock:
            self.sent.append(part.number)
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            if self.wait is not None:
                self.wait(part)
            time.sleep(self.delay_s)
            if part.number in self.fail:
                raise OSError(f"part {part.number} failed")
            return f'"etag-{part.number}"'
        finally:
            with self.lock:
                self.now -= 1
                self.ended.append(part.number)


@contextmanager
def lanes_of(slots: FakeSlots, helpers: int) -> Iterator[Lanes]:
    with ThreadPoolExecutor(max(1, helpers), thread_name_prefix="helper") as pool:
        yield Lanes(slots, pool.submit, helpers)


def in_order() -> Callable[[Part], Part]:
    """A `prepare` that fails the test if called out of order or two at a time."""
    state = {"next": 1, "busy": False}

    def prepare(part: Part) -> Part:
        assert not state["busy"], "prepare called concurrently"
        state["busy"] = True
        try:
            assert part.number == state["next"], "prepare called out of order"
            state["next"] = part.number + 1
            time.sleep(0.001)
            return part
        finally:
            state["busy"] = False

    return prepare


PLAN = parts.plan(10 * MIN_PART, MIN_PART)  # 10 parts


def test_every_part_is_sent_once_and_etags_come_in_part_order() -> None:
    """Parts run on the calling thread and helpers at once; the ETags are in part order,
    every slot taken is given back, and none is held at the end but the caller's."""
    slots = FakeSlots(limit=5)
    sends = Sends(delay_s=0.01)
    with lanes_of(slots, helpers=4) as lanes:
        etags = parts.send_all(PLAN, in_order(), sends, lanes)
    assert etags == [f'"etag-{n}"' for n in range(1, 11)]
    assert sorted(sends.sent) == list(range(1, 11))
    assert slots.acquired == slots.released + slots.cancelled
    assert slots.in_flight == 1
    assert any(name.startswith("helper") for name in slots.running_threads)


def test_parts_fan_out_when_slots_are_free() -> None:
    """With free slots, three parts are in flight at once (each waits until three are)."""
    barrier = threading.Barrier(3, timeout=5)
    sends = Sends(wait=lambda part: barrier.wait() if part.number <= 3 else None)
    with lanes_of(FakeSlots(limit=10), helpers=2) as lanes:
        parts.send_all(PLAN, in_order(), sends, lanes)
    assert sends.most == 3


def test_the_window_bounds_parts_in_flight() -> None:
    """A window of 3 (one held by the caller): never more than 3 in flight, with 8
    helpers asking for slots."""
    slots = FakeSlots(limit=3)
    sends = Sends(delay_s=0.01)
    with lanes_of(slots, helpers=8) as lanes:
        parts.send_all(PLAN, in_order(), sends, lanes)
    assert slots.peak == 3
    assert sends.most <= 3


def test_a_full_window_still_moves_on_the_callers_slot() -> None:
    """No slot free for the whole upload: the calling thread sends every part itself, and
    the helpers waiting for a slot stop when none is left (no deadlock)."""
    slots = FakeSlots(limit=1)
    sends = Sends()
    with lanes_of(slots, helpers=4) as lanes:
        etags = parts.send_all(PLAN, in_order(), sends, lanes)
    assert len(etags) == 10
    assert slots.acquired == 0
    assert sends.most == 1


def test_helpers_never_outnumber_the_parts_after_the_first() -> None:
    """Two parts: one helper at most, however many are allowed."""
    started: list[object] = []

    def submit(task: Callable[[], None]) -> object:
        started.append(task)
        return None  # never run: the caller sends both parts

    lanes = Lanes(FakeSlots(limit=10), submit, 16)
    assert parts.send_all(PLAN[:2], in_order(), Sends(), lanes) == ['"etag-1"', '"etag-2"']
    assert len(started) == 1


def test_a_pool_that_is_shutting_down_leaves_the_parts_to_the_caller() -> None:
    """`submit` refusing (RuntimeError) is not an error: the calling thread sends them all."""

    def refuse(task: Callable[[], None]) -> object:
        raise RuntimeError("cannot schedule new futures after shutdown")

    sends = Sends()
    assert len(parts.send_all(PLAN, in_order(), sends, Lanes(FakeSlots(10), refuse, 4))) == 10
    assert sorted(sends.sent) == list(range(1, 11))


def test_the_first_error_stops_new_parts_and_waits_for_those_in_flight() -> None:
    """Part 2 fails while part 1 is still in flight: no part after those already taken
    starts, `send_all` raises part 2's error only after part 1 ended, and every slot is
    given back."""
    release_part_1 = threading.Event()

    def wait(part: Part) -> None:
        if part.number == 1:
            release_part_1.wait(timeout=5)
        if part.number == 2:
            threading.Timer(0.2, release_part_1.set).start()

    slots = FakeSlots(limit=3)
    sends = Sends(fail={2}, wait=wait)
    with lanes_of(slots, helpers=2) as lanes:
        with pytest.raises(OSError, match="part 2 failed"):
            parts.send_all(PLAN, in_order(), sends, lanes)
        assert 1 in sends.ended  # the raise waited for the part in flight
    assert len(sends.sent) <= 3
    assert slots.in_flight == 1
    assert slots.acquired == slots.released + slots.cancelled


def test_a_failing_prepare_stops_the_upload() -> None:
    """The file changed (prepare raises at part 4): parts 1-3 may be sent, none after, and
    that error is raised."""

    def prepare(part: Part) -> Part:
        if part.number == 4:
            raise BodyChangedError(100, 50)
        return part

    sends = Sends(delay_s=0.005)
    with lanes_of(FakeSlots(limit=4), helpers=3) as lanes, pytest.raises(BodyChangedError):
        parts.send_all(PLAN, prepare, sends, lanes)
    assert sorted(sends.sent) == [1, 2, 3]


def test_parts_on_the_real_window_are_measured_and_bounded() -> None:
    """On `concurrency.Window` (fixed at 4, the caller's slot taken first): at most 4 in
    flight, the helpers' parts are released through the window (its measurements see
    them), and only the caller's slot is held at the end."""
    window = Window(Controller(limit=4, cap=4, fixed=True))
    owner = window.acquire(threading.Event())
    assert owner is not None
    sends = Sends(delay_s=0.01)
    with ThreadPoolExecutor(8) as pool, window.running(owner):
        parts.send_all(PLAN, in_order(), sends, Lanes(window, pool.submit, 8))
        assert window.in_flight == 1
    assert window.peak == 4
    assert window.in_flight == 0
