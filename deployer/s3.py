"""The only module that talks to S3: `S3Store`, which implements `deploy.Store`.

Listing, single PUTs, multipart uploads, the deploy record and deletions go through
`s3wire` (our own signed requests, a quarter of botocore's CPU); HEAD and CopyObject,
and everything behind an HTTP proxy, through botocore's client, made on first use.

Tolerant of S3-compatible servers: ETags with or without quotes (rclone lists
them bare), a missing `KeyCount`, metadata keys in any case (rclone returns
`Md5`), a CopyObject answer without an ETag. Every error of either path becomes a
`DeployError` that names the input or IAM permission to fix, never a secret.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PaginationError,
    PartialCredentialsError,
    ReadTimeoutError,
    SSLError,
)

from deployer import __version__, endpoints, parts
from deployer.awsconfig import BlankCABundleError, CABundle, ca_bundle
from deployer.concurrency import note_connect, note_retry
from deployer.endpoints import MULTIPART_CONCURRENCY
from deployer.errors import CredentialsError, DeployError, RemoteError
from deployer.listing import check_order
from deployer.model import Headers, LocalFile, ObjectState, RemoteObject
from deployer.retries import RETRIES
from deployer.s3wire import (
    REDIRECT_STATUSES,
    BodyChangedError,
    ChunkReader,
    CredentialSource,
    ExactReader,
    RepeatedTokenError,
    Target,
    Wire,
    WireCABundleError,
    WireCertificateError,
    WireConnectionError,
    WireError,
    WireProtocolError,
    host_port,
    is_region_redirect,
    is_retryable,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from deployer.record import Encoded

PAGE_SIZE = 1000
DELETE_BATCH = 1000
# Files at or above this size go multipart: parts in parallel on the deploy's window
# (`parts.py`), through s3wire. Measured with `bench/multipart.py` (one file to SeaweedFS,
# 2 cores, best of 3; BENCHMARKS.md "Large files"): through the delay relay (80 and 180 ms
# round trips) one streamed PUT was faster at every size tried (32-256 MiB), 80 MiB 0.78
# vs 1.18 s in parts at 80 ms, 200 MiB 1.91 vs 2.51 s, and on loopback up to 200 MiB
# (1.51 vs 1.97 s): parts cost two round trips more (Create, Complete) and a second and
# third MD5 pass (a part's Content-MD5, the whole file checked against the scan), ~0.9 s
# more CPU per 200 MiB. With each connection
# capped, as a TCP window caps one stream over a long round trip (relay `rate`), parts
# won: 50 MiB/s at 80 ms, 80 MiB 1.32 vs 1.80 s, 200 MiB 2.37 vs 4.20 s; 22 MiB/s at 180
# ms, 80 MiB 1.71 vs 4.03 s. In a whole site (400 small files, two of 80 MiB, `bench/wan.py
# --scenarios large`) one PUT each was faster with and without a 50 MiB/s cap (3.37-3.42 s
# vs 3.94-4.10 s): the big PUTs run while the small files go. So 200 MiB (rclone's
# `upload_cutoff`) stays: one PUT where parts cost most without a cap, parts where they
# gain most with one (and S3 refuses one PUT above 5 GiB).
MULTIPART_THRESHOLD = 200 * 1024 * 1024
# Files up to this size are read into memory and sent as bytes (see `put_file`).
SMALL_BODY = 1024 * 1024
COPY_LIMIT = 5 * 1024**3  # CopyObject's largest source; above it, send the bytes again
META_MD5 = "md5"
# S3's answers to a request signed at a time too far from its own (403 or 400).
CLOCK_CODES = frozenset({"RequestTimeTooSkewed", "RequestExpired"})
_Row = tuple[str, int, str | None]  # one listed object: key, size, ETag as sent
RECORD_CONTENT_TYPE = "application/json"
RECORD_CACHE_CONTROL = "no-store"


class S3Error(RemoteError):
    """A failed S3 request; `short` is a one-line reason for per-file reports."""

    def __init__(
        self, message: str, *, short: str, code: str = "", title: str | None = None
    ) -> None:
        super().__init__(message, title=title)
        self.short = short
        self.code = code


class ReadDenied(S3Error):
    """Reading an object (GetObject/HeadObject) was denied; callers may degrade to a warning."""


def normalize_etag(etag: str | None) -> str:
    """`"ABC"` or `ABC` -> `abc` (ETags are compared without quotes, lower case)."""
    return (etag or "").strip().strip('"').lower()


def _md5_b64(hex_md5: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_md5)).decode("ascii")


def _add_content_md5(params: dict[str, Any], **_: Any) -> None:
    """DeleteObjects: also send `Content-MD5`.

    botocore now sends only a CRC32 checksum for operations that require one;
    several S3-compatible servers still insist on `Content-MD5` for DeleteObjects.
    """
    body = params.get("body")
    if isinstance(body, bytes) and "Content-MD5" not in params["headers"]:
        digest = hashlib.md5(body, usedforsecurity=False).digest()
        params["headers"]["Content-MD5"] = base64.b64encode(digest).decode("ascii")


def _meta_md5(metadata: dict[str, str] | None) -> str | None:
    for name, value in (metadata or {}).items():
        if name.lower() == META_MD5 and value:
            text = value.strip().lower()
            if len(text) == 32 and all(ch in "0123456789abcdef" for ch in text):
                return text
    return None


def _put_headers(content_type: str, cache_control: str, md5: str) -> dict[str, str]:
    """The headers of a PutObject through `s3wire`: ours, Content-MD5 and our md5 metadata."""
    return {
        "Content-Type": content_type,
        "Cache-Control": cache_control,
        "Content-MD5": _md5_b64(md5),
        f"x-amz-meta-{META_MD5}": md5,
    }


def _closing(body: BinaryIO | bytes) -> AbstractContextManager[Any]:
    return nullcontext() if isinstance(body, bytes) else body


def _endpoint_host(client: S3Client) -> str:
    """The endpoint's host for messages, without any user:password part."""
    url = client.meta.endpoint_url
    return f"{urlsplit(url).scheme}://{host_port(url) or '?'}"


