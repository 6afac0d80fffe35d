"""How many connections to open ahead of need, while the folder is hashed.

Each connection costs a TCP handshake, and with TLS two or three round trips more and the
CPU of a key exchange and a certificate check on both sides. Opened ahead, that cost is
paid while the folder is hashed instead of before the first uploads; opened for nothing,
it is pure waste: a deploy that sends nothing needs only the listing's connections.

So a few (`FIRST`) open at the start, for the handful of files a usual push changes, and
more only for uploads the bucket's first listing page makes certain: the local keys a
bucket listed whole (one page) lacks. That is decided once both the walk's keys and the
first page are known, whichever comes second, and again whenever the window moves: as
many as the window reaches (`concurrency.Window.reach`: its limit, or the one it doubles
to if this round shows a gain; the first page may have widened it for a far bucket,
`concurrency.Controller.seed`), never more than the certain uploads. The doubled window's
requests then find their connections open: on a far link a request on a new connection
takes two round trips instead of one, and the round after a doubling is the one that
judges it, so each doubling would otherwise cost a round trip more (measured at 180 ms
round trips: 1,000 files, see BENCHMARKS.md). A bucket of more than a page opens no more
ahead: its ranges' connections are there for the uploads.

On a far link the first page is long on its way, and connections opened only when it
comes make the first uploads wait a round trip more for theirs (two or three with TLS).
So while it is awaited (`while_listing`), the time it has taken so far says how wide the
window will at least start (`concurrency.Controller.floor`: the first answer takes at
least that long, and `seed` sizes the window from it), and once that is more than
`concurrency.INITIAL`, as many connections open as that floor, never more than the
local files. A nearby bucket answers before the first step (32 ms): nothing opens. A far
bucket that needs nothing opens them for nothing: at most one per local file, up to the
window's cap, while the deploy is waiting for the page anyway (measured: BENCHMARKS.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from deployer import concurrency
from deployer.model import RemoteObject

FIRST = 8  # opened at the start: a usual push changes a few files
POLL_S = 0.002  # how often `while_listing` looks for the first request to leave


def certain_uploads(keys: Sequence[str], first_page: tuple[list[RemoteObject], bool]) -> int:
    """Local keys the bucket lacks, when its first page is the whole listing (else 0)."""
    objects, complete = first_page
    if not complete:
        return 0
    listed = {obj.key for obj in objects}
    return sum(1 for key in keys if key not in listed)


class Ahead:
    """Opens the connections beyond `FIRST`: once both halves are known, then each time the
    window moves (thread-safe)."""

    def __init__(
        self,
        reach: Callable[[], int],
        open_one: Callable[[], object],
        open_waiting: Callable[[], object] | None = None,
    ) -> None:
        self.reach = reach  # the most requests the window may soon have in flight
        self.open_one = open_one
        # How the connections opened while the first page is awaited are opened (default
        # `open_one`): the deploy does not wait for them to finish (see `while_listing`).
        self.open_waiting = open_waiting or open_one
        self._lock = threading.Lock()
        self._keys: Sequence[str] | None = None
        self._page: tuple[list[RemoteObject], bool] | None = None
        self._certain: int | None = None  # uploads the first page makes certain, once known
        self._floor = 0  # while the first page is awaited: the window's least start
        self._asked = FIRST  # connections asked for so far (`FIRST` by the deploy)

    def walked(self, keys: Sequence[str]) -> None:
        self._decide(keys=keys)

    def listed(self, first_page: tuple[list[RemoteObject], bool]) -> None:
        self._decide(page=first_page)

    def moved(self) -> None:
        """The window's limit moved: open what its new reach needs, if anything."""
        self._decide()

    def waiting(self, floor: int) -> None:
        """The first page is still on its way and the window will start at `floor` or
        more: open that many, within the local files once the walk has found them."""
        self._decide(floor=floor)

    def _decide(
        self,
        *,
        keys: Sequence[str] | None = None,
        page: tuple[list[RemoteObject], bool] | None = None,
        floor: int = 0,
    ) -> None:
        with self._lock:
            if self._certain is None:
                self._keys = keys if keys is not None else self._keys
                self._page = page if page is not None else self._page
                self._floor = max(self._floor, floor)
                if self._keys is None:
                    return
                if self._page is None:  # awaited: open for the floor, if any
                    more = min(self._floor, len(self._keys)) - self._asked
                    self._asked += max(0, more)
                    self._open(more, self.open_waiting)
                    return
                self._certain = certain_uploads(self._keys, self._page)
                self._keys = self._page = None  # not held for the rest of the deploy
            more = min(self.reach(), self._certain) - self._asked
            self._asked += max(0, more)
        self._open(more, self.open_one)

    @staticmethod
    def _open(count: int, open_one: Callable[[], object]) -> None:
        for _ in range(count):
            try:
                open_one()
            except RuntimeError:  # the deploy's pool has shut down: no request is left
                return


def while_listing(
    opening: Ahead,
    waited: Callable[[], float | None],
    floor: Callable[[float], int],
    listed: threading.Event,
) -> None:
    """Until `listed` is set (the first page came, or failed): each time the first
    answer's wait (`waited`: seconds, None before the request leaves) crosses a step of
    the window's seed, tell `opening` the window's least start (`floor`), once it is more
    than `concurrency.INITIAL`. Runs on a thread of its own; sleeps between steps."""
    while not listed.is_set():
        so_far = waited()
        if so_far is None:  # the request has not left yet
            listed.wait(POLL_S)
            continue
        least = floor(so_far)
        if least > concurrency.INITIAL:
            opening.waiting(least)
        step = concurrency.next_seed_s(so_far)
        if step is None:
            return  # at the cap: nothing more to open for
        listed.wait(max(step - so_far, POLL_S))
