"""The request layer's failure paths against real servers (SeaweedFS, behind
`devtools.faultproxy` where a fault is needed) and scripted loopback servers where no
real server shows the behaviour: each failure ends at once in one error that names
the cause and the fix, and is compared with what botocore does where it matters.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from bench.relay import DelayRelay
from deployer import aws
from deployer.s3 import S3Error, S3Store
from deployer.s3wire import BodyChangedError, ExactReader, Wire
from devtools.faultproxy import FaultProxy
from devtools.servers import Server
from tests.integration.test_s3store import local_file, make_settings, make_store


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# -- CA bundles --------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key, made by openssl."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "ca.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"),
            *("ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def https_seaweed(seaweed: Server, certificate: tuple[Path, Path]) -> Iterator[FaultProxy]:
    """SeaweedFS behind an HTTPS endpoint whose certificate no default bundle trusts."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    proxy = FaultProxy(seaweed.endpoint, tls=context).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def no_ca_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))


@pytest.mark.usefixtures("no_ca_settings")
@pytest.mark.parametrize("wire", [True, False], ids=["wire", "botocore"])
def test_an_untrusted_certificate_is_named_and_not_retried(
    seaweed: Server, bucket: str, tmp_path: Path, https_seaweed: FaultProxy, wire: bool
) -> None:
    """A private CA's certificate: one error saying the certificate is not trusted and
    which setting fixes it; the wire does not retry (no backoff at all)."""
    store = make_store(seaweed, bucket, tmp_path, endpoint=https_seaweed.url, wire=wire)
    sleeps: list[float] = []
    if wire:
        fast = store._fast_path()
        assert fast is not None
        fast.sleep = sleeps.append
    with pytest.raises(S3Error) as caught:
        store.list_objects("")
    message = str(caught.value)
    assert caught.value.title == "Untrusted TLS certificate"
    assert "self-signed certificate" in message
    assert "`AWS_CA_BUNDLE`" in message and "`ca_bundle` in the AWS config file" in message
    assert https_seaweed.url.split("//")[1] in message
    assert sleeps == []
    assert https_seaweed.stats.requests.total() == 0  # nothing reached the server


