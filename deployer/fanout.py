"""A call made for each of a few items at once, the results in the items' order.

For the CloudFront calls of a deploy with several distributions (`www` and the apex,
a preview and production): looking each one up, creating each invalidation and waiting
for each are one round trip for all instead of one per distribution. A single item is
called on the calling thread, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")

MOST = 16  # threads at most; CloudFront's own rate limits come long before


def each(fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R | Exception]:
    """`fn(item)` for every item at once: its result, or the exception it raised."""
    if len(items) <= 1:
        return [_called(fn, item) for item in items]
    with ThreadPoolExecutor(max_workers=min(len(items), MOST), thread_name_prefix="each") as pool:
        return list(pool.map(lambda item: _called(fn, item), items))


def _called(fn: Callable[[_T], _R], item: _T) -> _R | Exception:
    try:
        return fn(item)
    except Exception as err:  # handed back, in order, to the caller
        return err