def make_wire(target: Target, credentials: CredentialSource) -> Wire | None:
    """An `s3wire.Wire` to `target`, unless an HTTP proxy is configured for it (botocore
    honours proxies, http.client does not: every request then stays on botocore)."""
    if endpoints.behind_proxy(target):
        return None
    wire = Wire(
        target,
        credentials,
        attempts=endpoints.TOTAL_ATTEMPTS,
        connect_timeout=endpoints.CONNECT_TIMEOUT_S,
        read_timeout=endpoints.READ_TIMEOUT_S,
        user_agent=f"s3-cloudfront-deploy/{__version__}",
        ca_file=_ca_bundle().path if target.scheme == "https" else None,
        on_retry=note_retry,
        on_connect=note_connect,
    )
    wire.on_retrying = RETRIES.note
    return wire


def _ca_bundle() -> CABundle:
    """The CA bundle botocore would use (`awsconfig.ca_bundle`, over the process
    environment botocore reads); a blank setting is an error naming it."""
    import os  # noqa: PLC0415

    try:
        return ca_bundle(os.environ)
    except BlankCABundleError as err:
        raise S3Error(
            f"{err.source} is set but empty, so there is no CA bundle to verify the S3 "
            "endpoint's certificate with (botocore refuses it too). Set it to the path of "
            "a PEM file of trusted certificates, or unset it to use the default bundle.",
            short="CA bundle setting empty",
            code="InvalidCABundle",
            title="CA bundle problem",
        ) from None


def _untrusted(endpoint: str, reason: str) -> S3Error:
    """The endpoint's certificate failed verification: which bundle, and how to fix it."""
    bundle = _ca_bundle()
    if bundle.source == "the default CA bundle":
        fix = (
            "If the endpoint uses a private certificate authority (MinIO or another "
            "self-hosted S3, or TLS inspection on a self-hosted runner), set "
            "`AWS_CA_BUNDLE` (or `ca_bundle` in the AWS config file, or "
            "`REQUESTS_CA_BUNDLE`) to the path of that authority's certificate (PEM)."
        )
    else:
        fix = (
            f"The certificates in `{bundle.path}` (from {bundle.source}) do not include the "
            "authority that signed it: point that setting at the PEM file of the right "
            "certificate authority."
        )
    return S3Error(
        f"The TLS certificate of the S3 endpoint {endpoint} is not trusted ({reason}); "
        f"nothing was sent to it and it was not retried. {fix} If the certificate is for "
        "another host name, check `endpoint-url`.",
        short="certificate not trusted",
        code="CertificateNotTrusted",
        title="Untrusted TLS certificate",
    )


