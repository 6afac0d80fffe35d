"""Over a link with a round trip's delay (bench's delay relay in front of SeaweedFS):
requests made while connections are being opened ahead (`S3Store.prepare`) wait for
them instead of opening more, and the first answer's time on the wire is known."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from bench.relay import DelayRelay
from deployer.s3wire import Wire
from devtools.servers import Server
from tests.integration.test_s3store import local_file, make_store

ONE_WAY_S = 0.1  # a TCP connect takes one round trip: 0.2 s


def test_requests_wait_for_connections_being_opened(seaweed: Server, tmp_path: Path) -> None:
    bucket = f"cn-{uuid.uuid4().hex[:16]}"
    seaweed.client("s3").create_bucket(Bucket=bucket)
    host, port = seaweed.endpoint.removeprefix("http://").rsplit(":", 1)
    with DelayRelay(host, int(port), ONE_WAY_S) as relay:
        store = make_store(seaweed, bucket, tmp_path, endpoint=relay.url())
        wire = store._fast_path()
        assert isinstance(wire, Wire)
        assert store.link_time() is None  # nothing answered yet
        opening = [threading.Thread(target=store.prepare) for _ in range(6)]
        for thread in opening:
            thread.start()
        deadline = time.monotonic() + 5
        while wire._opening < 6 and time.monotonic() < deadline:  # all six are connecting
            time.sleep(0.005)
        files = [local_file(tmp_path, f"f{i}.html", f"<p>{i}</p>".encode()) for i in range(6)]
        etags: list[str] = []
        puts = [threading.Thread(target=lambda f=f: etags.append(store.put_file(f))) for f in files]
        for thread in [*puts]:
            thread.start()
        for thread in [*opening, *puts]:
            thread.join(timeout=30)
        assert len(etags) == 6 and all(etags)
        # Six connections in all: the PUTs used those being opened, none opened its own.
        assert relay.connections == 6
        # The first PUT's time on the wire: at least its answer's round trip (and what
        # was left of its connection's opening, which depends on when the thread ran).
        took = store.link_time()
        assert took is not None and took >= 2 * ONE_WAY_S * 0.9
        listed = {o.key for o in store.list_objects("")}
        assert listed == {f.key for f in files}


def test_the_first_answer_is_awaited_for_as_long_as_it_then_takes(
    seaweed: Server, tmp_path: Path
) -> None:
    """While the first request is on its way over a far link, `link_waited` counts up
    from when it was asked (the floor `ahead.while_listing` opens connections for), and
    the answer's `link_time` is at least what was waited; after it, nothing is awaited."""
    bucket = f"cn-{uuid.uuid4().hex[:16]}"
    seaweed.client("s3").create_bucket(Bucket=bucket)
    host, port = seaweed.endpoint.removeprefix("http://").rsplit(":", 1)
    with DelayRelay(host, int(port), ONE_WAY_S) as relay:
        store = make_store(seaweed, bucket, tmp_path, endpoint=relay.url())
        assert store._fast_path() is not None
        assert store.link_waited() is None  # nothing asked yet
        seen: list[float] = []
        listing = threading.Thread(target=store.first_page, args=("",))
        listing.start()
        while listing.is_alive():
            waited = store.link_waited()
            if waited is not None:
                seen.append(waited)
            time.sleep(0.01)
        listing.join()
        took = store.link_time()
        assert took is not None and seen
        assert seen == sorted(seen)  # it only grows while awaited
        assert 2 * ONE_WAY_S * 0.9 <= seen[-1] <= took  # a round trip at least, never more
        assert store.link_waited() is None  # answered
