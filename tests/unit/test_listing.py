"""The parallel listing: ranges cut at local keys, and their union is the whole bucket."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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


def run(bucket: Bucket, local: list[str]) -> list[str]:
    with ThreadPoolExecutor(8) as pool:
        pending = listing.Listing(bucket.list_range, sorted(local), pool.submit)
        return [obj.key for obj in pending.result()]


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


def test_bucket_equal_to_the_folder_is_one_page_per_range() -> None:
    """20,000 keys in the bucket and locally: 20 requests, none after another."""
    local = keys(20_000)
    bucket = Bucket(local)
    assert run(bucket, local) == local
    assert len(bucket.pages) == 20
    assert all(number == 0 for _, number in bucket.pages)


def test_keys_only_in_the_bucket_are_listed_once() -> None:
    """Remote-only keys before, between and after the local keys, and a range with
    more than a page of them: every key once, in order."""
    local = keys(3000)
    remote = local + keys(1500, "k01500x{:04d}") + ["a-first", "zzz-last"] + keys(10, "k02999z{}")
    bucket = Bucket(remote)
    assert run(bucket, local) == sorted(remote)
    assert any(number > 0 for _, number in bucket.pages)  # the crowded range read on


def test_empty_bucket() -> None:
    bucket = Bucket([])
    assert run(bucket, keys(2500)) == []


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


def test_cancel_stops_ranges_not_started() -> None:
    started: list[Future[list[RemoteObject]]] = []

    def submit(fn: Callable[[], list[RemoteObject]]) -> Future[list[RemoteObject]]:
        future: Future[list[RemoteObject]] = Future()
        started.append(future)
        return future

    pending = listing.Listing(Bucket([]).list_range, keys(5000), submit)
    pending.cancel()
    assert len(started) == 5 and all(f.cancelled() for f in started)


@settings(max_examples=60, deadline=None)
@given(
    local=st.sets(st.text("ab/.-é", min_size=1, max_size=6), max_size=60),
    extra=st.sets(st.text("ab/.-é", min_size=1, max_size=6), max_size=60),
    page=st.integers(1, 7),
)
def test_union_of_ranges_is_the_bucket(local: set[str], extra: set[str], page: int) -> None:
    """Any local keys, any bucket, any page size: the listing is the bucket, in order."""
    remote = sorted(extra | set(list(local)[: len(local) // 2]))
    bucket = Bucket(remote, page=page)
    with ThreadPoolExecutor(4) as pool:
        pending = listing.Listing(bucket.list_range, sorted(local), pool.submit, page=page, most=5)
        assert [obj.key for obj in pending.result()] == remote


def test_a_page_out_of_byte_order_means_the_plain_listing() -> None:
    """`OutOfOrder` from any range (the store saw a page out of byte order): the bucket
    is listed again from the top, in the server's own order."""

    class Folders(Bucket):
        def list_range(self, after: str, until: str | None) -> list[RemoteObject]:
            if after or until is not None:
                listing.check_order(after, ["a/b", "a-b"])
            return [RemoteObject(k, 1, "e") for k in ("a/b", "a-b")]

    with ThreadPoolExecutor(2) as pool:
        pending = listing.Listing(Folders([]).list_range, ["a-b", "a/b"], pool.submit, page=1)
        assert [o.key for o in pending.result()] == ["a/b", "a-b"]


def test_check_order() -> None:
    assert listing.check_order("", ["a", "b"]) == "b"
    assert listing.check_order("b", []) == "b"
    with pytest.raises(listing.OutOfOrder):
        listing.check_order("b", ["b"])
    with pytest.raises(listing.OutOfOrder):
        listing.check_order("", ["a/b", "a-b"])


def test_deploy_lists_in_ranges_and_deletes_keys_only_in_the_bucket(tmp_path: Path) -> None:
    """2,500 local files: the bucket is listed in 3 ranges, and objects only in the
    bucket (in the middle of a range and after the last local key) are deleted."""
    world = World(tmp_path)
    write_site(world.site, {f"p/{i:04d}.txt": b"x" for i in range(2500)})
    world.deploy()
    for key in ("p/1500-gone.txt", "zz-gone.txt"):
        world.store.put_raw(key, b"old")
    outcome = world.deploy(**{"max-delete": "10"})
    assert len(world.events.keys("list")) == 3
    assert sorted(outcome.deleted) == ["p/1500-gone.txt", "zz-gone.txt"]
    assert outcome.unchanged_count == 2505
