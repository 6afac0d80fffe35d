"""Signed S3 requests over keep-alive connections of our own: the requests every deploy makes.

PutObject, ListObjectsV2, GetObject (the deploy record), DeleteObjects and the
multipart upload's four (Create, UploadPart, Complete, Abort: large files, whose parts
share the deploy's window, see `parts.py`); HEAD and CopyObject (rare) stay on botocore.

Why: on a cold deploy every file is one PutObject, and botocore spends about 1.1 ms
of CPU on each (event hooks, parameter validation, endpoint rules, serialisation,
retry handlers, response parsing), about four times what the request itself needs.
Measured single-threaded against SeaweedFS on loopback, 1,000 PUTs of 5 KB: botocore
1.11-1.16 ms of CPU per PUT, this module's path 0.26 ms. With 2 cores shared with the
server, that CPU is the deploy's wall time. Listing is the same story: 2,000 keys
(2 pages) cost botocore 0.12-0.19 s of CPU to parse, ElementTree 0.009 s.

What it keeps from botocore:
- where to send: the URL botocore itself resolves for the bucket (scheme, host and
  path of a request it prepared and signed, so addressing style, custom endpoints
  and regions are exactly botocore's), and the signing region from its signature;
- credentials: the session's, frozen per request (refreshable ones refresh);
- retries like botocore's `standard` mode: the same attempts, exponential backoff with
  full jitter capped at 20 s, on connection errors, timeouts, 429/500/502/503/504 and
  throttling codes.

What it signs: AWS Signature Version 4 with `UNSIGNED-PAYLOAD` (S3 allows it on any
scheme; botocore does the same over HTTPS); integrity comes from `Content-MD5`,
which S3 checks. Every header sent except `User-Agent` is signed.

`deployer/s3.py` decides when to use it (never behind an HTTP proxy, and only for
Signature Version 4) and turns its errors into messages. Connections are
`http.client` ones (TCP, TLS, timeouts); each request and its answer go through
`http1.py` (one `sendall`, a lean reader: less CPU per request than `http.client`'s).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import hmac
import http.client
import random
import re
import select
import ssl  # imported by http.client anyway
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, BinaryIO, Literal, Protocol
from urllib.parse import quote, urlsplit

from deployer import http1

if TYPE_CHECKING:
    from concurrent.futures import Future
    from xml.etree.ElementTree import Element

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_BACKOFF_S = 20.0  # botocore standard mode's cap
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequests",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
    }
)
# Answers that mean "slow down": the caller's window backs off (see `Wire.on_retry`).
THROTTLE_STATUSES = frozenset({429, 503})
# Throttling answers get this many attempts more than other failures: the caller's window
# has backed off already (`concurrency.py`), and a bucket that throttles 30% of writes
# would otherwise fail one upload in ~1,400 after 6 attempts (0.3^6).
THROTTLE_EXTRA_ATTEMPTS = 6
THROTTLE_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}
)
# A parsed ListObjectsV2 page's element tree is ~1.6 MB for 1,000 keys (its body ~0.3 MB):
# ranges listed at once (`listing.py`) parse one after another, so one tree at a time.
_PARSING = threading.Lock()
_CODE = re.compile(rb"<Code>([^<]{1,200})</Code>")
_REGION = re.compile(rb"<Region>([a-z0-9-]{1,40})</Region>")
# Answers that mean "the bucket is in another region" (botocore's S3RegionRedirectorv2).
REDIRECT_STATUSES = frozenset({301, 302, 307})
REDIRECT_CODES = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
)
_AWS_S3_HOST = re.compile(r"(?P<bucket>.+\.)?s3(\.(?P<region>[a-z0-9-]+))?\.amazonaws\.com")
_SPACES = re.compile(r"\s+")
_CREDENTIAL = re.compile(
    r"AWS4-HMAC-SHA256 Credential=[^/,]*/\d{8}/(?P<region>[^/,]+)/(?P<service>[^/,]+)/aws4_request,"
)


class FrozenCredentials(Protocol):
    @property
    def access_key(self) -> str | None: ...
    @property
    def secret_key(self) -> str | None: ...
    @property
    def token(self) -> str | None: ...


class CredentialSource(Protocol):
    def get_frozen_credentials(self) -> FrozenCredentials: ...


class WireError(Exception):
    """S3 answered with an error status (after retries when it was retryable)."""

    def __init__(self, status: int, code: str, *, region: str | None = None) -> None:
        super().__init__(f"HTTP {status} {code}")
        self.status = status
        self.code = code
        self.region = region  # the bucket's region, when the answer names it


class WireProtocolError(Exception):
    """A 2xx answer that is not what S3 sends (unparseable XML, a non-numeric size)."""


class RepeatedTokenError(WireProtocolError):
    """ListObjectsV2 gave a continuation token it had already given (the listing would loop)."""


class WireConnectionError(Exception):
    """No answer after every attempt. `connected`: a connection was made at least once
    (so the server stopped answering) rather than never (unreachable endpoint)."""

    def __init__(self, cause: BaseException, *, connected: bool) -> None:
        super().__init__(type(cause).__name__)
        self.cause_name = type(cause).__name__
        self.connected = connected


class WireCertificateError(Exception):
    """The HTTPS endpoint's certificate failed verification. Not retried: it cannot pass."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WireCABundleError(Exception):
    """The CA bundle file could not be loaded (missing, unreadable, not PEM)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Target:
    """Where a bucket's objects live: `https://host[:port]` + `base_path` + `/key`."""

    scheme: str
    netloc: str  # host[:port] as in the Host header
    base_path: str  # "" (virtual-hosted) or "/bucket" (path style)
    region: str  # the signing region

    @classmethod
    def from_request(cls, url: str, authorization: str, key: str) -> Target | None:
        """Read a request botocore prepared (and signed) for object `key` of the bucket;
        None unless it is signed with SigV4 for the `s3` service."""
        parts = urlsplit(url)
        suffix = "/" + quote(key, safe="/~")
        match = _CREDENTIAL.match(authorization)
        # Credential = AKID/yyyymmdd/region/service/aws4_request
        if (
            match is None
            or match.group("service") != "s3"
            or parts.scheme not in ("http", "https")
            or not parts.path.endswith(suffix)
        ):
            return None
        return cls(
            scheme=parts.scheme,
            netloc=host_port(url),
            base_path=parts.path[: -len(suffix)],
            region=match.group("region"),
        )

    def path(self, key: str) -> str:
        """The request path (also the canonical URI: S3 does not normalise paths)."""
        return f"{self.base_path}/{quote(key, safe='/~')}"

    def in_region(self, region: str) -> Target | None:
        """This bucket's address in another region, as botocore's endpoint rules give it:
        AWS's plain S3 hosts move to that region's (`s3.amazonaws.com` for us-east-1);
        any other endpoint (MinIO, R2...) stays and only the signing region changes.
        None for AWS hosts of other forms (FIPS, dual-stack...), left to the user."""
        host, _, port = self.netloc.partition(":")
        if not host.endswith((".amazonaws.com", ".amazonaws.com.cn")):
            return Target(self.scheme, self.netloc, self.base_path, region)
        match = _AWS_S3_HOST.fullmatch(host)
        if match is None or match.group("region") not in (None, self.region):
            return None
        regional = "s3.amazonaws.com" if region == "us-east-1" else f"s3.{region}.amazonaws.com"
        netloc = (match.group("bucket") or "") + regional + (f":{port}" if port else "")
        return Target(self.scheme, netloc, self.base_path, region)


