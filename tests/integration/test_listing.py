"""The parallel listing against real servers (SeaweedFS, rclone serve s3), on both request
paths: ranges from StartAfter to an upper bound, and their union is the bucket."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from deployer import listing
from devtools.servers import Server
from tests.integration.test_s3store import make_store

# Byte order differs from naive folder order here: "a.txt" < "a/b" ('.' < '/'), and
# "é" sorts after every ASCII key.
KEYS = sorted(
    [f"app/f{i:02d}.txt" for i in range(12)]
    + ["app/a.txt", "app/a/b", "app/a/c.txt", "app/é.html", "app/z", "app/a-b"]
)


@pytest.fixture(params=["seaweed", "rclone"])
def server(request: pytest.FixtureRequest) -> Server:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.mark.parametrize("wire", [True, False], ids=["wire", "botocore"])
def test_ranges_list_the_bucket_once(server: Server, tmp_path: Path, wire: bool) -> None:
    """Local keys are half of the bucket's (pages of 3, ranges of 3 local keys): every
    key, those only in the bucket too, is listed exactly once and in order; one range
    alone stops at its upper bound."""
    bucket = f"ls-{uuid.uuid4().hex[:16]}"
    client = server.client("s3")
    client.create_bucket(Bucket=bucket)
    for key in [*KEYS, "other.txt"]:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    store = make_store(server, bucket, tmp_path, wire=wire, page_size=3)
    local = KEYS[::2]
    with ThreadPoolExecutor(4) as pool:
        pending = listing.Listing(
            lambda after, until: store.list_objects("app/", after, until),
            pool.submit(store.first_page, "app/"),
            pool.submit,
            page=3,
        )
        pending.start(local)
        got = [o.key for o in pending.result()]
    # Every key once; SeaweedFS's own order (folders first) came back through the plain
    # listing, rclone's is byte order.
    assert sorted(got) == KEYS and len(set(got)) == len(got)
    split = listing.ranges(local, page=3)
    assert len(split) == 3
    after, until = split[1]
    try:
        middle = [o.key for o in store.list_objects("app/", after, until or "")]
    except listing.OutOfOrder:
        middle = None
    if server.name == "seaweedfs":  # folders first: the plain listing, in its order
        assert got != KEYS
        return
    assert got == KEYS
    assert middle == [k for k in KEYS if after < k <= (until or "")]