class S3Store:
    """S3 operations for one bucket; one client shared by all worker threads.

    `client` may be a function that makes it: it is then called on first use, so a deploy
    whose listing and uploads go through `wire` never builds (nor imports) botocore's
    client. `wire`, when given, is used for listing, PUTs and multipart uploads; otherwise
    one is made on first use from the address botocore resolves (`_probe_target`) and
    `credentials`. `part_size` None sizes parts by `parts.preferred_part_size`.
    """

    def __init__(
        self,
        client: S3Client | Callable[[], S3Client],
        bucket: str,
        *,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int | None = None,
        max_concurrency: int = MULTIPART_CONCURRENCY,
        page_size: int = PAGE_SIZE,
        delete_batch: int = DELETE_BATCH,
        credentials: CredentialSource | None = None,
        wire: Wire | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self._client: S3Client | None = None
        self._make_client = client if callable(client) else None
        if not callable(client):
            self._install_client(client)
        self._client_lock = threading.Lock()
        self.credentials = credentials
        self.warn = warn
        self._wire = self._watched(wire)
        self._wire_decided = wire is not None
        self._wire_lock = threading.Lock()
        self.bucket = bucket
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.max_concurrency = max_concurrency
        self.page_size = page_size
        self.delete_batch = delete_batch
        # Without the wire, one large file at a time goes multipart through s3transfer (its
        # parts in parallel), so botocore's connections stay within workers +
        # max_concurrency (see aws.py). Through the wire, parts take slots of the deploy's
        # window like any request (`parts.py`); outside a deploy, `max_concurrency` at once.
        self._multipart_lock = threading.Lock()

    @property
    def client(self) -> S3Client:
        """botocore's S3 client, made on first use when a factory was given."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    assert self._make_client is not None
                    self._install_client(self._make_client())
        assert self._client is not None
        return self._client

    def _install_client(self, client: S3Client) -> None:
        client.meta.events.register(
            "before-call.s3.DeleteObjects",
            _add_content_md5,
            unique_id="s3-cloudfront-deploy-delete-md5",
        )
        self._client = client

    # -- reads -----------------------------------------------------------------------------

    def list_objects(
        self, prefix: str, after: str = "", until: str | None = None
    ) -> list[RemoteObject]:
        """The objects under `prefix` whose key is after `after` and at most `until` (no
        bound when empty / None): ListObjectsV2 from `StartAfter`, 1000 per page, pages
        read until one passes `until`. With a bound, each page must be in UTF-8 binary
        order, else `listing.OutOfOrder` (see `listing.py`)."""
        objects: list[RemoteObject] = []
        ranged = bool(after) or until is not None
        last = after
        with self._errors("ListObjectsV2", prefix + "*"):
            for rows, _ in self._pages(prefix, after):
                if ranged:
                    last = check_order(last, [key for key, _, _ in rows])
                for key, size, etag in rows:
                    if until is not None and key > until:
                        return objects
                    objects.append(RemoteObject(key=key, size=size, etag=normalize_etag(etag)))
                if _reached(objects, until):
                    return objects  # no page more: its keys would all be past `until`
        return objects

    def first_page(self, prefix: str) -> tuple[list[RemoteObject], bool]:
        """The first ListObjectsV2 page under `prefix`, and whether it is the whole listing."""
        with self._errors("ListObjectsV2", prefix + "*"):
            for rows, more in self._pages(prefix, ""):
                objects = [
                    RemoteObject(key, size, normalize_etag(etag)) for key, size, etag in rows
                ]
                return objects, not more
        return [], True

    def _pages(self, prefix: str, after: str) -> Iterator[tuple[Sequence[_Row], bool]]:
        """ListObjectsV2 pages from `StartAfter` `after`, on the wire or through botocore:
        (key, size, ETag as sent) per object, and whether more pages follow. A page is
        asked only when the one before has been used."""
        wire = self._fast_path()
        if wire is not None:
            for page in wire.list_objects(prefix, self.page_size, start_after=after):
                yield page.objects, page.next_token is not None
            return
        paginator = self.client.get_paginator("list_objects_v2")
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "PaginationConfig": {"PageSize": self.page_size},
        }
        if prefix:
            kwargs["Prefix"] = prefix
        if after:
            kwargs["StartAfter"] = after
        for answer in paginator.paginate(**kwargs):
            rows = [
                (str(item["Key"]), int(item.get("Size", 0) or 0), item.get("ETag"))
                for item in answer.get("Contents", []) or []
                if item.get("Key") is not None
            ]
            yield rows, bool(answer.get("IsTruncated"))

    def prepare(self) -> None:
        """Open one connection of the wire ahead of need (TCP and TLS handshakes done
        while the folder is hashed); botocore's connections open when first used."""
        wire = self._fast_path()
        if wire is not None:
            wire.prepare()

    def link_time(self) -> float | None:
        """Seconds the first answered request took on the wire, its connection opened
        for it: about two round trips (three or four with TLS); None without the wire
        or before any answer. The time on the wire alone: on loopback the whole call,
        Python's set-up and the walk holding the GIL included, took 80 ms."""
        wire = self._fast_path()
        return wire.first_answer_s if wire is not None else None

    def link_waited(self) -> float | None:
        """Seconds the first answer on the wire has been awaited so far (`link_time` will
        be at least that); None before the first request, once answered, or without the
        wire."""
        wire = self._wire if self._wire_decided else None  # not decided here
        return wire.waited_s(time.monotonic()) if wire is not None else None

    def head(self, key: str) -> ObjectState | None:
        """ETag, our `md5` metadata and the headers of one object; None when it is gone."""
        with self._errors("HeadObject", key, missing_ok=True) as missing:
            resp = self.client.head_object(Bucket=self.bucket, Key=key)
        if missing:
            return None
        headers = Headers(
            content_type=resp.get("ContentType", "") or "",
            cache_control=resp.get("CacheControl", "") or "",
        )
        return ObjectState(
            etag=normalize_etag(resp.get("ETag")),
            md5=_meta_md5(resp.get("Metadata")),
            headers=headers,
        )

    def get_record(self, key: str) -> bytes | None:
        """The deploy record's bytes, or None when there is none yet."""
        wire = self._fast_path()
        with self._errors("GetObject", key, missing_ok=True) as missing:
            if wire is not None:
                body = wire.get_object(key)
            else:
                resp = self.client.get_object(Bucket=self.bucket, Key=key)
                body = resp["Body"].read()
        if missing:
            return None
        return body

    # -- writes ----------------------------------------------------------------------------

    def put_record(self, key: str, body: Encoded) -> None:
        """Write the deploy record; through `s3wire` it is streamed as it is encoded."""
        wire = self._fast_path()
        with self._errors("PutObject", key):
            if wire is not None:
                headers = _put_headers(RECORD_CONTENT_TYPE, RECORD_CACHE_CONTROL, body.md5)
                wire.put(key, lambda: ChunkReader(body.chunks()), body.size, headers)
                return
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body.body(),
                ContentType=RECORD_CONTENT_TYPE,
                CacheControl=RECORD_CACHE_CONTROL,
                ContentMD5=_md5_b64(body.md5),
                Metadata={META_MD5: body.md5},
            )

    def put_file(self, file: LocalFile, lanes: parts.Lanes | None = None) -> str:
        """Upload one file with its headers and `md5` metadata; returns the new ETag.

        Single PUTs carry `Content-MD5`, so the server rejects bytes that changed in
        flight (or a file edited since it was hashed). Large files go multipart, each
        part with its own `Content-MD5`, on `lanes` (the deploy's window; without it, a
        few threads of their own: `parts.own_lanes`).
        """
        if file.size >= self.multipart_threshold:
            wire = self._fast_path()
            if wire is None:
                return self._put_multipart(file)
            if lanes is not None:
                return self._put_parts(wire, file, lanes)
            with parts.own_lanes(self.max_concurrency - 1) as own:
                return self._put_parts(wire, file, own)
        wire = self._fast_path()
        if wire is not None:
            return self._put_wire(wire, file)
        # Small files go as bytes, not a file object: botocore sends `Expect: 100-continue`
        # (and waits a round trip for the answer) for every file-like body, whatever its size.
        try:
            body: BinaryIO | bytes = (
                _read_bytes(file) if file.size <= SMALL_BODY else Path(file.path).open("rb")  # noqa: SIM115
            )
        except OSError as err:
            raise _unreadable(file, err) from None
        if isinstance(body, bytes) and len(body) != file.size:
            raise _changed(file, len(body))
        with _closing(body), self._errors("PutObject", file.key):
            resp = self.client.put_object(
                Bucket=self.bucket,
                Key=file.key,
                Body=body,
                ContentType=file.headers.content_type,
                CacheControl=file.headers.cache_control,
                ContentMD5=_md5_b64(file.md5),
                Metadata={META_MD5: file.md5},
            )
        return normalize_etag(resp.get("ETag")) or self._etag_of(file.key)

    def _put_wire(self, wire: Wire, file: LocalFile) -> str:
        """The same PutObject as above, through `s3wire` (a quarter of botocore's CPU)."""
        headers = _put_headers(file.headers.content_type, file.headers.cache_control, file.md5)
        path = file.path

        def opener() -> ExactReader:
            # Exactly the hashed size, or BodyChangedError; closed by the wire after each attempt.
            return ExactReader(Path(path).open("rb"), file.size)

        try:
            body = _read_bytes(file) if file.size <= SMALL_BODY else opener
            with self._errors("PutObject", file.key):
                etag = wire.put(file.key, body, file.size, headers)
        except OSError as err:  # network errors arrive as WireConnectionError: this is the file
            raise _unreadable(file, err) from None
        except BodyChangedError as err:
            raise _changed(file, err.found) from None
        return normalize_etag(etag) or self._etag_of(file.key)

    def _fast_path(self) -> Wire | None:
        """The `s3wire` path for listing and uploads, decided once: the `wire` given,
        else one to where botocore sends this bucket's requests. None (botocore for
        everything) behind an HTTP proxy, with no credentials (botocore then raises its
        own clear error), or when botocore does not sign with Signature Version 4."""
        with self._wire_lock:
            if not self._wire_decided:
                if self.credentials is not None:
                    target = _probe_target(self.client, self.bucket)
                    if target is not None:
                        self._wire = self._watched(make_wire(target, self.credentials))
                self._wire_decided = True
            return self._wire

    def _watched(self, wire: Wire | None) -> Wire | None:
        """`wire`, telling `warn` when S3 redirects it to the bucket's real region."""
        if wire is not None:
            wire.on_redirect = self._redirected
        return wire

    def _redirected(self, configured: str, actual: str) -> None:
        if self.warn is not None:
            self.warn(
                f"The bucket `{self.bucket}` is in the region `{actual}`, not `{configured}` "
                f"(`aws-region`): S3 redirected the requests there, at the cost of an extra "
                f"request on every run. Set `aws-region: {actual}`."
            )

    def _endpoint_text(self) -> str:
        """The endpoint for messages (scheme and host, never a user:password part)."""
        if self._wire is not None:
            return f"{self._wire.target.scheme}://{self._wire.target.netloc}"
        return _endpoint_host(self.client)

    def copy_headers(self, file: LocalFile) -> str:
        """Replace an object's headers without sending its bytes (CopyObject onto itself)."""
        if file.size > COPY_LIMIT:
            return self.put_file(file)
        with self._errors("CopyObject", file.key):
            resp = self.client.copy_object(
                Bucket=self.bucket,
                Key=file.key,
                CopySource={"Bucket": self.bucket, "Key": file.key},
                MetadataDirective="REPLACE",
                ContentType=file.headers.content_type,
                CacheControl=file.headers.cache_control,
                Metadata={META_MD5: file.md5},
            )
        etag = normalize_etag((resp.get("CopyObjectResult") or {}).get("ETag"))
        return etag or self._etag_of(file.key)

    def delete(self, keys: Sequence[str]) -> list[tuple[str, str]]:
        """Delete keys (DeleteObjects, Quiet, 1000 per request). Returns (key, reason) failures."""
        failures: list[tuple[str, str]] = []
        wire = self._fast_path()
        for start in range(0, len(keys), self.delete_batch):
            batch = keys[start : start + self.delete_batch]
            if wire is not None:
                with self._errors("DeleteObjects", batch[0] if len(batch) == 1 else "*"):
                    failed = wire.delete_objects(batch)
                failures.extend((key, _short_code(code)) for key, code in failed)
                continue
            with self._errors("DeleteObjects", batch[0] if len(batch) == 1 else "*"):
                resp = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            for item in resp.get("Errors", []) or []:
                code = item.get("Code", "") or "error"
                failures.append((item.get("Key", "?") or "?", _short_code(code)))
        return failures

    # -- helpers ---------------------------------------------------------------------------

    def _unreachable(self, operation: str, cause: str) -> S3Error:
        return S3Error(
            f"Could not connect to the S3 endpoint {self._endpoint_text()} "
            f"({cause}) during {operation}, even after retries. Check "
            "`endpoint-url` (or `AWS_ENDPOINT_URL_S3`) and `aws-region`, and that the "
            "runner can reach it.",
            short="could not connect",
            code=cause,
            title="S3 endpoint unreachable",
        )

    def _etag_of(self, key: str) -> str:
        state = self.head(key)
        return state.etag if state else ""

    def _put_parts(self, wire: Wire, file: LocalFile, lanes: parts.Lanes) -> str:
        """A multipart upload through `s3wire`, its parts sent on `lanes` (`parts.py`): our
        headers and `md5` metadata on CreateMultipartUpload, `Content-MD5` on every part,
        the ETag from CompleteMultipartUpload's answer, no HEAD (AWS and SeaweedFS
        list that same ETag; rclone lists the whole file's MD5 instead, so there the next
        run HEADs the object once and its record entry takes the listed ETag). On failure
        the upload is aborted (best effort) and the error is the one a single PUT raises
        for the same cause."""
        plan = parts.plan(file.size, self._part_size(file))
        headers = {
            "Content-Type": file.headers.content_type,
            "Cache-Control": file.headers.cache_control,
            f"x-amz-meta-{META_MD5}": file.md5,
        }
        with self._errors("CreateMultipartUpload", file.key):
            upload_id = wire.create_multipart(file.key, headers)

        def send(hashed: tuple[parts.Part, str]) -> str:
            part, content_md5 = hashed

            def opener() -> ExactReader:
                # The part's exact slice, or BodyChangedError; reopened for every attempt.
                return ExactReader(
                    Path(file.path).open("rb"), part.size, offset=part.offset, size=file.size
                )

            with self._errors("UploadPart", file.key):
                return wire.upload_part(
                    file.key, upload_id, part.number, opener, length=part.size, md5=content_md5
                )

        try:
            try:
                etags = parts.send_all(
                    plan, parts.InOrder(file.path, file.size, file.md5), send, lanes
                )
                with self._errors("CompleteMultipartUpload", file.key):
                    etag = wire.complete_multipart(file.key, upload_id, etags)
            except OSError as err:  # network errors arrive as S3Error: this is the file
                raise _unreadable(file, err) from None
            except BodyChangedError as err:
                raise _changed(file, err.found) from None
            except parts.ContentChangedError:
                raise _changed(file, file.size) from None
        except S3Error as err:
            if err.code == "NoSuchUpload":
                landed = self._landed(file, err)
                if landed is not None:
                    return landed
            self._abort(wire, file.key, upload_id)
            raise
        except BaseException:
            self._abort(wire, file.key, upload_id)
            raise
        return normalize_etag(etag) or self._etag_of(file.key)

    def _part_size(self, file: LocalFile) -> int:
        """`part_size` if given, else `parts.preferred_part_size`; within S3's rules."""
        preferred = self.part_size or parts.preferred_part_size(file.size)
        return parts.part_size_for(file.size, preferred)

    def _landed(self, file: LocalFile, err: S3Error) -> str | None:
        """After NoSuchUpload from a retried CompleteMultipartUpload whose first answer was
        lost: AWS answers success again, but MinIO and rclone answer NoSuchUpload although
        the object landed intact. Its ETag when a HEAD shows our bytes (`md5`), else None."""
        landed = self.head(file.key)
        if landed is None or landed.md5 != file.md5:
            return None
        return landed.etag

    def _abort(self, wire: Wire, key: str, upload_id: str) -> None:
        """AbortMultipartUpload, best effort: the original error is the one to report (a
        bucket lifecycle rule cleans up what is left, see README "Multipart leftovers")."""
        with suppress(Exception):  # best effort: the caller raises the error that matters
            wire.abort_multipart(key, upload_id)

    def _put_multipart(self, file: LocalFile) -> str:
        """Without the wire (behind an HTTP proxy, or no SigV4): parallel parts through
        s3transfer (a manager per large file: they are rare)."""
        from s3transfer.manager import TransferConfig, TransferManager  # noqa: PLC0415

        config = TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self._part_size(file),
            max_request_concurrency=self.max_concurrency,
        )
        extra = {
            "ContentType": file.headers.content_type,
            "CacheControl": file.headers.cache_control,
            "Metadata": {META_MD5: file.md5},
        }
        try:
            with (
                self._multipart_lock,
                TransferManager(self.client, config) as manager,
                self._errors("PutObject", file.key),
            ):
                try:
                    manager.upload(str(file.path), self.bucket, file.key, extra_args=extra).result()
                except OSError as err:
                    raise _unreadable(file, err) from None
        except S3Error as err:
            landed = self._landed(file, err) if err.code == "NoSuchUpload" else None
            if landed is None:
                raise
            return landed
        return self._etag_of(file.key)

    @contextmanager
    def _errors(
        self, operation: str, key: str, *, missing_ok: bool = False
    ) -> Iterator[list[bool]]:
        """Translate botocore errors; with `missing_ok`, a 404 sets the yielded flag instead."""
        missing: list[bool] = []
        try:
            yield missing
        except (ClientError, WireError) as err:
            if isinstance(err, WireError):
                code, status, region = err.code, err.status, err.region
            else:
                error = err.response.get("Error", {})
                code = str(error.get("Code", "") or "")
                meta = err.response.get("ResponseMetadata", {})
                status = int(meta.get("HTTPStatusCode", 0) or 0)
                headers = meta.get("HTTPHeaders", {}) or {}
                region = str(headers.get("x-amz-bucket-region") or error.get("Region") or "")
            if (
                missing_ok
                and (code in ("NoSuchKey", "404", "NotFound") or status == 404)
                and code != "NoSuchBucket"
            ):
                missing.append(True)
                return
            raise translate_client_error(
                operation,
                code,
                status,
                bucket=self.bucket,
                key=key,
                endpoint=self._endpoint_text(),
                region=region,
            ) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise CredentialsError(
                "No AWS credentials were found. Pass `aws-access-key-id` and "
                "`aws-secret-access-key` from repository secrets, or `role-to-assume` with "
                "`permissions: id-token: write`."
            ) from None
        except WireCertificateError as err:
            raise _untrusted(self._endpoint_text(), err.reason) from None
        except SSLError as err:
            found = re.search(r"certificate verify failed: ([^(\]]+)", str(err))
            if found is None:  # a TLS connection cut short, not a certificate problem
                raise _stopped_answering(operation, key, "SSLError", "connection lost") from None
            raise _untrusted(self._endpoint_text(), found.group(1).strip()) from None
        except WireCABundleError as err:
            bundle = _ca_bundle()
            raise S3Error(
                f"The CA bundle `{err.path}` (from {bundle.source}) cannot be used to verify "
                f"the S3 endpoint's certificate: {err.reason}. Point that setting at a "
                "readable PEM file of trusted certificates, or unset it to use the default "
                "bundle.",
                short="CA bundle unusable",
                code="InvalidCABundle",
                title="CA bundle problem",
            ) from None
        except WireConnectionError as err:
            if err.connected:
                raise _stopped_answering(
                    operation, key, err.cause_name, "connection lost"
                ) from None
            raise self._unreachable(operation, err.cause_name) from None
        except (EndpointConnectionError, ConnectTimeoutError) as err:
            raise self._unreachable(operation, type(err).__name__) from None
        except (RepeatedTokenError, PaginationError):
            raise S3Error(
                f"The S3 endpoint {self._endpoint_text()} answered {operation} of `{key}` "
                "with a continuation token it had already given, so the listing would never "
                "end; it was stopped and nothing was changed. This is a fault of the server "
                "at `endpoint-url`: upgrade it, or report it to its maintainers.",
                short="listing repeats itself",
                code="RepeatedContinuationToken",
                title="S3 listing never ends",
            ) from None
        except WireProtocolError as err:
            raise S3Error(
                f"The S3 endpoint {self._endpoint_text()} answered {operation} with "
                f"something S3 does not send: {err}. Check `endpoint-url` (it must be the "
                "S3 API's address, not a website or console URL).",
                short="not an S3 answer",
                code="WireProtocolError",
                title="Not an S3 endpoint",
            ) from None
        except (ReadTimeoutError, ConnectionClosedError) as err:
            short = "connection lost" if isinstance(err, ConnectionClosedError) else "timed out"
            raise _stopped_answering(operation, key, type(err).__name__, short) from None
        except BotoCoreError as err:
            raise S3Error(
                f"{operation} of `{key}` failed: {type(err).__name__}. Re-run the workflow; if "
                "it persists, check `endpoint-url` and `aws-region`.",
                short=type(err).__name__,
                code=type(err).__name__,
            ) from None


