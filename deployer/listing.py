"""The bucket listed in parallel: the key space split at local key boundaries.

ListObjectsV2 gives 1,000 keys per request, and each page needs the continuation token
of the one before: listing 20,000 keys one page after another is 20 round trips before
a deploy can tell what changed. But the local keys are known (the folder is walked
before it is hashed), and a bucket that a deploy keeps in step holds about the same
keys. So the key space is cut at every 1,000th local key and each range is listed at
the same time, from `StartAfter` its lower bound up to its upper bound: one round trip
when the bucket holds what the folder holds.

Keys that exist only in the bucket fall into whichever range covers them, and a range
with more than a page of them reads on (with continuation tokens) until it passes its
upper bound: the union of the ranges is the whole listing, every key once. That needs
the server to list in UTF-8 binary order (Python's order of `str`), as S3, R2 and MinIO
do; SeaweedFS, for one, lists a folder's keys before `a.txt` when `a/` sorts after it.
So every page a range reads is checked whole (the keys past its bound too), and a key
out of order there (`OutOfOrder`), or one outside its range, means the bucket is listed
again the plain way, page after page, in whatever order the server has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from functools import partial

from deployer.model import RemoteObject

PAGE = 1000
MOST_RANGES = 32  # above 32,000 keys, ranges grow (several pages each) rather than threads


class OutOfOrder(Exception):
    """A range's page was not in UTF-8 binary order: the split cannot be trusted."""


def check_order(previous: str, keys: Sequence[str]) -> str:
    """Raise `OutOfOrder` unless `keys` strictly increase after `previous`; returns the
    last key (for the next page)."""
    for key in keys:
        if previous and key <= previous:
            raise OutOfOrder(key)
        previous = key
    return previous


Range = tuple[str, str | None]  # keys k with after < k <= until ("" and None: no bound)
ListRange = Callable[[str, str | None], list[RemoteObject]]


def ranges(keys: Sequence[str], *, page: int = PAGE, most: int = MOST_RANGES) -> list[Range]:
    """Split the key space at every `page`-th key of `keys` (sorted), in at most `most`
    ranges: the first has no lower bound, the last no upper bound."""
    per_range = max(page, -(-len(keys) // most))
    bounds = [keys[i - 1] for i in range(per_range, len(keys), per_range)]
    lowers = ["", *bounds]
    uppers: list[str | None] = [*bounds, None]
    return list(zip(lowers, uppers, strict=True))


def in_order(parts: Sequence[list[RemoteObject]], split: Sequence[Range]) -> bool:
    """Each range's keys are strictly increasing and inside the range."""
    for objects, (after, until) in zip(parts, split, strict=True):
        previous = after
        for obj in objects:
            if (previous and obj.key <= previous) or (until is not None and obj.key > until):
                return False
            previous = obj.key
    return True


class Listing:
    """Every range of a split listed at once (through `submit`, e.g. a pool's)."""

    def __init__(
        self,
        list_range: ListRange,
        keys: Sequence[str],
        submit: Callable[[Callable[[], list[RemoteObject]]], Future[list[RemoteObject]]],
        *,
        page: int = PAGE,
        most: int = MOST_RANGES,
    ) -> None:
        self.list_range = list_range
        self.split = ranges(keys, page=page, most=most)
        self.futures = [submit(partial(list_range, after, until)) for after, until in self.split]

    def result(self) -> list[RemoteObject]:
        """The whole listing, in key order (waits for every range). Asked once: the
        ranges' lists are let go (the caller drains the result as it indexes it, and
        20,000 objects held twice are ~4.6 MB)."""
        futures, self.futures = self.futures, []
        try:
            parts = [future.result() for future in futures]
        except OutOfOrder:
            return self.list_range("", None)
        finally:
            for future in futures:
                future.cancel()
            del futures
        if len(parts) > 1 and not in_order(parts, self.split):
            return self.list_range("", None)
        return [obj for part in parts for obj in part]

    def cancel(self) -> None:
        for future in self.futures:
            future.cancel()
