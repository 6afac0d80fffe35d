"""How many connections to open ahead of need, while the folder is hashed.

Each connection costs a TCP handshake, and with TLS two or three round trips more and the
CPU of a key exchange and a certificate check on both sides. Opened ahead, that cost is
paid while the folder is hashed instead of before the first uploads; opened for nothing,
it is pure waste: a deploy that sends nothing needs only the listing's connections.

So a few (`FIRST`) open at the start, for the handful of files a usual push changes, and
more only for uploads the bucket's first listing page makes certain: the local keys a
bucket listed whole (one page) lacks, up to the window's limit (which the first page may
have widened for a far bucket: `concurrency.Controller.seed`). That is decided once both
the walk's keys and the first page are known, whichever comes second. A bucket of more
than a page opens no more ahead: its ranges' connections are there for the uploads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from deployer.model import RemoteObject

FIRST = 8  # opened at the start: a usual push changes a few files


def certain_uploads(keys: Sequence[str], first_page: tuple[list[RemoteObject], bool]) -> int:
    """Local keys the bucket lacks, when its first page is the whole listing (else 0)."""
    objects, complete = first_page
    if not complete:
        return 0
    listed = {obj.key for obj in objects}
    return sum(1 for key in keys if key not in listed)


class Ahead:
    """Opens the connections beyond `FIRST` once both halves are known (thread-safe)."""

    def __init__(self, limit: Callable[[], int], open_one: Callable[[], object]) -> None:
        self.limit = limit  # the window's limit when decided
        self.open_one = open_one
        self._lock = threading.Lock()
        self._keys: Sequence[str] | None = None
        self._page: tuple[list[RemoteObject], bool] | None = None
        self._decided = False

    def walked(self, keys: Sequence[str]) -> None:
        self._decide(keys=keys)

    def listed(self, first_page: tuple[list[RemoteObject], bool]) -> None:
        self._decide(page=first_page)

    def _decide(
        self,
        *,
        keys: Sequence[str] | None = None,
        page: tuple[list[RemoteObject], bool] | None = None,
    ) -> None:
        with self._lock:
            self._keys = keys if keys is not None else self._keys
            self._page = page if page is not None else self._page
            if self._keys is None or self._page is None or self._decided:
                return
            self._decided = True
            more = min(self.limit(), certain_uploads(self._keys, self._page)) - FIRST
        for _ in range(more):
            self.open_one()