class _Probed(Exception):
    def __init__(self, url: str, authorization: str) -> None:
        super().__init__()
        self.url, self.authorization = url, authorization


PROBE_KEY = "s3-cloudfront-deploy-endpoint-probe"


def _probe_target(client: S3Client, bucket: str) -> Target | None:
    """Where botocore would send a request for an object of `bucket`, and how it signs:
    a HeadObject is prepared and signed as usual, then stopped before it is sent (no
    network). None when botocore cannot sign (no credentials) or not with SigV4."""

    def capture(request: Any, **_: Any) -> None:
        if request.url.split("?")[0].endswith("/" + PROBE_KEY):
            auth = request.headers.get("Authorization", "")  # botocore keeps it as bytes
            raise _Probed(request.url, auth.decode() if isinstance(auth, bytes) else str(auth))

    unique = f"s3-cloudfront-deploy-probe-{id(capture)}"
    client.meta.events.register_first("before-send.s3.HeadObject", capture, unique_id=unique)
    try:
        client.head_object(Bucket=bucket, Key=PROBE_KEY)
    except _Probed as probed:
        return Target.from_request(probed.url, probed.authorization, PROBE_KEY)
    except (BotoCoreError, ClientError):
        return None
    finally:
        client.meta.events.unregister("before-send.s3.HeadObject", unique_id=unique)
    return None


