"""Multipart uploads through s3wire against real servers (SeaweedFS, rclone serve s3), with
the threshold and part size lowered to S3's 5 MiB minimum: what is sent (Content-MD5 on
every part, our headers and md5 metadata), what a file changed mid-upload does, and that a
failed upload leaves no parts behind."""

from __future__ import annotations

import base64
import hashlib
import os
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from deployer import deploy, s3wire
from deployer.model import Outcome
from deployer.s3 import S3Error, S3Store
from devtools.faultproxy import FaultKind, FaultProxy, Faults
from devtools.servers import Server
from tests.integration.test_s3store import (
    PNG,
    local_file,
    make_settings,
    make_store,
    multipart_etag,
)
from tests.integration.test_wire_failures import Scripted, s3_error, store_at
from tests.unit.test_deploy import FakeLog

MIB = 1024 * 1024
PART = 5 * MIB  # S3's smallest part, also the threshold here


def no_uploads_left(server: Server, bucket: str) -> bool:
    """ListMultipartUploads is empty: no upload (and none of its parts) is kept."""
    return not server.client("s3").list_multipart_uploads(Bucket=bucket).get("Uploads")


def keys_of(server: Server, bucket: str) -> list[str]:
    listed = server.client("s3").list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_every_part_carries_its_content_md5_and_no_head_follows(
    seaweed: Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Create, 3 parts each with the base64 MD5 of its own bytes, Complete: 5 requests, no
    HEAD; our headers and md5 metadata go on CreateMultipartUpload."""
    signed: list[tuple[str, dict[str, str], dict[str, str]]] = []
    real_sign = s3wire.sign

    def signing(method: str, path: str, query: Any, headers: Any, **kwargs: Any) -> dict[str, str]:
        signed.append((method, dict(query), {k.lower(): v for k, v in headers.items()}))
        return real_sign(method, path, query, headers, **kwargs)

    monkeypatch.setattr(s3wire, "sign", signing)
    body = os.urandom(12 * MIB + 3)
    with FaultProxy(seaweed.endpoint) as proxy:
        store = make_store(
            seaweed, bucket, tmp_path, endpoint=proxy.url, multipart_threshold=PART, part_size=PART
        )
        file = local_file(tmp_path, "media/big.bin", body, headers=PNG)
        etag = store.put_file(file)
        requests = proxy.stats.requests
    assert etag == multipart_etag(body, 5 * MIB)
    assert dict(requests) == {"POST": 2, "PUT": 3}
    create = [h for m, q, h in signed if m == "POST" and "uploads" in q]
    assert len(create) == 1
    assert create[0]["content-type"] == PNG.content_type
    assert create[0]["cache-control"] == PNG.cache_control
    assert create[0]["x-amz-meta-md5"] == file.md5
    sent = {int(q["partNumber"]): h["content-md5"] for m, q, h in signed if m == "PUT"}
    assert sent == {
        n: base64.b64encode(hashlib.md5(body[(n - 1) * 5 * MIB : n * 5 * MIB]).digest()).decode()
        for n in (1, 2, 3)
    }


@pytest.mark.parametrize("server_name", ["seaweed", "rclone"])
@pytest.mark.parametrize("change", ["grown", "shrunk", "same size"])
def test_a_file_changed_mid_upload_fails_and_leaves_nothing(
    request: pytest.FixtureRequest, tmp_path: Path, server_name: str, change: str
) -> None:
    """The build rewrites the file after part 1 landed: the upload stops with the single
    PUT's "File changed during the deploy" error (another size: at the next part; the same
    size: when reading the last part shows the whole file's MD5 differs, before it is sent),
    the upload is aborted, and no object nor part is left."""
    server: Server = request.getfixturevalue(server_name)
    bucket = f"mp-{os.urandom(6).hex()}"
    server.client("s3").create_bucket(Bucket=bucket)
    body = os.urandom(12 * MIB)
    file = local_file(tmp_path, "media/big.bin", body)
    rewritten = {
        "grown": body + b"more",
        "shrunk": body[: 7 * MIB],
        "same size": body[: 6 * MIB] + bytes(6 * MIB),
    }[change]

    def rewrite_after_part_1(method: str, path: str, status: int, answer: bytes) -> bytes:
        if method == "PUT" and "partNumber=1&" in path:
            Path(file.path).write_bytes(rewritten)
        return answer

    with FaultProxy(server.endpoint, response_hook=rewrite_after_part_1) as proxy:
        # One part at a time (no helpers), so "after part 1" is a fixed point.
        store = make_store(
            server,
            bucket,
            tmp_path,
            endpoint=proxy.url,
            multipart_threshold=PART,
            part_size=PART,
            max_concurrency=1,
        )
        with pytest.raises(S3Error) as caught:
            store.put_file(file)
        requests = proxy.stats.requests
    assert caught.value.title == "File changed during the deploy"
    assert "Build the site completely before deploying" in str(caught.value)
    # Another size: found as part 2 is read; the same size: as the last part is read.
    assert requests["PUT"] == (2 if change == "same size" else 1)
    assert requests["POST"] == 1  # Create only: never Complete
    assert requests["DELETE"] == 1  # the abort
    assert no_uploads_left(server, bucket)
    assert keys_of(server, bucket) == []


class _DenySecondPart(FaultProxy):
    """The second part PUT to arrive is refused with 403 AccessDenied."""

    puts = 0

    def _decide(self, method: str, key: str) -> FaultKind | None:
        decided = super()._decide(method, key)
        if method == "PUT":
            with self._lock:
                self.puts += 1
                if self.puts == 2:
                    return "denied"
        return decided


@pytest.mark.parametrize("server_name", ["seaweed", "rclone"])
def test_a_refused_part_aborts_the_upload(
    request: pytest.FixtureRequest, tmp_path: Path, server_name: str
) -> None:
    """A part refused while others are in flight: the single PUT's access-denied error
    (naming `s3:PutObject`), once every part in flight ended the upload is aborted, and
    ListMultipartUploads is empty."""
    server: Server = request.getfixturevalue(server_name)
    bucket = f"mp-{os.urandom(6).hex()}"
    server.client("s3").create_bucket(Bucket=bucket)
    file = local_file(tmp_path, "media/big.bin", os.urandom(26 * MIB))
    with _DenySecondPart(server.endpoint, Faults()) as proxy:
        store = make_store(
            server, bucket, tmp_path, endpoint=proxy.url, multipart_threshold=PART, part_size=PART
        )
        with pytest.raises(S3Error) as caught:
            store.put_file(file)
        requests = proxy.stats.requests
    assert caught.value.short == "access denied"
    assert "`s3:PutObject`" in str(caught.value)
    assert requests["DELETE"] == 1 and requests["POST"] == 1
    assert no_uploads_left(server, bucket)
    assert keys_of(server, bucket) == []


class _NoCDN:
    def distribution(self, *args: object) -> Any:
        raise AssertionError("no distribution in this deploy")

    invalidate = wait = distribution


@pytest.mark.parametrize("server_name", ["seaweed", "rclone"])
def test_a_deploy_sends_large_files_in_parts_on_its_window(
    request: pytest.FixtureRequest, tmp_path: Path, server_name: str
) -> None:
    """A whole deploy (its window, its pool) with two 11 MiB files among small ones: the
    objects land intact with their headers and md5 metadata, nothing is left half-done, and
    the next deploy of the same folder uploads nothing (on SeaweedFS, invalidates nothing)."""
    server: Server = request.getfixturevalue(server_name)
    bucket = f"mp-{os.urandom(6).hex()}"
    server.client("s3").create_bucket(Bucket=bucket)
    settings = make_settings(tmp_path, server.endpoint).model_copy(update={"bucket": bucket})
    site = settings.source_dir
    bodies = {f"media/clip-{n}.mp4": os.urandom(11 * MIB) for n in range(2)}
    bodies |= {f"assets/app-{n}.js": f"console.log({n})".encode() for n in range(30)}
    for rel, body in bodies.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(body)

    def deploy_once() -> Outcome:
        store: S3Store = make_store(
            server, bucket, tmp_path, multipart_threshold=PART, part_size=PART
        )
        outcome = Outcome()
        deploy.run(settings, store, _NoCDN(), FakeLog(), outcome)
        return outcome

    first = deploy_once()
    assert not first.failed
    assert len(first.uploaded) == len(bodies) + 1  # and index.html
    client = server.client("s3")
    for n in range(2):
        got = client.get_object(Bucket=bucket, Key=f"media/clip-{n}.mp4")
        assert got["Body"].read() == bodies[f"media/clip-{n}.mp4"]
        assert got["ContentType"] == "video/mp4"
        assert {k.lower(): v for k, v in got["Metadata"].items()}["md5"] == hashlib.md5(
            bodies[f"media/clip-{n}.mp4"]
        ).hexdigest()
    assert no_uploads_left(server, bucket)
    second = deploy_once()
    assert second.uploaded == []
    if server.name == "seaweedfs":
        # The ETags recorded (from Complete's answers) are the listed ones: the record
        # vouches for the large files, so nothing is invalidated. rclone lists another
        # ETag than its Complete answer gave, so its second run HEADs them and
        # invalidates them once (the record then holds the listed ETag).
        assert second.plan is not None and second.plan.invalidate_keys == ()


def scripted_multipart(complete: list[bytes]) -> Any:
    """A scripted S3 for one multipart upload: Create, parts (each body read), then each
    CompleteMultipartUpload answered 200 with the next body of `complete`."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        handler.rfile.read(length)
        if handler.command == "POST" and handler.path.endswith("?uploads="):
            body = b"<InitiateMultipartUploadResult><UploadId>u-1</UploadId>"
            body += b"</InitiateMultipartUploadResult>"
            headers = {}
        elif handler.command == "PUT":
            body, headers = b"", {"ETag": f'"part-{len(handler.server.seen)}"'}  # type: ignore[attr-defined]
        elif handler.command == "POST":
            body, headers = complete.pop(0), {}
        elif handler.command == "DELETE":
            handler.send_response(204)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        else:
            s3_error(handler, 404, "NoSuchKey")
            return
        handler.send_response(200)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


ERROR_IN_200 = b"  \n  <Error><Code>{code}</Code><Message>m</Message></Error>"
DONE = b'<CompleteMultipartUploadResult><ETag>"feed-2"</ETag></CompleteMultipartUploadResult>'


def test_an_error_inside_completes_200_answer_is_retried(tmp_path: Path) -> None:
    """S3 can fail a CompleteMultipartUpload after its 200 status line (an `<Error>` body
    after keep-alive spaces): an InternalError so is retried, and the ETag of the answer
    that succeeds is returned, with no HEAD."""
    retried = ERROR_IN_200.replace(b"{code}", b"InternalError")
    with Scripted(scripted_multipart([retried, DONE])) as server:
        store = store_at(server.url, "site", tmp_path)
        store.multipart_threshold = store.part_size = 5 * MIB
        wire = store._fast_path()
        assert wire is not None
        wire.sleep = lambda seconds: None
        etag = store.put_file(local_file(tmp_path, "big.bin", os.urandom(6 * MIB)))
    assert etag == "feed-2"
    methods = [method for method, _ in server.seen]
    assert methods == ["POST", "PUT", "PUT", "POST", "POST"]


def test_a_refused_complete_aborts_the_upload(tmp_path: Path) -> None:
    """An error that is not retryable inside Complete's 200 answer (InvalidPart): an S3Error
    with that code, and the upload is aborted."""
    refused = ERROR_IN_200.replace(b"{code}", b"InvalidPart")
    with Scripted(scripted_multipart([refused])) as server:
        store = store_at(server.url, "site", tmp_path)
        store.multipart_threshold = store.part_size = 5 * MIB
        with pytest.raises(S3Error) as caught:
            store.put_file(local_file(tmp_path, "big.bin", os.urandom(6 * MIB)))
    assert caught.value.code == "InvalidPart"
    assert [method for method, _ in server.seen] == ["POST", "PUT", "PUT", "POST", "DELETE"]
    assert server.seen[-1][1].endswith("/site/big.bin?uploadId=u-1")
