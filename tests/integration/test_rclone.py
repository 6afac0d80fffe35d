"""The core deploy scenarios against a second S3 implementation: `rclone serve s3`.

rclone differs from AWS and SeaweedFS on purpose here: ETags unquoted in listings, a
multipart ETag without `-N` (the whole file's MD5), metadata keys returned Title-Case
(`Md5`), no `KeyCount` in an empty listing, keys URL-encoded in listings. Each scenario
runs the real entrypoint with `AWS_ENDPOINT_URL_S3` at rclone and CloudFront at moto.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.action import ActionResult, run_entrypoint
from devtools.servers import Server, create_distribution
from tests.integration.test_deploy import local_files
from tests.integration.test_faults import covers, invalidated_paths

RECORD = ".s3-cloudfront-deploy.json"
SITE: dict[str, bytes] = {
    "index.html": b"<!doctype html><title>home</title><link rel=stylesheet href=/css/site.css>",
    "docs/index.html": b"<!doctype html><title>docs</title>",
    "css/site.css": b"body { margin: 0 }\n",
    "js/app.js": b"console.log('v1')\n",
    "img/logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg"/>',
    "fonts/empty.woff2": b"",
    "docs/a b+c%20d.txt": b"odd name\n",
    "docs/\ud55c\uae00.html": b"<!doctype html><title>hangul</title>",
    "downloads/caf\u00e9 menu.pdf": b"%PDF-1.4 not really\n",
}


class Deployer:
    """Runs the action against one S3 server and moto (CloudFront) for one bucket."""

    def __init__(self, server: Server, moto: Server, root: Path) -> None:
        self.server, self.moto, self.root = server, moto, root
        self.bucket = f"rc-{secrets.token_hex(8)}"
        self.client = server.client("s3")
        self.client.create_bucket(Bucket=self.bucket)
        self.dist = create_distribution(moto, self.bucket)
        self.workspace = root / "ws"
        self.site = self.workspace / "site"
        self.runs = 0

    def write(self, files: dict[str, bytes]) -> None:
        for rel, body in files.items():
            path = self.site / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)

    def deploy(self, **inputs: str) -> ActionResult:
        self.runs += 1
        result = run_entrypoint(
            self.workspace,
            {
                "aws-access-key-id": self.server.access_key,
                "aws-secret-access-key": self.server.secret_key,
                "aws-region": "us-east-1",
                "bucket": self.bucket,
                "distribution-id": self.dist,
                "source-dir": "site",
                "invalidation-max-paths": "100",
                **inputs,
            },
            endpoints={"s3": self.server.endpoint, "cloudfront": self.moto.endpoint},
            runner_dir=self.root / f"runner-{self.runs}",
        )
        assert result.returncode == 0, result.describe()
        return result

    def remote(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key != RECORD:
                    out[key] = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return out

    def local(self) -> dict[str, bytes]:
        return local_files(self.site)

    def last_paths(self) -> list[str]:
        batches = invalidated_paths(self.moto, self.dist)
        return batches[-1] if batches else []

    def invalidation_count(self) -> int:
        return len(invalidated_paths(self.moto, self.dist))


@pytest.fixture
def rc(rclone: Server, moto_aws: Server, tmp_path: Path) -> Iterator[Deployer]:
    yield Deployer(rclone, moto_aws, tmp_path)


@pytest.fixture(params=["rclone", "seaweed"])
def any_s3(request: pytest.FixtureRequest, moto_aws: Server, tmp_path: Path) -> Deployer:
    """The same scenario on both implementations, side by side."""
    server: Server = request.getfixturevalue(request.param)
    return Deployer(server, moto_aws, tmp_path)


def uploaded(result: ActionResult) -> int:
    return int(result.outputs["uploaded-count"])


def test_empty_listing_has_no_keycount(rc: Deployer) -> None:
    """The deviation the cold deploy must survive is really there."""
    response = rc.client.list_objects_v2(Bucket=rc.bucket)
    assert "KeyCount" not in response and "Contents" not in response


def test_lifecycle(any_s3: Deployer) -> None:
    """Cold, touch, same-size edit, add+delete, headers only, record lost: each exact."""
    rc = any_s3
    rc.write(SITE)
    cold = rc.deploy()
    assert uploaded(cold) == len(SITE)
    assert rc.remote() == rc.local()
    assert cold.outputs["invalidation-id"] == ""  # all new: nothing cached to invalidate
    head = rc.client.head_object(Bucket=rc.bucket, Key="css/site.css")
    assert head["ContentType"].startswith("text/css")
    if rc.server.name == "rclone":
        assert "Md5" in head["Metadata"]  # the deviation: Title-Case metadata keys
    assert {k.lower(): v for k, v in head["Metadata"].items()}["md5"] == hashlib.md5(
        SITE["css/site.css"]
    ).hexdigest()

    # A fresh checkout: every mtime changes, nothing else.
    future = time.time() + 3600
    for path in rc.site.rglob("*"):
        os.utime(path, (future, future))
    touched = rc.deploy()
    assert uploaded(touched) == 0 and touched.outputs["invalidation-id"] == "", touched.describe()

    # A same-size edit.
    edited = b"console.log('v2')\n"
    assert len(edited) == len(SITE["js/app.js"])
    rc.write({"js/app.js": edited})
    same_size = rc.deploy()
    assert uploaded(same_size) == 1 and json.loads(same_size.outputs["changed-keys"]) == [
        "js/app.js"
    ]
    assert covers(rc.last_paths(), "/js/app.js")
    assert rc.remote() == rc.local()

    # Incremental: one new file, one changed page, two deletions (one with an odd name).
    rc.write({"docs/new.html": b"<!doctype html>new", "docs/index.html": b"<!doctype html>v2"})
    (rc.site / "img" / "logo.svg").unlink()
    (rc.site / "docs" / "a b+c%20d.txt").unlink()
    incremental = rc.deploy()
    assert incremental.outputs["deleted-count"] == "2", incremental.describe()
    assert uploaded(incremental) == 2
    assert rc.remote() == rc.local()
    paths = rc.last_paths()
    for url in ("/img/logo.svg", "/docs/index.html", "/docs/", "/docs/a%20b+c%2520d.txt"):
        assert covers(paths, url), paths
    assert not covers(paths, "/docs/new.html"), paths  # new: nothing cached

    # Headers only: a Cache-Control rule for CSS reaches S3 by copy, no bytes sent.
    rule = {"cache-control": "*.css: public, max-age=60"}
    headers = rc.deploy(**rule)
    assert uploaded(headers) == 1 and headers.outputs["uploaded-bytes"] == "0", headers.describe()
    head = rc.client.head_object(Bucket=rc.bucket, Key="css/site.css")
    assert head["CacheControl"] == "public, max-age=60"
    assert head["ContentType"].startswith("text/css")
    assert rc.remote() == rc.local()
    assert covers(rc.last_paths(), "/css/site.css")
    assert uploaded(rc.deploy(**rule)) == 0

    # The deploy record lost: HEAD (Title-Case `Md5` metadata) proves the content instead.
    rc.client.delete_object(Bucket=rc.bucket, Key=RECORD)
    before = rc.invalidation_count()
    no_record = rc.deploy(**rule)
    assert uploaded(no_record) == 0, no_record.describe()
    assert rc.invalidation_count() == before
    assert rc.client.head_object(Bucket=rc.bucket, Key=RECORD)["ContentLength"] > 0


def test_multipart_file_on_rclone(rc: Deployer) -> None:
    """Above the multipart threshold: rclone's ETag has no `-N`; no re-upload when unchanged."""
    from deployer.s3 import MULTIPART_THRESHOLD

    big = os.urandom(MULTIPART_THRESHOLD + 1024 * 1024)
    rc.write({"index.html": b"<!doctype html>", "media/video.mp4": big})
    cold = rc.deploy()
    assert uploaded(cold) == 2
    listed = rc.client.list_objects_v2(Bucket=rc.bucket, Prefix="media/")["Contents"][0]
    assert "-" not in listed["ETag"]  # the deviation: no part count
    got = rc.client.get_object(Bucket=rc.bucket, Key="media/video.mp4")["Body"].read()
    assert hashlib.md5(got).digest() == hashlib.md5(big).digest()
    assert uploaded(rc.deploy()) == 0

    rc.client.delete_object(Bucket=rc.bucket, Key=RECORD)  # and without the record
    assert uploaded(rc.deploy()) == 0