def _reached(objects: list[RemoteObject], until: str | None) -> bool:
    return until is not None and bool(objects) and objects[-1].key >= until


def _stopped_answering(operation: str, key: str, cause: str, short: str) -> S3Error:
    return S3Error(
        f"S3 stopped answering during {operation} of `{key}` ({cause}) after retries. "
        "Re-run the workflow; lower `concurrency` if it keeps happening.",
        short=short,
        code=cause,
    )


def _read_bytes(file: LocalFile) -> bytes:
    """The file's bytes, up to one more than the size it was hashed at (so a file that
    grew since shows it), in as few system calls as Python allows: open, read, close.

    `Path.read_bytes` makes seven or eight (two or three `fstat`, an `ioctl`, an `lseek`,
    a read to meet the end of the file). Each one lets go of the GIL, and with a window of
    up to 256 uploads every one is a hand-over between threads: 800 futex calls per file
    under `strace`, almost all of them the GIL."""
    fd = os.open(file.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        wanted = file.size + 1
        chunks: list[bytes] = []
        while wanted > 0:
            chunk = os.read(fd, wanted)
            if not chunk:
                break
            chunks.append(chunk)
            wanted -= len(chunk)
            if wanted == 1:  # all the bytes it was hashed with: a file ends short of a read
                break
        return b"".join(chunks)  # one chunk: that chunk itself, not a copy
    finally:
        os.close(fd)


def _unreadable(file: LocalFile, err: OSError) -> S3Error:
    return S3Error(
        f"Could not read `{file.path}` to upload it as `{file.key}`: "
        f"{err.strerror or err}. Make sure nothing deletes or locks files in "
        "`source-dir` while the deploy runs.",
        short=f"unreadable: {err.strerror or type(err).__name__}",
    )


def _changed(file: LocalFile, found: int | None) -> S3Error:
    """The file is not what was hashed any more: stop its upload, say why and what to do."""
    if found is None:
        now = "became shorter while it was being sent"
    elif found == file.size:  # read again for a multipart upload's parts: other bytes
        now = f"has other bytes than when it was hashed, at the same size of {found}"
    else:
        now = f"had {file.size} bytes when it was hashed and has {found} now"
    return S3Error(
        f"`{file.path}` changed while the deploy ran (it {now}), so its upload as "
        f"`{file.key}` was stopped at once and nothing of it was written. Build the site "
        "completely before deploying (in a workflow, run the build in an earlier step), "
        "make sure nothing writes into `source-dir` while the deploy runs, and re-run.",
        short="file changed during the deploy (build before deploying)",
        code="FileChanged",
        title="File changed during the deploy",
    )


def _short_code(code: str) -> str:
    if code in ("AccessDenied", "403"):
        return "access denied"
    return code


def _iam_action(operation: str) -> str:
    return {
        "ListObjectsV2": "s3:ListBucket",
        "HeadObject": "s3:GetObject",
        "GetObject": "s3:GetObject",
        "PutObject": "s3:PutObject",
        "CreateMultipartUpload": "s3:PutObject",
        "UploadPart": "s3:PutObject",
        "CompleteMultipartUpload": "s3:PutObject",
        "CopyObject": "s3:GetObject` and `s3:PutObject",
        "DeleteObjects": "s3:DeleteObject",
    }.get(operation, "s3:*")


def translate_client_error(
    operation: str,
    code: str,
    status: int,
    *,
    bucket: str,
    key: str,
    endpoint: str,
    region: str | None = None,
) -> DeployError:
    """A botocore ClientError (code and HTTP status only, and the bucket's region when the
    answer named it) as a DeployError naming the fix.

    The server's message text is deliberately not used: it can echo request details.
    """
    what = f"{operation} on `{key}`" if key and key != "*" else operation
    if code == "NoSuchBucket":
        return S3Error(
            f"The bucket `{bucket}` does not exist (at {endpoint}). Check the `bucket` input "
            "(the bare bucket name, e.g. `my-site-bucket`), and `endpoint-url` if you use "
            "S3-compatible storage.",
            short="no such bucket",
            code=code,
            title="Bucket not found",
        )
    if code in ("InvalidAccessKeyId",):
        return CredentialsError(
            f"S3 does not know the access key ID ({what} was refused with {code}). Check "
            "the `aws-access-key-id` secret (the key may be deleted or inactive), and "
            "`endpoint-url` if the keys belong to another storage provider."
        )
    if code in ("SignatureDoesNotMatch",):
        return CredentialsError(
            f"S3 rejected the request signature ({what}: {code}). The "
            "`aws-secret-access-key` secret does not match `aws-access-key-id`: re-create "
            "the secret with the bare value (no quotes, no trailing newline)."
        )
    if code in ("ExpiredToken", "InvalidToken", "TokenRefreshRequired", "ExpiredTokenException"):
        return CredentialsError(
            f"The session credentials were refused ({code}). The `aws-session-token` has "
            "expired or does not belong to the keys; use fresh temporary credentials, or "
            "`role-to-assume` to obtain them for each run."
        )
    if code in CLOCK_CODES:
        return S3Error(
            f"S3 refused {what} because this machine's clock is wrong ({code}): a signed "
            "request must be within 15 minutes of AWS's time. Set the clock right (turn on "
            "time sync, e.g. `sudo timedatectl set-ntp true`; on a self-hosted runner or a "
            "container host, fix its NTP), then re-run. The credentials are not at fault.",
            short="clock is wrong",
            code=code,
            title="System clock is wrong",
        )
    if region and (is_region_redirect(status, code) or code == "IllegalLocationConstraint"):
        return S3Error(
            f"The bucket `{bucket}` is in the region `{region}`, not in the one `aws-region` "
            f"names ({what}: {code or status}). Set `aws-region: {region}`.",
            short="wrong region",
            code=code,
            title="Wrong region",
        )
    if (
        code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraint")
        or status == 301
    ):
        return S3Error(
            f"The bucket `{bucket}` is in another region than `aws-region` ({what}: "
            f"{code or status}). Set `aws-region` to the bucket's region (see the bucket's "
            "Properties tab in the S3 console).",
            short="wrong region",
            code=code,
            title="Wrong region",
        )
    if status in REDIRECT_STATUSES:
        return S3Error(
            f"{endpoint} redirected {what} (HTTP {status}) without naming the bucket's "
            "region. Set `aws-region` to the bucket's region (a bucket created minutes "
            "ago can also redirect until its name has spread), and check `endpoint-url` "
            "is the S3 API's address, not a website's.",
            short=f"redirected (HTTP {status})",
            code=code or str(status),
            title="Wrong region",
        )
    if code in ("AccessDenied", "AllAccessDisabled", "403") or status == 403:
        action = _iam_action(operation)
        resource = (
            f"arn:aws:s3:::{bucket}" if operation == "ListObjectsV2" else f"arn:aws:s3:::{bucket}/*"
        )
        cls = ReadDenied if operation in ("HeadObject", "GetObject") else S3Error
        return cls(
            f"Access denied: {what} in bucket `{bucket}` was refused. Allow "
            f"`{action}` on `{resource}` in the IAM policy of the credentials "
            "(`aws-access-key-id` or `role-to-assume`), and check the bucket policy does "
            "not deny it.",
            short="access denied",
            code=code or "AccessDenied",
            title="Access denied",
        )
    if code == "BadDigest":
        return S3Error(
            f"{what} was rejected because the bytes received did not match their MD5 "
            "(BadDigest): the file changed while the deploy ran, or the network corrupted "
            "it. Make sure no build step writes into `source-dir` during the deploy, and "
            "re-run.",
            short="content changed in flight (BadDigest)",
            code=code,
        )
    label = code or f"HTTP {status}"
    if is_retryable(status, code) or code == "503":
        return S3Error(
            f"S3 kept failing {what} ({label}) after retries. This is usually temporary "
            "(throttling or a server error): re-run the workflow; lower `concurrency` if "
            "it keeps happening.",
            short=f"{label} after retries",
            code=code,
        )
    return S3Error(
        f"S3 refused {what} in bucket `{bucket}` ({label}). Check `bucket`, `aws-region` "
        "and `endpoint-url`.",
        short=label,
        code=code,
    )