def host_port(url: str) -> str:
    """`host[:port]` of a URL as the Host header wants it (no user:password part)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port}" if parts.port else host


# -- signing (pure) ---------------------------------------------------------------------------


def canonical_query(query: Mapping[str, str]) -> str:
    """The query string as SigV4 signs it, and as it is sent: sorted, RFC 3986-encoded."""
    return "&".join(
        f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}"
        for name, value in sorted(query.items())
    )


@lru_cache(maxsize=8)
def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), day.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    credentials: FrozenCredentials,
    region: str,
    amz_date: str,
    payload_hash: str = UNSIGNED_PAYLOAD,
    service: str = "s3",
) -> dict[str, str]:
    """The headers to send: `headers` plus `X-Amz-Date`, `X-Amz-Content-SHA256`, the
    session token if any, and `Authorization`. `headers` must include `Host`.

    `path` is already percent-encoded (see `Target.path`); `query` values are raw.
    """
    signed = {name.lower(): _SPACES.sub(" ", value.strip()) for name, value in headers.items()}
    signed.pop("user-agent", None)
    signed["x-amz-date"] = amz_date
    signed["x-amz-content-sha256"] = payload_hash
    if credentials.token:
        signed["x-amz-security-token"] = credentials.token
    names = sorted(signed)
    canonical = "\n".join(
        (
            method,
            path,
            canonical_query(query),
            "".join(f"{name}:{signed[name]}\n" for name in names),
            ";".join(names),
            payload_hash,
        )
    )
    day = amz_date[:8]
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        (ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest())
    )
    key = _signing_key(credentials.secret_key or "", day, region, service)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = dict(headers)
    out["X-Amz-Date"] = amz_date
    out["X-Amz-Content-SHA256"] = payload_hash
    if credentials.token:
        out["X-Amz-Security-Token"] = credentials.token
    out["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key or ''}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return out


@dataclass(frozen=True, slots=True)
class ListPage:
    """One ListObjectsV2 page: (key, size, etag as sent) per object, and where to go on."""

    objects: list[tuple[str, int, str]]
    next_token: str | None


def parse_list_page(body: bytes) -> ListPage:
    """Parse a ListObjectsV2 answer. Keys are URL-decoded only when the answer says
    `EncodingType` url (as botocore does: some servers ignore the request for it)."""
    from urllib.parse import unquote_plus  # noqa: PLC0415
    from xml.etree.ElementTree import ParseError, fromstring  # noqa: PLC0415

    try:
        # The endpoint is the user's own S3; botocore parses the same answers with the same
        # stdlib expat, which expands no external entities and limits entity amplification.
        root = fromstring(body)  # noqa: S314
    except ParseError as err:
        raise WireProtocolError(f"ListObjectsV2 answer is not XML ({err})") from None
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    if root.tag != f"{ns}ListBucketResult":
        raise WireProtocolError(f"ListObjectsV2 answer is a <{root.tag[len(ns) :]}>")
    encoded = (root.findtext(f"{ns}EncodingType") or "").lower() == "url"
    objects: list[tuple[str, int, str]] = []
    for item in root.iterfind(f"{ns}Contents"):
        key = item.findtext(f"{ns}Key")
        if key is None:
            continue
        size_text = item.findtext(f"{ns}Size") or "0"
        if not size_text.strip().isdigit():
            raise WireProtocolError(f"ListObjectsV2 gave a non-numeric size {size_text[:20]!r}")
        objects.append(
            (
                unquote_plus(key) if encoded else key,
                int(size_text),
                item.findtext(f"{ns}ETag") or "",
            )
        )
    truncated = (root.findtext(f"{ns}IsTruncated") or "").strip().lower() == "true"
    token = root.findtext(f"{ns}NextContinuationToken") if truncated else None
    if truncated and not token:
        raise WireProtocolError("ListObjectsV2 answer is truncated without a continuation token")
    return ListPage(objects, token)


def delete_body(keys: Sequence[str]) -> bytes:
    """The DeleteObjects request body: Quiet, so the answer lists only failures."""
    from xml.sax.saxutils import escape  # noqa: PLC0415

    objects = "".join(f"<Object><Key>{escape(key)}</Key></Object>" for key in keys)
    return f"<Delete><Quiet>true</Quiet>{objects}</Delete>".encode()


def parse_delete_errors(body: bytes) -> list[tuple[str, str]]:
    """(key, code) of every `<Error>` in a DeleteObjects answer."""
    from xml.etree.ElementTree import ParseError, fromstring  # noqa: PLC0415

    try:
        root = fromstring(body)  # noqa: S314  (the user's own endpoint; see parse_list_page)
    except ParseError as err:
        raise WireProtocolError(f"DeleteObjects answer is not XML ({err})") from None
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    if root.tag != f"{ns}DeleteResult":
        raise WireProtocolError(f"DeleteObjects answer is a <{root.tag[len(ns) :]}>")
    return [
        (item.findtext(f"{ns}Key") or "?", item.findtext(f"{ns}Code") or "error")
        for item in root.iterfind(f"{ns}Error")
    ]


def _xml_root(body: bytes, what: str) -> tuple[Element, str]:
    """The root element of an XML answer and its namespace prefix; WireProtocolError when
    it is not XML. The root's name is not checked, as botocore does not: rclone answers
    CreateMultipartUpload with `<InitiateMultipartUpload>`, not `...Result`."""
    from xml.etree.ElementTree import ParseError, fromstring  # noqa: PLC0415

    try:
        # Leading whitespace: S3 keeps a long CompleteMultipartUpload alive with spaces.
        root = fromstring(body.lstrip())  # noqa: S314  (the user's own endpoint)
    except ParseError as err:
        raise WireProtocolError(f"{what} answer is not XML ({err})") from None
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    return root, ns


def parse_upload_id(body: bytes) -> str:
    """The `UploadId` of a CreateMultipartUpload answer."""
    root, ns = _xml_root(body, "CreateMultipartUpload")
    upload_id = (root.findtext(f"{ns}UploadId") or "").strip()
    if not upload_id:
        raise WireProtocolError("CreateMultipartUpload answer has no UploadId")
    return upload_id


def complete_body(etags: Sequence[str]) -> bytes:
    """The CompleteMultipartUpload request body: each part's number and ETag, in order."""
    from xml.sax.saxutils import escape  # noqa: PLC0415

    parts = "".join(
        f"<Part><PartNumber>{number}</PartNumber><ETag>{escape(etag)}</ETag></Part>"
        for number, etag in enumerate(etags, start=1)
    )
    return f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()


