"""The bucket listed in parallel: the key space split at local key boundaries.

ListObjectsV2 gives 1,000 keys per request, and each page needs the continuation token
of the one before: listing 20,000 keys one page after another is 20 round trips before
a deploy can tell what changed. But the local keys are known (the folder is walked
before it is hashed), and a bucket that a deploy keeps in step holds about the same
keys. So the key space is cut at every 1,000th local key and each range is listed at
the same time, from `StartAfter` its lower bound up to its upper bound: one round trip
when the bucket holds what the folder holds.

The first page (from the top, no bound) is asked before all that, as the deploy's first
request, while the folder is still being walked: it waits for nothing, and when it is the
whole listing (a first deploy, a bucket of fewer than 1,000 keys) it is the only LIST. When
it is not, the ranges cover what lies past its last key (the ranges of a walk that ended
before the page came back are listed at once, all but the first, whose keys the page
begins; what the page did not reach of it is listed after).

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
FirstPage = tuple[list[RemoteObject], bool]  # the first page, and whether it is all there is
Submit = Callable[[Callable[[], list[RemoteObject]]], Future[list[RemoteObject]]]


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
    """The bucket's first page, asked at once; then the ranges past it, listed together.

    `first` is the first ListObjectsV2 page, asked before the folder is walked (the first
    request waits for nothing): when it is the whole listing (a new or small bucket),
    nothing more is asked. `start(keys)` (the walk's keys) lists the rest in ranges: when
    the first page is back, the ranges past its last key; when it is not (the walk was
    faster than a round trip), every range but the first, and the first page's own range
    is finished, if it needs to be, in `result()`."""

    def __init__(
        self,
        list_range: ListRange,
        first: Future[FirstPage],
        submit: Submit,
        *,
        page: int = PAGE,
        most: int = MOST_RANGES,
    ) -> None:
        self.list_range, self.first, self.submit = list_range, first, submit
        self.page, self.most = page, most
        self.tasks: list[Range] = []
        self.futures: list[Future[list[RemoteObject]]] = []

    def start(self, keys: Sequence[str]) -> None:
        """List the ranges that the first page may not cover, cut at `keys` (sorted)."""
        split = ranges(keys, page=self.page, most=self.most)
        if not self.first.done() or self.first.exception() is not None:
            self.tasks = split[1:]
        else:
            objects, complete = self.first.result()
            self.tasks = [] if complete else past(split, objects[-1].key if objects else "")
        self.futures = [self.submit(partial(self.list_range, *task)) for task in self.tasks]

    def result(self) -> list[RemoteObject]:
        """The whole listing, in key order (waits for every range). Asked once: the
        ranges' lists are let go (the caller drains the result as it indexes it, and
        20,000 objects held twice are ~4.6 MB)."""
        futures, self.futures = self.futures, []
        try:
            objects, complete = self.first.result()
            if complete:
                return objects
            last = check_order("", [obj.key for obj in objects])
            tasks, parts = list(self.tasks), [future.result() for future in futures]
            begins = tasks[0][0] if tasks else None
            if begins is None or last < begins:  # between the first page and the ranges
                tasks.insert(0, (last, begins))
                parts.insert(0, self.list_range(last, begins))
            merged = _merged(objects, last, parts, tasks)
        except OutOfOrder:
            merged = None
        finally:
            for future in futures:
                future.cancel()
            del futures
        return self.list_range("", None) if merged is None else merged

    def cancel(self) -> None:
        self.first.cancel()
        for future in self.futures:
            future.cancel()


def past(split: Sequence[Range], last: str) -> list[Range]:
    """The ranges of `split` cut to the keys after `last` (those the first page did not
    reach)."""
    return [(max(after, last), until) for after, until in split if until is None or until > last]


def _merged(
    first: list[RemoteObject],
    last: str,
    parts: Sequence[list[RemoteObject]],
    split: Sequence[Range],
) -> list[RemoteObject] | None:
    """The first page, then the ranges' keys after it; None (list the plain way) when a
    range is out of order, or holds a key at or before `last` that the first page did
    not: the server's order is not byte order."""
    if not in_order(parts, split):
        return None
    merged = list(first)
    known: set[str] | None = None
    for part in parts:
        for obj in part:
            if obj.key > last:
                merged.append(obj)
                continue
            known = known if known is not None else {o.key for o in first}
            if obj.key not in known:
                return None
    return merged