@pytest.mark.usefixtures("no_ca_settings")
@pytest.mark.parametrize("setting", ["AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "config"])
def test_each_ca_bundle_setting_is_honoured(
    seaweed: Server,
    bucket: str,
    tmp_path: Path,
    https_seaweed: FaultProxy,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
) -> None:
    """With the CA named by any of botocore's three settings, the wire lists and uploads
    over HTTPS (and botocore's client, for a HEAD, trusts the same CA)."""
    cert = str(certificate[0])
    if setting == "config":
        config = tmp_path / "aws-config"
        config.write_text(f"[default]\nca_bundle = {cert}\n")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    else:
        monkeypatch.setenv(setting, cert)
    store = make_store(seaweed, bucket, tmp_path, endpoint=https_seaweed.url)
    file = local_file(tmp_path, "index.html", b"<h1>over https</h1>")
    assert store.put_file(file) == file.md5
    assert [o.key for o in store.list_objects("")] == ["index.html"]
    state = store.head("index.html")  # botocore
    assert state is not None and state.md5 == file.md5


@pytest.mark.usefixtures("no_ca_settings")
def test_a_tls_connection_opened_ahead_is_the_one_used(
    seaweed: Server,
    bucket: str,
    tmp_path: Path,
    https_seaweed: FaultProxy,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A TLS 1.3 server sends session tickets after the handshake: a connection opened
    ahead and idle since is readable, yet alive. Three PUTs after one `prepare` use that
    one connection (counted by a relay in front), not a new one each."""
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certificate[0]))
    host, port = https_seaweed.url.removeprefix("https://").rsplit(":", 1)
    with DelayRelay(host, int(port), 0.005) as relay:
        store = make_store(seaweed, bucket, tmp_path, endpoint=relay.url("https"))
        store.prepare()
        time.sleep(0.2)  # the tickets have arrived: the idle socket is readable
        for i in range(3):
            file = local_file(tmp_path, f"p{i}.html", f"<p>{i}</p>".encode())
            assert store.put_file(file) == file.md5
        assert relay.connections == 1


@pytest.mark.usefixtures("no_ca_settings")
def test_a_wrong_ca_bundle_names_the_setting(
    seaweed: Server,
    bucket: str,
    tmp_path: Path,
    https_seaweed: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bundle that does not exist, or a bundle of other CAs: the error names the setting."""
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    store = make_store(seaweed, bucket, tmp_path, endpoint=https_seaweed.url)
    with pytest.raises(S3Error) as missing:
        store.list_objects("")
    assert missing.value.title == "CA bundle problem"
    assert "missing.pem" in str(missing.value) and "`AWS_CA_BUNDLE`" in str(missing.value)

    import certifi

    monkeypatch.setenv("AWS_CA_BUNDLE", certifi.where())  # public CAs only
    store = make_store(seaweed, bucket, tmp_path, endpoint=https_seaweed.url)
    with pytest.raises(S3Error) as other:
        store.list_objects("")
    assert other.value.title == "Untrusted TLS certificate"
    assert "(from `AWS_CA_BUNDLE`)" in str(other.value)


# -- a file that changes between hashing and upload ----------------------------------------


def wire_of(store: S3Store, sleeps: list[float]) -> Wire:
    """The store's wire, made impatient: short read timeout, backoffs recorded not slept."""
    wire = store._fast_path()
    assert wire is not None
    wire.read_timeout = 3.0
    wire.sleep = sleeps.append
    return wire


@pytest.mark.parametrize("size", [40, 2 * 1024 * 1024], ids=["in-memory", "streamed"])
@pytest.mark.parametrize("change", ["shrunk", "grown"])
def test_a_file_changed_since_hashing_fails_at_once(
    seaweed: Server, bucket: str, tmp_path: Path, size: int, change: str
) -> None:
    """Hashed at one size, another size at upload: one error saying the file changed
    during the deploy and to build first; no request, no retry, no read timeout, and
    the next upload on the same connections lands intact."""
    with FaultProxy(seaweed.endpoint) as proxy:
        store = make_store(seaweed, bucket, tmp_path, endpoint=proxy.url)
        sleeps: list[float] = []
        wire_of(store, sleeps)
        assert store.put_file(local_file(tmp_path, "warm.html", b"warm"))  # a kept-alive conn
        file = local_file(tmp_path, "assets/app.js", os.urandom(size))
        body = Path(file.path).read_bytes()
        Path(file.path).write_bytes(body[: size // 2] if change == "shrunk" else body + b"//x")
        with pytest.raises(S3Error) as caught:
            store.put_file(file)
        after = local_file(tmp_path, "after.html", b"<h1>after</h1>")
        assert store.put_file(after) == after.md5
        puts = proxy.stats.attempts
    message = str(caught.value)
    assert caught.value.title == "File changed during the deploy"
    assert "Build the site completely before deploying" in message
    assert file.path in message and "`assets/app.js`" in message
    assert "build before deploying" in caught.value.short
    assert sleeps == []
    assert puts["assets/app.js"] == 0 and puts["after.html"] == 1
    client = seaweed.client("s3")
    assert client.get_object(Bucket=bucket, Key="after.html")["Body"].read() == b"<h1>after</h1>"
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == [
        "after.html",
        "warm.html",
    ]


def test_a_file_cut_short_while_it_is_sent(seaweed: Server, bucket: str, tmp_path: Path) -> None:
    """A file truncated after it was opened for sending: the request is cut off at once
    (never a read timeout), nothing is written, and the connections stay usable."""
    store = make_store(seaweed, bucket, tmp_path)
    sleeps: list[float] = []
    wire = wire_of(store, sleeps)
    body = os.urandom(3 * 1024 * 1024)
    file = local_file(tmp_path, "big.bin", body)

    def truncated_after_open() -> ExactReader:
        reader = ExactReader(Path(file.path).open("rb"), len(body))  # noqa: SIM115
        Path(file.path).write_bytes(body[: len(body) // 3])  # the build rewrites it now
        return reader

    with pytest.raises(BodyChangedError):
        wire.put(file.key, truncated_after_open, len(body), {})
    assert sleeps == []
    assert store.put_file(local_file(tmp_path, "ok.html", b"ok")) == md5_of(b"ok")
    keys = [o.key for o in store.list_objects("")]
    assert keys == ["ok.html"]


def test_exact_reader_sends_exactly_the_hashed_length(tmp_path: Path) -> None:
    """Opened at the hashed size: reads give exactly `length` bytes, even if the file grows
    while it is sent; opened at another size: BodyChangedError naming both sizes."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * 1000)
    reader = ExactReader(path.open("rb"), 1000)
    with path.open("ab") as grow:
        grow.write(b"b" * 500)
    got = b""
    while block := reader.read(300):
        got += block
    reader.close()
    assert got == b"a" * 1000
    with pytest.raises(BodyChangedError) as caught:
        ExactReader(path.open("rb"), 1000)
    assert (caught.value.expected, caught.value.found) == (1000, 1500)


# -- scripted loopback servers, for behaviours no local server shows --------------------------


class Scripted:
    """A loopback HTTP server whose handler answers as a test scripts it. `answer(handler)`
    gets each request (method, path, headers; the body still unread) and answers it."""

    def __init__(
        self, answer: Callable[[BaseHTTPRequestHandler], None], tls: ssl.SSLContext | None = None
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one_request(self) -> None:
                self.raw_requestline = self.rfile.readline(65537)
                if not self.raw_requestline or not self.parse_request():
                    self.close_connection = True
                    return
                self.server.seen.append((self.command, self.path))  # type: ignore[attr-defined]
                answer(self)
                self.wfile.flush()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.seen: list[tuple[str, str]] = []
        self.server.seen = self.seen  # type: ignore[attr-defined]
        scheme = "http"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Scripted:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def s3_error(
    handler: BaseHTTPRequestHandler, status: int, code: str, extra: str = "", **headers: str
) -> None:
    """An S3 XML error answer (`extra`: more elements inside `<Error>`)."""
    body = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>m</Message>{extra}</Error>"
    handler.send_response(status)
    for name, value in {"Content-Type": "application/xml", **headers}.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body.encode())


def store_at(endpoint: str, bucket: str, tmp_path: Path, *, wire: bool = True) -> S3Store:
    """A store for `bucket` at a scripted endpoint (fake keys: nothing checks them)."""
    settings = make_settings(tmp_path, endpoint)
    session = boto3.session.Session(
        aws_access_key_id="AKIASCRIPTED0000", aws_secret_access_key="scripted-secret"
    )
    client = aws.s3_client(session, settings, env={})
    return S3Store(client, bucket, credentials=session.get_credentials() if wire else None)


@pytest.mark.parametrize(
    ("wire", "scheme"),
    # botocore over TLS reports this case as a lost connection (SSLError): not compared.
    [(True, "http"), (False, "http"), (True, "https")],
    ids=["wire-http", "botocore-http", "wire-https"],
)
def test_an_early_refusal_of_a_large_body_is_reported_as_such(
    tmp_path: Path,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    wire: bool,
    scheme: str,
) -> None:
    """The server answers 403 AccessDenied after the headers of a 24 MiB PUT, without
    reading the body, and closes: the answer is read and reported (access denied, naming
    `s3:PutObject`), as botocore reports it; not "stopped answering (BrokenPipeError)"."""

    def refuse(handler: BaseHTTPRequestHandler) -> None:
        if handler.command == "PUT":
            s3_error(handler, 403, "AccessDenied", Connection="close")
            handler.close_connection = True  # unread body: the close resets the connection
            return
        s3_error(handler, 404, "NoSuchKey")

    tls = None
    if scheme == "https":
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(*certificate)
        monkeypatch.setenv("AWS_CA_BUNDLE", str(certificate[0]))
    with Scripted(refuse, tls) as server:
        store = store_at(server.url, "site", tmp_path, wire=wire)
        sleeps: list[float] = []
        if wire:
            fast = store._fast_path()
            assert fast is not None
            fast.sleep = sleeps.append
        file = local_file(tmp_path, "video/intro.bin", os.urandom(24 * 1024 * 1024))
        with pytest.raises(S3Error) as caught:
            store.put_file(file)
    assert caught.value.title == "Access denied", str(caught.value)
    assert "`s3:PutObject`" in str(caught.value)
    assert sleeps == []
    puts = [path for method, path in server.seen if method == "PUT"]
    assert len(puts) == 1  # not retried: a refusal is final


# -- a bucket in another region than `aws-region` ----------------------------------------------

REAL_REGION = "ap-northeast-2"
EMPTY_LISTING = b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"


def signed_region(handler: BaseHTTPRequestHandler) -> str:
    auth = handler.headers.get("Authorization", "")
    return auth.split("Credential=")[1].split("/")[2] if "Credential=" in auth else ""


def fake_bucket(redirect: str) -> Callable[[BaseHTTPRequestHandler], None]:
    """A bucket in REAL_REGION answering requests signed for another region as S3 does
    (`redirect`: `301`, `307`, `400`, or `301-always` for a server that never stops)."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", "0") or "0")
        body = handler.rfile.read(length) if length else b""
        wrong = signed_region(handler) != REAL_REGION or redirect == "301-always"
        if wrong and redirect in ("301", "301-always"):
            s3_error(handler, 301, "PermanentRedirect", **{"x-amz-bucket-region": REAL_REGION})
        elif wrong and redirect == "307":
            s3_error(handler, 307, "TemporaryRedirect", **{"x-amz-bucket-region": REAL_REGION})
        elif wrong:  # 400 naming the region in the body only
            s3_error(
                handler, 400, "AuthorizationHeaderMalformed", f"<Region>{REAL_REGION}</Region>"
            )
        elif handler.command == "PUT":
            handler.send_response(200)
            handler.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        elif handler.command == "HEAD":
            handler.send_response(200)
            handler.send_header("x-amz-bucket-region", REAL_REGION)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        else:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/xml")
            handler.send_header("Content-Length", str(len(EMPTY_LISTING)))
            handler.end_headers()
            handler.wfile.write(EMPTY_LISTING)

    return answer


@pytest.mark.parametrize("redirect", ["301", "307", "400"])
@pytest.mark.parametrize("wire", [True, False], ids=["wire", "botocore"])
def test_a_bucket_in_another_region_is_followed_once(
    tmp_path: Path, redirect: str, wire: bool
) -> None:
    """`aws-region` us-east-1, bucket in ap-northeast-2: like botocore, the wire follows
    S3's redirect once (one extra request), then sends everything there; it warns once
    with the right `aws-region` value."""
    warnings: list[str] = []
    with Scripted(fake_bucket(redirect)) as server:
        store = store_at(server.url, "site", tmp_path, wire=wire)
        store.warn = warnings.append
        assert store.list_objects("") == []
        file = local_file(tmp_path, "index.html", b"<h1>seoul</h1>")
        assert store.put_file(file) == file.md5
        seen = list(server.seen)
    assert [method for method, _ in seen] == ["GET", "GET", "PUT"]
    if wire:
        assert len(warnings) == 1, warnings
        assert f"Set `aws-region: {REAL_REGION}`" in warnings[0]
        assert "`site`" in warnings[0]


@pytest.mark.parametrize("wire", [True, False], ids=["wire", "botocore"])
def test_a_redirect_that_does_not_end_names_the_region(tmp_path: Path, wire: bool) -> None:
    """A server that redirects again after the redirect was followed: one error naming the
    bucket's region and the `aws-region` value to set, not a loop."""
    with Scripted(fake_bucket("301-always")) as server:
        store = store_at(server.url, "site", tmp_path, wire=wire)
        with pytest.raises(S3Error) as caught:
            store.list_objects("")
        requests = len(server.seen)
    assert caught.value.title == "Wrong region"
    assert f"`aws-region: {REAL_REGION}`" in str(caught.value)
    assert requests <= 3  # botocore may ask HeadBucket for the region


def test_a_deploys_store_warns_in_the_log(tmp_path: Path) -> None:
    """The store `deploy.connect` makes (keys known up front: the wire) logs the redirect
    as one warning titled "Wrong region"."""
    from contextlib import nullcontext

    from deployer import deploy
    from deployer.credentials import Keys

    class Log:
        def __init__(self) -> None:
            self.warnings: list[tuple[str, str | None]] = []

        def info(self, msg: str) -> None: ...
        def progress(self, msg: str) -> None: ...
        def group(self, title: str) -> nullcontext[None]:
            return nullcontext()

        def warning(self, msg: str, title: str | None = None) -> None:
            self.warnings.append((msg, title))

    log = Log()
    with Scripted(fake_bucket("301")) as server:
        settings = make_settings(tmp_path, server.url).model_copy(update={"bucket": "site"})
        keys = Keys("AKIASCRIPTED0000", "scripted-secret")
        store, _ = deploy.connect(settings, lambda: None, log, keys=keys, env={})  # type: ignore[arg-type,return-value]
        assert store.list_objects("") == []
    assert [title for _, title in log.warnings] == ["Wrong region"]
    assert f"`aws-region: {REAL_REGION}`" in log.warnings[0][0]