def parse_complete(body: bytes) -> tuple[str, str]:
    """(ETag, "") of a CompleteMultipartUpload answer, or ("", code) when the answer is an
    `<Error>`: S3 may fail a Complete after its 200 status line has been sent."""
    root, ns = _xml_root(body, "CompleteMultipartUpload")
    if root.tag == f"{ns}Error":
        return "", (root.findtext(f"{ns}Code") or "InternalError").strip()
    return (root.findtext(f"{ns}ETag") or "").strip(), ""


def first_answer_s(since_asked: float, since_sent: float, opened_in: float | None) -> float:
    """What the link costs a first request on a new connection: its connection's opening
    and the request, whether the connection was opened for it (`opened_in` None: both
    are in `since_asked`), waited for, or opened long before (`early.py`).

    A TCP handshake takes a round trip, as long as the request's own at least, so an
    opening that took less counts as the request's time: a connection can look opened at
    once when what accepted it is near and only forwards to the far end (a local relay
    or proxy, as in the benchmark, `bench/relay.py`), and the link would look half as far
    as it is."""
    if opened_in is None:
        return since_asked
    return max(since_asked, max(opened_in, since_sent) + since_sent)


def amz_now() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def error_code(body: bytes) -> str:
    """The `<Code>` of an S3 XML error body ("" when there is none)."""
    match = _CODE.search(body)
    return match.group(1).decode("utf-8", "replace").strip() if match else ""


