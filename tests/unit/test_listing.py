"""The parallel listing: ranges cut at local keys, and their union is the whole bucket."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deployer import listing
from deployer.model import RemoteObject
from tests.unit.test_deploy import World, write_site


class Bucket:
    """Lists like S3: keys in order, 1,000 per page from StartAfter; counts the requests
    each range made (pages read one after another)."""

    def __init__(self, keys: list[str], page: int = 1000) -> None:
        self.keys = sorted(keys)
        self.page = page
        self.pages: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def list_range(self, after: str, until: str | None) -> list[RemoteObject]:
        out: list[RemoteObject] = []
        rest = [k for k in self.keys if k > after]
        for start in range(0, max(1, len(rest)), self.page):
            with self.lock:
                self.pages.append((after, start // self.page))
            for key in rest[start : start + self.page]:
                if until is not None and key > until:
                    return out
                out.append(RemoteObject(key, 1, "e"))
            if until is not None and out and out[-1].key >= until:
                return out  # as S3Store: no page more once the bound is reached
        return out

    def first_page(self) -> listing.FirstPage:
        with self.lock:
            self.pages.append(("first", 0))
        page = self.keys[: self.page]
        return [RemoteObject(key, 1, "e") for key in page], len(self.keys) <= self.page


def started(
    bucket: Bucket,
    local: list[str],
    submit: listing.Submit,
    *,
    back: bool,
    page: int = listing.PAGE,
    most: int = listing.MOST_RANGES,
) -> listing.Listing:
    """A listing whose walk ended after the first page came back (`back`), or before."""
    first: Future[listing.FirstPage] = Future()
    if back:
        first.set_result(bucket.first_page())
    pending = listing.Listing(bucket.list_range, first, submit, page=page, most=most)
    pending.start(sorted(local))
    if not back:
        first.set_result(bucket.first_page())
    return pending


def run(bucket: Bucket, local: list[str], *, back: bool = True) -> list[str]:
    with ThreadPoolExecutor(8) as pool:
        return [obj.key for obj in started(bucket, local, pool.submit, back=back).result()]


both = pytest.mark.parametrize("back", [True, False], ids=["page-first", "walk-first"])


def keys(n: int, fmt: str = "k{:05d}") -> list[str]:
    return [fmt.format(i) for i in range(n)]


def test_ranges_cut_at_every_thousandth_key() -> None:
    local = keys(2500)
    assert listing.ranges(local) == [("", "k00999"), ("k00999", "k01999"), ("k01999", None)]
    assert listing.ranges(keys(1000)) == [("", None)]
    assert listing.ranges([]) == [("", None)]


def test_at_most_32_ranges() -> None:
    """100,000 keys: 32 ranges of 3,125 (several pages each), not 100 threads."""
    split = listing.ranges(keys(100_000))
    assert len(split) == 32
    assert split[1] == ("k03124", "k06249")


@both
def test_bucket_equal_to_the_folder_is_one_page_per_range(back: bool) -> None:
    """20,000 keys in the bucket and locally: the first page and 19 ranges, 20 requests,
    none after another (a range of one page each)."""
    local = keys(20_000)
    bucket = Bucket(local)
    assert run(bucket, local, back=back) == local
    assert len(bucket.pages) == 20
    assert all(number == 0 for _, number in bucket.pages)


@both
def test_keys_only_in_the_bucket_are_listed_once(back: bool) -> None:
    """Remote-only keys before, between and after the local keys, and a range with
    more than a page of them: every key once, in order."""
    local = keys(3000)
    remote = local + keys(1500, "k01500x{:04d}") + ["a-first", "zzz-last"] + keys(10, "k02999z{}")
    bucket = Bucket(remote)
    assert run(bucket, local, back=back) == sorted(remote)
    assert any(number > 0 for _, number in bucket.pages)  # the crowded range read on


@both
def test_a_first_page_that_reaches_into_the_next_range(back: bool) -> None:
    """Half the site is new (the bucket holds every other local key): the first page
    ends inside the second range. Back before the walk ended, the ranges start where it
    ends; not back, the second range is listed whole. Every key comes once."""
    local = keys(3000)
    remote = local[::2]
    bucket = Bucket(remote)
    assert run(bucket, local, back=back) == remote
    after = "k01998" if back else "k00999"  # the first page's last key, or the range's bound
    assert sorted(bucket.pages) == sorted([("first", 0), (after, 0), ("k01999", 0)])


def test_an_empty_or_small_bucket_is_one_request() -> None:
    """A first deploy, or a bucket of fewer keys than a page: the first page is the whole
    listing when it is back before the walk ends, and no range is asked."""
    for remote in ([], keys(700, "z{:03d}")):
        bucket = Bucket(remote)
        assert run(bucket, keys(2500)) == remote
        assert bucket.pages == [("first", 0)]


def test_an_empty_bucket_listed_before_the_first_page_is_back() -> None:
    """The walk was faster than a round trip: every range but the first was asked (in
    parallel, no time lost; those not started yet are cancelled), and the listing is
    still empty."""
    bucket = Bucket([])
    asked: list[Callable[[], list[RemoteObject]]] = []
    with ThreadPoolExecutor(2) as pool:

        def submit(fn: Callable[[], list[RemoteObject]]) -> Future[list[RemoteObject]]:
            asked.append(fn)
            return pool.submit(fn)

        assert started(bucket, keys(2500), submit, back=False).result() == []
    ranges = [fn.args for fn in asked if isinstance(fn, partial)]
    assert len(asked) == 2 and ranges == [("k00999", "k01999"), ("k01999", None)]


def test_a_small_site_in_a_larger_bucket_lists_on_from_the_first_page() -> None:
    """One range only (a site of one page) and a bucket of 2,500 keys: what the first
    page did not reach is listed from its last key."""
    remote = keys(2500)
    bucket = Bucket(remote)
    assert run(bucket, keys(10), back=False) == remote
    assert bucket.pages == [("first", 0), ("k00999", 0), ("k00999", 1)]


def test_a_server_out_of_order_is_listed_the_plain_way() -> None:
    """A range that gives a key at or before its lower bound: listed again from the top."""

    class Odd(Bucket):
        def list_range(self, after: str, until: str | None) -> list[RemoteObject]:
            found = super().list_range(after, until)
            if after and found:  # a server whose StartAfter is not byte order
                found.insert(0, RemoteObject("a-early", 1, "e"))
            return found

    local = keys(2500)
    bucket = Odd(local)
    assert run(bucket, local) == local
    assert ("", 0) in bucket.pages[-3:]  # the plain listing, last


def test_a_range_with_a_key_the_first_page_skipped_means_the_plain_listing() -> None:
    """A first page in order within itself that skipped `b` (a server whose order is not
    byte order), and a range that holds `b`: listed again from the top."""

    class Skips(Bucket):
        def first_page(self) -> listing.FirstPage:
            self.pages.append(("first", 0))
            return [RemoteObject(k, 1, "e") for k in ("a", "c")], False

    bucket = Skips(["a", "b", "c", "d", "e"], page=2)
    with ThreadPoolExecutor(2) as pool:
        pending = started(bucket, ["a", "b", "c", "d"], pool.submit, back=False, page=1)
        assert [o.key for o in pending.result()] == ["a", "b", "c", "d", "e"]
    assert bucket.pages[-3:] == [("", 0), ("", 1), ("", 2)]  # the plain listing


def test_cancel_stops_ranges_not_started() -> None:
    submitted: list[Future[list[RemoteObject]]] = []

    def submit(fn: Callable[[], list[RemoteObject]]) -> Future[list[RemoteObject]]:
        future: Future[list[RemoteObject]] = Future()
        submitted.append(future)
        return future

    first: Future[listing.FirstPage] = Future()
    pending = listing.Listing(Bucket([]).list_range, first, submit)
    pending.start(keys(5000))
    pending.cancel()
    assert len(submitted) == 4 and all(f.cancelled() for f in submitted)
    assert first.cancelled()


@settings(max_examples=60, deadline=None)
@given(
    local=st.sets(st.text("ab/.-é", min_size=1, max_size=6), max_size=60),
    extra=st.sets(st.text("ab/.-é", min_size=1, max_size=6), max_size=60),
    page=st.integers(1, 7),
    back=st.booleans(),
)
def test_union_of_ranges_is_the_bucket(
    local: set[str], extra: set[str], page: int, back: bool
) -> None:
    """Any local keys, any bucket, any page size, the first page back before the walk
    ended or after: the listing is the bucket, in order, every key once."""
    remote = sorted(extra | set(list(local)[: len(local) // 2]))
    bucket = Bucket(remote, page=page)
    with ThreadPoolExecutor(4) as pool:
        pending = started(bucket, sorted(local), pool.submit, back=back, page=page, most=5)
        assert [obj.key for obj in pending.result()] == remote


def test_a_page_out_of_byte_order_means_the_plain_listing() -> None:
    """`OutOfOrder` from any range (the store saw a page out of byte order): the bucket
    is listed again from the top, in the server's own order."""

    class Folders(Bucket):
        def list_range(self, after: str, until: str | None) -> list[RemoteObject]:
            if after or until is not None:
                listing.check_order(after, ["a/b", "a-b"])
            return [RemoteObject(k, 1, "e") for k in ("a/b", "a-b")]

        def first_page(self) -> listing.FirstPage:
            return [RemoteObject("a/b", 1, "e")], False

    for back in (True, False):
        with ThreadPoolExecutor(2) as pool:
            pending = started(Folders([]), ["a-b", "a/b"], pool.submit, back=back, page=1)
            assert [o.key for o in pending.result()] == ["a/b", "a-b"]


def test_check_order() -> None:
    assert listing.check_order("", ["a", "b"]) == "b"
    assert listing.check_order("b", []) == "b"
    with pytest.raises(listing.OutOfOrder):
        listing.check_order("b", ["b"])
    with pytest.raises(listing.OutOfOrder):
        listing.check_order("", ["a/b", "a-b"])


def test_deploy_lists_in_ranges_and_deletes_keys_only_in_the_bucket(tmp_path: Path) -> None:
    """2,500 local files: the bucket is listed in 3 requests (the first page and 2
    ranges), and objects only in the bucket (in the middle of a range and after the
    last local key) are deleted."""
    world = World(tmp_path)
    write_site(world.site, {f"p/{i:04d}.txt": b"x" for i in range(2500)})
    world.deploy()
    for key in ("p/1500-gone.txt", "zz-gone.txt"):
        world.store.put_raw(key, b"old")
    outcome = world.deploy(**{"max-delete": "10"})
    assert len(world.events.keys("list")) == 3
    assert sorted(outcome.deleted) == ["p/1500-gone.txt", "zz-gone.txt"]
    assert outcome.unchanged_count == 2505