def bucket_region(headers: Mapping[str, str], body: bytes) -> str | None:
    """The bucket's region named by an error answer: `x-amz-bucket-region`, else the
    body's `<Region>` (where botocore looks, in that order)."""
    named = headers.get("x-amz-bucket-region", "").strip()
    if named:
        return named
    match = _REGION.search(body)
    return match.group(1).decode("ascii") if match else None


def is_region_redirect(status: int, code: str) -> bool:
    return status in REDIRECT_STATUSES or code in REDIRECT_CODES


def is_retryable(status: int, code: str) -> bool:
    return status in RETRY_STATUSES or code in RETRY_CODES


def _retry_reason(err: BaseException) -> str:
    """A few words for a request that got no answer: `timed out`, `connection reset`."""
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, ConnectionResetError):
        return "connection reset"
    if isinstance(err, BrokenPipeError | http.client.RemoteDisconnected):
        return "connection closed"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    return type(err).__name__


def is_throttle(status: int, code: str) -> bool:
    return status in THROTTLE_STATUSES or code in THROTTLE_CODES


def backoff_s(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Full jitter: a random delay up to 2^attempt seconds (attempt 0 = first retry), capped."""
    return rand() * min(MAX_BACKOFF_S, float(2**attempt))


# -- connections (I/O) ------------------------------------------------------------------------


class _HTTPConnection(http.client.HTTPConnection):
    """Connects within the connect timeout, then waits up to `read_timeout` per read."""

    read_timeout: float = 60.0
    netloc: str = ""  # the Target.netloc it was opened for
    opened_in: float = 0.0  # seconds its TCP (and TLS) handshakes took

    def connect(self) -> None:
        started = time.monotonic()
        super().connect()
        self.sock.settimeout(self.read_timeout)
        self.opened_in = time.monotonic() - started


class _HTTPSConnection(_HTTPConnection, http.client.HTTPSConnection):
    """The same over TLS, resuming `tls_session` when one is given (`Wire._keep_session`)."""

    tls_context: ssl.SSLContext
    tls_session: ssl.SSLSession | None = None

    def connect(self) -> None:
        started = time.monotonic()
        http.client.HTTPConnection.connect(self)  # TCP (and TCP_NODELAY)
        self.sock = self.tls_context.wrap_socket(
            self.sock, server_hostname=self.host, session=self.tls_session
        )
        self.sock.settimeout(self.read_timeout)
        self.opened_in = time.monotonic() - started


class ChunkReader:
    """A file-like `read()` over byte chunks, for bodies made as they are sent."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._rest = b""

    def read(self, size: int = -1) -> bytes:
        parts = [self._rest]
        have = len(self._rest)
        for chunk in self._chunks:
            parts.append(chunk)
            have += len(chunk)
            if 0 <= size <= have:
                break
        data = b"".join(parts)
        if size < 0:
            self._rest = b""
            return data
        self._rest = data[size:]
        return data[:size]

    def close(self) -> None:
        self._rest = b""


class BodyChangedError(Exception):
    """A file body does not hold the `length` bytes announced in Content-Length any more
    (it changed since it was hashed). Not retried: the request is abandoned at once and
    its connection closed, so no stray bytes follow on a kept-alive connection."""

    def __init__(self, expected: int, found: int | None) -> None:
        super().__init__(f"expected {expected} bytes, found {found}")
        self.expected = expected
        self.found = found  # None: it shrank while it was being sent


class ExactReader:
    """`length` bytes of a file from `offset` (all of it by default) as a body of exactly
    that size, or BodyChangedError when the file's size is not `size` (default `length`)
    as it is opened or it ends early. Bytes appended while it is sent are not sent (the
    server checks what is sent against the hashed MD5)."""

    def __init__(
        self, file: BinaryIO, length: int, *, offset: int = 0, size: int | None = None
    ) -> None:
        import os  # noqa: PLC0415

        expected = length if size is None else size
        found = os.fstat(file.fileno()).st_size
        if found != expected:
            file.close()
            raise BodyChangedError(expected, found)
        if offset:
            file.seek(offset)
        self._file = file
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if self._left == 0:
            return b""
        data = self._file.read(self._left if size < 0 else min(size, self._left))
        if not data:  # it shrank while it was being sent
            raise BodyChangedError(self._left, None)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._file.close()


# A file body is reopened for every attempt.
Body = bytes | Callable[[], BinaryIO | ChunkReader | ExactReader]


class Wire:
    """Signed requests to one `Target`, over a pool of keep-alive connections.

    Thread-safe: each request takes a connection from the pool (or opens one) and
    returns it when the answer is fully read.
    """

    # Told before every retry, with why (`retries.RETRIES.note`: progress lines say it).
    on_retrying: Callable[[str], None] | None = None

    def __init__(
        self,
        target: Target,
        credentials: CredentialSource,
        *,
        attempts: int,
        connect_timeout: float,
        read_timeout: float,
        user_agent: str,
        ca_file: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[Literal["throttled", "timeout"]], None] | None = None,
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        self.target = target
        self.credentials = credentials
        self.attempts = attempts
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.user_agent = user_agent
        self.ca_file = ca_file
        self.sleep = sleep
        # Taken oldest first: a connection opened long ago is the likeliest to be ready at
        # the far end. Something near may accept a connection at once and connect onwards
        # only then (a relay, a proxy, a load balancer; the benchmark's relay does), so a
        # connection just opened can still be a round trip from usable: taken newest
        # first, a 1% change at 180 ms round trips sent 6 of its 8 assets on connections
        # opened while the first page was awaited, each answered a round trip late.
        self._idle: collections.deque[_HTTPConnection] = collections.deque()
        # Called once, with (configured region, bucket's region), when S3 redirects.
        self.on_redirect: Callable[[str, str], None] | None = None
        # Told before a retry after a throttling answer or a timeout (requests in flight
        # back off: `concurrency.note_retry`).
        self.on_retry = on_retry
        self.on_connect = on_connect  # a request's connection had to be opened first
        self._lock = threading.Lock()
        # Told when a connection is idle again, or one being opened ahead is done.
        self._ready = threading.Condition(self._lock)
        self._opening = 0  # connections being opened ahead (`prepare`, `adopt`)
        self._early = 0  # connections adopted that later `prepare` calls need not open
        self._waiting = 0  # requests waiting for one of them
        # Seconds the first answered request took on the wire, its connection's opening
        # included (`first_answer_s`): about two round trips, three or four with TLS;
        # None before any answer.
        self.first_answer_s: float | None = None
        # When the latest request before the first answer was asked (`waited_s`).
        self._unanswered_since: float | None = None
        self._context: ssl.SSLContext | None = None
        # A TLS session to resume in new connections, and the host it is for.
        self._session: tuple[str, ssl.SSLSession] | None = None

    def put(self, key: str, body: Body, length: int, headers: Mapping[str, str]) -> str:
        """PutObject; returns the ETag header as sent by the server ("" when absent)."""
        response_headers, _ = self._request("PUT", self.target.path(key), body, length, headers)
        return response_headers.get("etag", "")

    def create_multipart(self, key: str, headers: Mapping[str, str]) -> str:
        """CreateMultipartUpload with the object's headers and metadata; its UploadId."""
        path = self.target.path(key)
        _, body = self._request("POST", path, b"", 0, headers, query={"uploads": ""})
        return parse_upload_id(body)

    def upload_part(
        self, key: str, upload_id: str, number: int, body: Body, *, length: int, md5: str
    ) -> str:
        """UploadPart of `length` bytes (`md5`: their MD5 in base64, for Content-MD5); the
        part's ETag as sent."""
        query = {"partNumber": str(number), "uploadId": upload_id}
        path = self.target.path(key)
        answer, _ = self._request("PUT", path, body, length, {"Content-MD5": md5}, query=query)
        etag = answer.get("etag", "")
        if not etag:
            raise WireProtocolError(f"UploadPart answer for part {number} has no ETag")
        return etag

    def complete_multipart(self, key: str, upload_id: str, etags: Sequence[str]) -> str:
        """CompleteMultipartUpload of parts 1..n with these ETags; the object's ETag ("" when
        the answer has none). An error inside a 200 answer is retried like an error status
        when it is retryable (S3 sends `InternalError` so), else raised as a WireError."""
        body = complete_body(etags)
        headers = {"Content-Type": "application/xml"}
        path, query = self.target.path(key), {"uploadId": upload_id}
        for attempt in range(self.attempts):
            _, answer = self._request("POST", path, body, len(body), headers, query=query)
            etag, code = parse_complete(answer)
            if not code:
                return etag
            if attempt + 1 == self.attempts or not is_retryable(200, code):
                raise WireError(200, code)
            if self.on_retrying is not None:
                self.on_retrying(f"{code} (in a 200 answer)")
            self.sleep(backoff_s(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """AbortMultipartUpload: the upload's parts are deleted."""
        self._request("DELETE", self.target.path(key), None, 0, {}, query={"uploadId": upload_id})

    def get_object(self, key: str) -> bytes:
        """GetObject's body (a 404 is a WireError like any other error status)."""
        _, body = self._request("GET", self.target.path(key), None, 0, {})
        return body

    def delete_objects(self, keys: Sequence[str]) -> list[tuple[str, str]]:
        """DeleteObjects (Quiet) for up to 1,000 keys: the (key, code) of each failure."""
        body = delete_body(keys)
        digest = hashlib.md5(body, usedforsecurity=False).digest()
        headers = {
            "Content-Type": "application/xml",
            "Content-MD5": base64.b64encode(digest).decode("ascii"),
        }
        path = self.target.base_path or "/"
        _, answer = self._request("POST", path, body, len(body), headers, query={"delete": ""})
        return parse_delete_errors(answer)

    def list_objects(
        self, prefix: str, page_size: int, *, start_after: str = ""
    ) -> Iterator[ListPage]:
        """ListObjectsV2 page by page (`encoding-type=url`, as botocore asks), from the
        first key after `start_after` if given.

        A continuation token the server already gave is a server bug that would loop
        forever: WireProtocolError (botocore's paginator stops on it too)."""
        token: str | None = None
        seen: set[str] = set()
        while True:
            query = {"list-type": "2", "max-keys": str(page_size), "encoding-type": "url"}
            if prefix:
                query["prefix"] = prefix
            if start_after:
                query["start-after"] = start_after
            if token:
                query["continuation-token"] = token
            _, body = self._request("GET", self.target.base_path or "/", None, 0, {}, query=query)
            with _PARSING:  # one page's tree at a time: listings run in parallel ranges
                page = parse_list_page(body)
            del body
            yield page
            token = page.next_token
            if token is None:
                return
            if token in seen:
                raise RepeatedTokenError("ListObjectsV2 repeated a continuation token")
            seen.add(token)

    # -- internals -------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: Body | None,
        length: int,
        headers: Mapping[str, str],
        *,
        query: Mapping[str, str] | None = None,
        redirected: bool = False,
    ) -> tuple[dict[str, str], bytes]:
        """One request with retries: (lower-case response headers, body) of a 2xx answer.

        An answer saying the bucket is in another region (301/302/307, or 400
        AuthorizationHeaderMalformed, naming the region) is followed once, as botocore
        does: every later request goes to the bucket's region (`on_redirect` is told)."""
        query = query or {}
        url = f"{path}?{canonical_query(query)}" if query else path
        fixed = dict(headers)
        if body is not None:
            fixed["Content-Length"] = str(length)
        connected = False
        total = self.attempts + THROTTLE_EXTRA_ATTEMPTS
        failures = 0  # answers and errors other than throttling: at most `attempts`
        for attempt in range(total):
            # If this attempt fails other than by throttling, is it the last?
            last = attempt + 1 == total or failures + 1 >= self.attempts
            target = self.target  # one address per attempt (a redirect may change it)
            fixed["Host"] = target.netloc
            frozen = self.credentials.get_frozen_credentials()
            to_send = sign(
                method,
                path,
                query,
                fixed,
                credentials=frozen,
                region=target.region,
                amz_date=amz_now(),
            )
            to_send["User-Agent"] = self.user_agent
            # Unsigned, as `http.client` sent it: with no Accept-Encoding a server may
            # compress, and S3's answers are parsed as they come.
            to_send["Accept-Encoding"] = "identity"
            payload = body() if callable(body) else body  # OSError here: unreadable
            if isinstance(payload, bytes) and len(payload) != length:
                raise BodyChangedError(length, len(payload))
            head = http1.encode_head(method, url, to_send)
            asked = time.monotonic()
            if self.first_answer_s is None:
                self._unanswered_since = asked
            conn = self._connection(target)
            sent, ready = time.monotonic(), conn.sock is not None  # opened ahead?
            cut: OSError | None = None  # the body could not be sent in full
            try:
                if conn.sock is None:
                    conn.connect()
                try:
                    http1.send(conn.sock, head, payload)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError) as err:
                    # The server may have answered before reading the whole body (S3 refuses
                    # a large PUT with 403 at once) and closed: read that answer first, as
                    # urllib3 does. Only an error answer counts for a body not sent in full.
                    cut = err
                connected = True
                answer = http1.read_answer(conn.sock)
                if self.first_answer_s is None:
                    now = time.monotonic()
                    self.first_answer_s = first_answer_s(
                        now - asked, now - sent, conn.opened_in if ready else None
                    )
                if cut is not None and answer.status < 300:
                    raise cut
            except (OSError, http.client.HTTPException) as err:
                connected = connected or conn.sock is not None
                conn.close()
                if isinstance(err, ssl.SSLCertVerificationError):
                    raise WireCertificateError(err.verify_message or str(err)) from None
                failures += 1
                if not last and self.on_retrying is not None:
                    self.on_retrying(_retry_reason(cut or err))
                if last:
                    raise WireConnectionError(cut or err, connected=connected) from None
                if isinstance(cut or err, TimeoutError) and self.on_retry is not None:
                    self.on_retry("timeout")
                self.sleep(backoff_s(attempt))
                continue
            except BaseException:  # BodyChangedError, or an interrupt: the request is cut
                conn.close()
                raise
            finally:
                if payload is not None and not isinstance(payload, bytes):
                    payload.close()
            if answer.will_close or cut is not None:
                conn.close()
            else:
                self._release(conn)
            status, data = answer.status, answer.body
            if status < 300:
                return answer.headers, data
            code = error_code(data)
            if is_region_redirect(status, code):
                region = bucket_region(answer.headers, data)
                if not redirected and region and self._move_to(region):
                    return self._request(
                        method, path, body, length, headers, query=query, redirected=True
                    )
                raise WireError(status, code, region=region)
            if is_throttle(status, code):
                last = attempt + 1 == total  # the window has backed off: keep trying
            else:
                failures += 1
            if not last and self.on_retrying is not None and is_retryable(status, code):
                self.on_retrying(f"{code} (HTTP {status})" if code else f"HTTP {status}")
            if last or not is_retryable(status, code):
                raise WireError(status, code)
            if is_throttle(status, code) and self.on_retry is not None:
                self.on_retry("throttled")
            self.sleep(backoff_s(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def waited_s(self, now: float) -> float | None:
        """How long the first answer has been awaited at `now` (monotonic), from the
        latest request asked before it: `first_answer_s` will be at least that. None
        before any request, and once an answer has come."""
        since = self._unanswered_since
        if since is None or self.first_answer_s is not None:
            return None
        return max(0.0, now - since)

    def prepare(self) -> None:
        """Open one connection (TCP and TLS handshakes) and keep it idle for the next
        request; a failure here is left for that request to meet and report."""
        with self._lock:
            if self._early:  # one opened before the wire existed stands in for it
                self._early -= 1
                return
            self._opening += 1
        conn = self._new_connection(self.target)
        try:
            conn.connect()
        except (OSError, http.client.HTTPException):
            conn.close()
        else:
            self._release(conn)
        finally:
            with self._ready:
                self._opening -= 1
                # Every waiter checks again: one whose connection went to a request that
                # did not wait may now have none coming, and must open its own at once.
                self._ready.notify_all()

    def _move_to(self, region: str) -> bool:
        """Send this and every later request to the bucket in `region`; False when its
        address there is unknown. Idle connections to the old host are closed."""
        with self._lock:
            old = self.target
            if region == old.region:  # another thread moved it already
                return True
            moved = old.in_region(region)
            if moved is None:
                return False
            self.target = moved
            stale, self._idle = self._idle, collections.deque()
        for conn in stale:
            conn.close()
        if self.on_redirect is not None:
            self.on_redirect(old.region, region)
        return True

    def _connection(self, target: Target) -> _HTTPConnection:
        """An idle connection to `target`, else a new one. While connections are being
        opened ahead (`prepare`), a request waits for one of them rather than opening
        one more: with a window widened at once (`concurrency.seed`), the requests would
        otherwise double the handshakes, each side's CPU, just when they cost most."""
        while True:
            with self._ready:
                while not self._idle and self._opening > self._waiting:
                    self._waiting += 1
                    try:
                        self._ready.wait(timeout=1.0)
                    finally:
                        self._waiting -= 1
                conn = self._idle.popleft() if self._idle else None
            if conn is None:
                if self.on_connect is not None:
                    self.on_connect()
                return self._new_connection(target)
            if conn.netloc == target.netloc and not _dropped(conn):
                return conn
            conn.close()

    def _release(self, conn: _HTTPConnection) -> None:
        if self._session is None and isinstance(conn, _HTTPSConnection):
            self._keep_session(conn)
        with self._ready:
            if conn.netloc == self.target.netloc:
                self._idle.append(conn)
                self._ready.notify()
                return
        conn.close()  # to the host before a redirect

    def _new_connection(self, target: Target) -> _HTTPConnection:
        context = None
        session = None
        if target.scheme == "https":
            with self._lock:
                if self._context is None:
                    self._context = tls_context(self.ca_file)
                context = self._context
                if self._session is not None and self._session[0] == target.netloc:
                    session = self._session[1]
        conn = new_connection(target, context, self.connect_timeout, self.read_timeout)
        if isinstance(conn, _HTTPSConnection):
            conn.tls_session = session
        return conn

    def _keep_session(self, conn: _HTTPSConnection) -> None:
        """Keep the TLS session of a connection that has had an answer, for the next
        connections to the same host to resume (once one is kept).

        A resumed handshake skips the certificate's signature and its check: measured on
        loopback against SeaweedFS, 0.55-0.6 ms of our CPU instead of 0.9-1.0 and 1.0-1.2 ms
        in all instead of 2.4 (`Wire` opens up to 256 at once, on CPUs it shares with its
        uploads); with TLS 1.2 it is also a round trip shorter. The session is verified
        already (same CA bundle, same host name); a server that does not take it back
        makes a full handshake, as without one. With TLS 1.3 the ticket comes after the
        handshake, so only a connection that has read an answer has it."""
        sock = conn.sock
        if not isinstance(sock, ssl.SSLSocket) or sock.context is not self._context:
            return  # not opened with this wire's context (a session needs the same one)
        session = sock.session
        if session is None or not (session.has_ticket or sock.version() != "TLSv1.3"):
            return
        with self._lock:
            if self._session is None:
                self._session = (conn.netloc, session)

    def adopt(
        self,
        opening: Sequence[Future[http.client.HTTPConnection]],
        *,
        stands_in: int,
        context: ssl.SSLContext | None = None,
    ) -> None:
        """Take connections being opened before this wire existed (`early.py`), each a
        Future of a connection to this wire's target: requests wait for them as for
        `prepare`'s, and the next `stands_in` calls of `prepare` open none. `context`:
        the TLS context they were opened with, which this wire then uses too (a TLS
        session from one of them can only be resumed with it)."""
        with self._ready:
            if context is not None and self._context is None:
                self._context = context
            self._opening += len(opening)
            self._early += min(stands_in, len(opening))
        for future in opening:
            future.add_done_callback(self._adopted)

    def _adopted(self, future: Future[http.client.HTTPConnection]) -> None:
        conn = None if future.cancelled() or future.exception() else future.result()
        with self._ready:
            self._opening -= 1
            if isinstance(conn, _HTTPConnection) and conn.netloc == self.target.netloc:
                self._idle.append(conn)
                conn = None
            self._ready.notify_all()  # as in `prepare`: every waiter checks again
        if conn is not None:
            conn.close()


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The context that verifies the server's certificate with `ca_file` (None: the
    system's); raises WireCABundleError for a bundle that cannot be read."""
    try:
        return ssl.create_default_context(cafile=ca_file)
    except OSError as err:  # ssl.SSLError included
        reason = getattr(err, "strerror", None) or str(err)
        raise WireCABundleError(ca_file or "", reason) from None


def new_connection(
    target: Target, context: ssl.SSLContext | None, connect_timeout: float, read_timeout: float
) -> _HTTPConnection:
    """A connection to `target`, not opened yet (`connect()`, or the first request,
    opens it); `context` is required for HTTPS."""
    conn: _HTTPConnection
    if target.scheme == "https":
        if context is None:
            raise ValueError("an HTTPS connection needs a TLS context")
        https = _HTTPSConnection(target.netloc, timeout=connect_timeout, context=context)
        https.tls_context = context
        conn = https
    else:
        conn = _HTTPConnection(target.netloc, timeout=connect_timeout)
    conn.read_timeout = read_timeout
    conn.netloc = target.netloc
    return conn


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """An idle keep-alive connection the server has closed (readable = EOF or junk).

    A TLS 1.3 server sends its session tickets after the handshake, so a connection opened
    ahead and not used yet is readable and alive: its TLS records are read here (without
    blocking), and only an end of stream or application bytes count as dropped."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    if not readable:
        return False
    if not isinstance(sock, ssl.SSLSocket):
        return True
    timeout = sock.gettimeout()
    try:
        sock.settimeout(0)
        sock.recv(1)  # b"" (closed) or a stray byte: dropped either way
    except ssl.SSLWantReadError:
        return False  # only TLS records (session tickets) were waiting
    except (OSError, ValueError):
        return True
    finally:
        with contextlib.suppress(OSError, ValueError):
            sock.settimeout(timeout)
    return True
