"""S3Store against real S3 servers: SeaweedFS (close to AWS) and rclone serve s3 (quirky)."""

from __future__ import annotations

import hashlib
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployer import aws, endpoints, record, s3wire
from deployer.errors import CredentialsError
from deployer.model import Headers, LocalFile, ObjectState
from deployer.s3 import ReadDenied, S3Error, S3Store
from deployer.settings import Settings, load_settings
from devtools.faultproxy import ALL_METHODS, FaultProxy, Faults
from devtools.servers import Server

HTML = Headers("text/html; charset=utf-8", "no-cache")
PNG = Headers("image/png", "public, max-age=300")


def make_settings(tmp_path: Path, endpoint: str, **inputs: str) -> Settings:
    site = tmp_path / "ws" / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "index.html").write_text("x")
    flags = {
        "bucket": "placeholder",
        "source-dir": "site",
        "aws-region": "us-east-1",
        "endpoint-url": endpoint,
        **inputs,
    }
    return load_settings(flags, {"GITHUB_WORKSPACE": str(tmp_path / "ws")}, tmp_path)


def make_store(
    server: Server,
    bucket: str,
    tmp_path: Path,
    *,
    endpoint: str | None = None,
    secret: str | None = None,
    access_key: str | None = None,
    wire: bool = True,
    **store_args: Any,
) -> S3Store:
    """A store as `deploy.connect` makes it (single PUTs through `s3wire`), or with
    `wire=False` one that sends everything through botocore (what a proxy forces)."""
    settings = make_settings(tmp_path, endpoint or server.endpoint)
    session = boto3.session.Session(
        aws_access_key_id=access_key or server.access_key,
        aws_secret_access_key=secret or server.secret_key,
        region_name=server.region,
    )
    credentials = session.get_credentials() if wire else None
    client = aws.s3_client(session, settings, env={})
    store = S3Store(client, bucket, credentials=credentials, **store_args)
    assert (store._fast_path() is not None) == wire
    return store


def local_file(tmp_path: Path, key: str, body: bytes, headers: Headers = HTML) -> LocalFile:
    path = tmp_path / "files" / hashlib.sha1(key.encode()).hexdigest()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return LocalFile(
        key=key, where=str(path), size=len(body), md5=hashlib.md5(body).hexdigest(), headers=headers
    )


@pytest.fixture(params=["seaweed", "rclone"])
def server(request: pytest.FixtureRequest) -> Server:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


@pytest.fixture
def s3_bucket(server: Server) -> str:
    name = f"st-{uuid.uuid4().hex[:16]}"
    server.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["wire", "botocore"])
def store(
    server: Server, s3_bucket: str, tmp_path: Path, request: pytest.FixtureRequest
) -> S3Store:
    return make_store(server, s3_bucket, tmp_path, wire=request.param == "wire")


def test_put_head_list_round_trip(store: S3Store, server: Server, tmp_path: Path) -> None:
    """put_file stores bytes, headers and md5 metadata; head and list read them back."""
    body = b"<h1>hello</h1>"
    file = local_file(tmp_path, "docs/index.html", body)
    etag = store.put_file(file)
    assert etag == file.md5
    state = store.head("docs/index.html")
    assert state is not None
    assert state.md5 == file.md5  # rclone returns the key as `Md5`
    assert state.etag == file.md5
    assert state.headers == HTML
    listing = store.list_objects("")
    assert [(o.key, o.size, o.etag) for o in listing] == [("docs/index.html", len(body), etag)]
    got = server.client("s3").get_object(Bucket=store.bucket, Key="docs/index.html")
    assert got["Body"].read() == body


def test_empty_listing_and_missing_objects(store: S3Store) -> None:
    """An empty bucket lists as [] (rclone omits KeyCount); missing keys give None."""
    assert store.list_objects("") == []
    assert store.list_objects("nothing/") == []
    assert store.head("nope.html") is None
    assert store.get_record("nope.json") is None


def test_listing_paginates_and_filters_by_prefix(
    server: Server, s3_bucket: str, tmp_path: Path
) -> None:
    """Every page is read (page size 3 over 8 objects) and only keys under the prefix come back."""
    store = make_store(server, s3_bucket, tmp_path, page_size=3)
    client = server.client("s3")
    for i in range(7):
        client.put_object(Bucket=s3_bucket, Key=f"app/f{i}.txt", Body=b"x" * i)
    client.put_object(Bucket=s3_bucket, Key="other.txt", Body=b"o")
    listing = store.list_objects("app/")
    assert sorted(o.key for o in listing) == [f"app/f{i}.txt" for i in range(7)]
    assert {o.size for o in listing} == set(range(7))
    assert all(o.etag == o.etag.lower() and '"' not in o.etag for o in listing)
    assert len(store.list_objects("")) == 8


def test_unicode_and_special_keys(store: S3Store, tmp_path: Path) -> None:
    """Korean names, spaces, `#`, `+` and parentheses survive put, list, head and delete."""
    keys = ["한글/파일 (1).html", "a b/c#d+e.html", "%41.html"]
    for key in keys:
        store.put_file(local_file(tmp_path, key, key.encode()))
    assert sorted(o.key for o in store.list_objects("")) == sorted(keys)
    for key in keys:
        state = store.head(key)
        assert state is not None and state.md5 == hashlib.md5(key.encode()).hexdigest()
    assert store.delete(keys) == []
    assert store.list_objects("") == []


def test_copy_headers_replaces_headers_keeps_bytes_and_md5(
    store: S3Store, server: Server, tmp_path: Path
) -> None:
    """copy_headers changes Content-Type/Cache-Control without touching bytes or md5 metadata."""
    body = b"\x89PNG fake image bytes"
    file = local_file(tmp_path, "img/logo.png", body, headers=Headers("text/plain", "no-cache"))
    etag = store.put_file(file)
    new = LocalFile(file.key, file.where, file.size, file.md5, PNG)
    assert store.copy_headers(new) == etag  # same bytes, same single-part ETag
    state = store.head("img/logo.png")
    assert state is not None
    assert state.headers == PNG
    assert state.md5 == file.md5
    got = server.client("s3").get_object(Bucket=store.bucket, Key="img/logo.png")
    assert got["Body"].read() == body


def multipart_etag(body: bytes, part_size: int) -> str:
    """The ETag S3 gives a multipart upload: the MD5 of the parts' MD5s, `-` the count."""
    chunks = [body[i : i + part_size] for i in range(0, len(body), part_size)]
    digests = b"".join(hashlib.md5(chunk).digest() for chunk in chunks)
    return f"{hashlib.md5(digests).hexdigest()}-{len(chunks)}"


@pytest.mark.parametrize("wire", [True, False], ids=["wire", "botocore"])
def test_multipart_upload_keeps_headers_and_md5(
    server: Server, s3_bucket: str, tmp_path: Path, wire: bool
) -> None:
    """Above the threshold, the upload is multipart (through s3wire, or s3transfer without
    the wire) and still carries headers and md5; the ETag returned is the object's."""
    store = make_store(
        server,
        s3_bucket,
        tmp_path,
        wire=wire,
        multipart_threshold=5 * 1024 * 1024,
        part_size=5 * 1024 * 1024,
    )
    body = os.urandom(11 * 1024 * 1024)
    file = local_file(tmp_path, "video/big.bin", body, headers=PNG)
    etag = store.put_file(file)
    listed = store.list_objects("video/")
    if server.name == "seaweedfs":
        # AWS-style multipart ETag: not the MD5 of the bytes, the same in the listing.
        assert etag == multipart_etag(body, 5 * 1024 * 1024) == listed[0].etag
    elif wire:
        # rclone answers CompleteMultipartUpload with the AWS-style ETag but lists the whole
        # file's MD5: the ETag is taken from Complete's answer (no HEAD), as on AWS.
        assert etag == multipart_etag(body, 5 * 1024 * 1024)
        assert listed[0].etag == file.md5
    else:
        assert etag == listed[0].etag == file.md5  # s3transfer's path HEADs for it
    state = store.head("video/big.bin")
    assert state is not None and state.md5 == file.md5 and state.headers == PNG
    got = server.client("s3").get_object(Bucket=s3_bucket, Key="video/big.bin")
    assert got["Body"].read() == body
    assert (got["ContentType"], got["CacheControl"]) == (PNG.content_type, PNG.cache_control)


def test_record_round_trip(store: S3Store) -> None:
    """put_record (streamed as it is encoded) then get_record returns the same bytes."""
    entries = {
        f"블로그/page-{n:05}.html": ObjectState(etag=f"{n:032x}", md5=f"{n:032x}", headers=HTML)
        for n in range(3000)
    }
    body = record.prepared_from(entries)
    store.put_record("app/.s3-cloudfront-deploy.json", body)
    got = store.get_record("app/.s3-cloudfront-deploy.json")
    assert got == record.encode(entries)
    assert record.decode(got or b"") == (entries, None)


@pytest.mark.parametrize("wire", [True, False], ids=["wire", "botocore"])
def test_delete_in_batches(
    server: Server, s3_bucket: str, tmp_path: Path, wire: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deletes go in batches (batch size 2 over 5 keys) with Content-MD5; missing keys are
    not failures."""
    store = make_store(server, s3_bucket, tmp_path, delete_batch=2, wire=wire)
    client = server.client("s3")
    keys = [f"k{i}" for i in range(5)]
    for key in keys:
        client.put_object(Bucket=s3_bucket, Key=key, Body=b"x")
    client.put_object(Bucket=s3_bucket, Key="keep", Body=b"x")
    sent: list[dict[str, str]] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append({k.lower(): str(v) for k, v in request.headers.items()})

    def signing(*args: Any, **kwargs: Any) -> dict[str, str]:
        headers = real_sign(*args, **kwargs)
        if args[0] == "POST":
            sent.append({k.lower(): v for k, v in headers.items()})
        return headers

    real_sign = s3wire.sign
    monkeypatch.setattr(s3wire, "sign", signing)
    if not wire:
        store.client.meta.events.register("before-send.s3.DeleteObjects", capture)
    assert store.delete([*keys, "never-existed"]) == []
    assert len(sent) == 3  # 6 keys in batches of 2
    assert all("content-md5" in headers for headers in sent)  # for strict S3-compatibles
    assert [o.key for o in store.list_objects("")] == ["keep"]


def test_delete_failures_are_reported_per_key(seaweed: Server, bucket: str, tmp_path: Path) -> None:
    """A DeleteObjects answer listing errors gives (key, reason) per failed key."""
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/'
        b'doc/2006-03-01/"><Error><Key>a.html</Key><Code>AccessDenied</Code><Message>no'
        b"</Message></Error></DeleteResult>"
    )

    def deny_one(method: str, path: str, status: int, answer: bytes) -> bytes:
        return body if method == "POST" and "delete" in path else answer

    with FaultProxy(seaweed.endpoint, response_hook=deny_one) as proxy:
        store = make_store(seaweed, bucket, tmp_path, endpoint=proxy.url)
        assert store.delete(["a.html", "b.html"]) == [("a.html", "access denied")]


def test_put_file_rejects_changed_bytes(store: S3Store, tmp_path: Path) -> None:
    """Content-MD5 makes the server refuse bytes that do not match the scanned MD5."""
    file = local_file(tmp_path, "a.html", b"original")
    Path(file.path).write_bytes(b"modified")  # edited after it was hashed (same size)
    with pytest.raises(S3Error) as caught:
        store.put_file(file)
    assert "BadDigest" in caught.value.short
    assert store.head("a.html") is None


def test_missing_bucket_names_the_input(server: Server, tmp_path: Path) -> None:
    """NoSuchBucket says which `bucket` is missing and how to fix it."""
    store = make_store(server, "no-such-bucket-here", tmp_path)
    with pytest.raises(S3Error) as caught:
        store.list_objects("")
    assert "`bucket`" in str(caught.value)
    assert "no-such-bucket-here" in str(caught.value)


def test_wrong_secret_names_the_credentials_input_and_hides_it(
    server: Server, s3_bucket: str, tmp_path: Path
) -> None:
    """A wrong secret key: CredentialsError naming `aws-secret-access-key`, never the value."""
    secret = "WRONG" + uuid.uuid4().hex
    store = make_store(server, s3_bucket, tmp_path, secret=secret)
    with pytest.raises(CredentialsError) as caught:
        store.list_objects("")
    assert "`aws-secret-access-key`" in str(caught.value)
    assert secret not in str(caught.value)
    assert server.secret_key not in str(caught.value)


def test_unknown_access_key_names_the_input(server: Server, s3_bucket: str, tmp_path: Path) -> None:
    """An unknown access key ID: CredentialsError naming `aws-access-key-id`."""
    store = make_store(server, s3_bucket, tmp_path, access_key="AKIANOTAKEY00000000X")
    with pytest.raises(CredentialsError) as caught:
        store.list_objects("")
    assert "`aws-access-key-id`" in str(caught.value)


@pytest.mark.parametrize("operation", ["list", "put"])
def test_unreachable_endpoint_names_endpoint_url(
    seaweed: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    """Nothing listening: after its attempts, an error naming `endpoint-url`, with no
    credentials from the URL in it."""
    monkeypatch.setattr(endpoints, "TOTAL_ATTEMPTS", 2)
    monkeypatch.setattr(aws, "TOTAL_ATTEMPTS", 2)
    from devtools.servers import free_port

    endpoint = f"http://user:pa55word@127.0.0.1:{free_port()}"
    store = make_store(seaweed, "any-bucket", tmp_path, endpoint=endpoint)
    with pytest.raises(S3Error) as caught:
        if operation == "list":
            store.list_objects("")
        else:
            store.put_file(local_file(tmp_path, "a.html", b"a"))
    assert caught.value.short == "could not connect"
    assert "`endpoint-url`" in str(caught.value)
    assert "pa55word" not in str(caught.value)


def test_access_denied_names_the_iam_action(seaweed: Server, bucket: str, tmp_path: Path) -> None:
    """A 403 on PutObject names `s3:PutObject` and the resource ARN."""
    with FaultProxy(
        seaweed.endpoint, Faults(fail_keys=r"secret\.html$", fail_with="denied")
    ) as proxy:
        store = make_store(seaweed, bucket, tmp_path, endpoint=proxy.url)
        with pytest.raises(S3Error) as caught:
            store.put_file(local_file(tmp_path, "secret.html", b"x"))
    assert caught.value.short == "access denied"
    assert "`s3:PutObject`" in str(caught.value)
    assert f"arn:aws:s3:::{bucket}/*" in str(caught.value)


def test_read_denied_is_distinguishable(seaweed: Server, bucket: str, tmp_path: Path) -> None:
    """A 403 on HEAD or GET raises ReadDenied (the deploy degrades it to a warning)."""
    client = seaweed.client("s3")
    client.put_object(Bucket=bucket, Key="locked.html", Body=b"x")
    client.put_object(Bucket=bucket, Key=".s3-cloudfront-deploy.json", Body=b"{}")
    faults = Faults(
        methods=ALL_METHODS,
        fail_keys=r"^(locked\.html|\.s3-cloudfront-deploy\.json)$",
        fail_with="denied",
    )
    with FaultProxy(seaweed.endpoint, faults) as proxy:
        store = make_store(seaweed, bucket, tmp_path, endpoint=proxy.url)
        with pytest.raises(ReadDenied) as head_denied:
            store.head("locked.html")
        with pytest.raises(ReadDenied) as get_denied:
            store.get_record(".s3-cloudfront-deploy.json")
    assert "`s3:GetObject`" in str(head_denied.value)
    assert get_denied.value.title == "Access denied"


def test_transient_faults_are_retried(seaweed: Server, bucket: str, tmp_path: Path) -> None:
    """503 SlowDown, 500 and connection resets on writes are retried until they land."""
    faults = Faults(slowdown=0.3, internal=0.2, reset=0.2, max_faults_per_key=3, seed=7)
    with FaultProxy(seaweed.endpoint, faults) as proxy:
        store = make_store(seaweed, bucket, tmp_path, endpoint=proxy.url)
        files = [local_file(tmp_path, f"f{i}.html", f"file {i}".encode()) for i in range(30)]
        with ThreadPoolExecutor(8) as pool:
            etags = list(pool.map(store.put_file, files))
        stats = proxy.stats
    assert etags == [f.md5 for f in files]
    assert stats.faults > 0
    client = seaweed.client("s3")
    for f in files:
        assert (
            client.get_object(Bucket=bucket, Key=f.key)["Body"].read() == Path(f.path).read_bytes()
        )


def test_endpoint_input_wins_over_environment(seaweed: Server, tmp_path: Path) -> None:
    """`endpoint-url` beats AWS_ENDPOINT_URL_S3; without it the variable is used, path-style."""
    settings = make_settings(tmp_path, seaweed.endpoint)
    session = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b")
    env = {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"}
    client = aws.s3_client(session, settings, env=env)
    assert client.meta.endpoint_url == seaweed.endpoint
    assert getattr(client.meta.config, "s3", None) == {"addressing_style": "path"}
    no_input = settings.model_copy(update={"endpoint_url": None})
    assert aws.s3_endpoint(no_input, env) == "http://127.0.0.1:9"
    retries = getattr(aws.client_config(no_input), "retries", None)
    assert retries == {"mode": "standard", "total_max_attempts": aws.TOTAL_ATTEMPTS}


class _LoseSecondPost(FaultProxy):
    """Forwards everything; the answer to the second POST (CompleteMultipartUpload) is lost."""

    posts = 0

    def _decide(self, method: str, key: str) -> Any:
        decided = super()._decide(method, key)
        if method == "POST":
            self.posts += 1
            if self.posts == 2:
                return "lost"
        return decided


def test_multipart_with_lost_complete_answer_is_accepted(
    server: Server, s3_bucket: str, tmp_path: Path
) -> None:
    """A retried Complete that the server answers NoSuchUpload (rclone) still counts as landed."""
    body = os.urandom(11 * 1024 * 1024)
    file = local_file(tmp_path, "big/lost-complete.bin", body, headers=PNG)
    proxy = _LoseSecondPost(server.endpoint, Faults())
    with proxy:
        store = make_store(
            server,
            s3_bucket,
            tmp_path,
            endpoint=proxy.url,
            multipart_threshold=5 * 1024 * 1024,
            part_size=5 * 1024 * 1024,
        )
        etag = store.put_file(file)
        assert proxy.posts >= 3  # create, the lost complete, the retried complete
    state = make_store(server, s3_bucket, tmp_path).head(file.key)
    assert state is not None and state.md5 == file.md5
    assert etag in (state.etag, multipart_etag(body, 5 * 1024 * 1024))  # rclone: see above
    got = server.client("s3").get_object(Bucket=s3_bucket, Key=file.key)["Body"].read()
    assert got == body
    assert not server.client("s3").list_multipart_uploads(Bucket=s3_bucket).get("Uploads")


# -- the s3wire PUT path: the same errors as botocore's, from the same causes ------------------


def test_wire_put_errors_name_the_input(server: Server, s3_bucket: str, tmp_path: Path) -> None:
    """Through s3wire, a wrong secret, an unknown key and a missing bucket give the same
    errors as through botocore, and never the secret."""
    file = local_file(tmp_path, "a.html", b"a")
    secret = "WRONG" + uuid.uuid4().hex
    with pytest.raises(CredentialsError) as wrong_secret:
        make_store(server, s3_bucket, tmp_path, secret=secret).put_file(file)
    assert "`aws-secret-access-key`" in str(wrong_secret.value)
    assert secret not in str(wrong_secret.value)
    with pytest.raises(CredentialsError) as unknown_key:
        make_store(server, s3_bucket, tmp_path, access_key="AKIANOTAKEY00000000X").put_file(file)
    assert "`aws-access-key-id`" in str(unknown_key.value)
    if server.name == "seaweedfs":
        return  # SeaweedFS creates a missing bucket on PUT (through botocore too)
    with pytest.raises(S3Error) as no_bucket:
        make_store(server, "no-such-bucket-here", tmp_path).put_file(file)
    assert "`bucket`" in str(no_bucket.value) and no_bucket.value.code == "NoSuchBucket"


def test_wire_streams_large_files_and_rereads_them_on_retry(
    seaweed: Server, bucket: str, tmp_path: Path
) -> None:
    """A file above SMALL_BODY is streamed from disk; a reset after the body is retried with the
    file reopened, and the object lands byte-identical with its MD5 as ETag."""
    body = os.urandom(3 * 1024 * 1024 + 5)
    faults = Faults(reset=1.0, max_faults_per_key=2, seed=3)
    with FaultProxy(seaweed.endpoint, faults) as proxy:
        store = make_store(seaweed, bucket, tmp_path, endpoint=proxy.url)
        file = local_file(tmp_path, "big.bin", body, PNG)
        assert store.put_file(file) == file.md5
        assert proxy.stats.faults == 2
    got = seaweed.client("s3").get_object(Bucket=bucket, Key="big.bin")
    assert got["Body"].read() == body
    assert got["ContentType"] == "image/png"


def test_proxy_variables_send_puts_through_botocore(
    seaweed: Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """http.client does not speak HTTP proxies: with one configured for the endpoint the
    store keeps every request on botocore, which honours it."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    settings = make_settings(tmp_path, seaweed.endpoint)
    session = boto3.session.Session(
        aws_access_key_id=seaweed.access_key, aws_secret_access_key=seaweed.secret_key
    )
    store = S3Store(
        aws.s3_client(session, settings, env={}), bucket, credentials=session.get_credentials()
    )
    assert store._fast_path() is None
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    bypassed = S3Store(
        aws.s3_client(session, settings, env={}), bucket, credentials=session.get_credentials()
    )
    assert bypassed._fast_path() is not None


def test_listing_from_a_web_server_names_endpoint_url(seaweed: Server, tmp_path: Path) -> None:
    """`endpoint-url` pointing at an ordinary web server (200 with HTML): one error naming
    `endpoint-url`, not a parser traceback."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><body>Welcome</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{web.server_address[1]}"
        store = make_store(seaweed, "site", tmp_path, endpoint=endpoint)
        with pytest.raises(S3Error) as caught:
            store.list_objects("")
    finally:
        web.shutdown()
        web.server_close()
    assert caught.value.title == "Not an S3 endpoint"
    assert "`endpoint-url`" in str(caught.value)


@pytest.mark.parametrize("wire", [True, False], ids=["wire", "botocore"])
def test_a_listing_that_repeats_its_token_stops(
    seaweed: Server, bucket: str, tmp_path: Path, wire: bool
) -> None:
    """A server answering every page with the same NextContinuationToken: one clear error
    naming the endpoint's fault after two pages (as botocore's paginator), not an endless loop."""
    client = seaweed.client("s3")
    for i in range(3):
        client.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    pages: list[str] = []

    def loop(method: str, path: str, status: int, answer: bytes) -> bytes:
        if method != "GET" or "list-type=2" not in path:
            return answer
        pages.append(path)
        return answer.replace(
            b"<IsTruncated>false</IsTruncated>",
            b"<IsTruncated>true</IsTruncated><NextContinuationToken>same</NextContinuationToken>",
        )

    with FaultProxy(seaweed.endpoint, response_hook=loop) as proxy:
        store = make_store(seaweed, bucket, tmp_path, endpoint=proxy.url, wire=wire)
        with pytest.raises(S3Error) as caught:
            store.list_objects("")
    assert len(pages) == 2, pages
    assert caught.value.title == "S3 listing never ends"
    assert "continuation token it had already given" in str(caught.value)
    assert "`endpoint-url`" in str(caught.value)


def test_a_wrong_clock_is_named_not_access_denied(
    seaweed: Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests signed an hour in the past: the server's RequestTimeTooSkewed becomes an
    error saying the clock is wrong and how to fix it, not "Access denied". (rclone answers
    a plain AccessDenied, with no code to tell.)"""
    from datetime import UTC, datetime, timedelta

    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y%m%dT%H%M%SZ")
    monkeypatch.setattr(s3wire, "amz_now", lambda: an_hour_ago)
    store = make_store(seaweed, bucket, tmp_path)
    with pytest.raises(S3Error) as caught:
        store.list_objects("")
    assert caught.value.code in ("RequestTimeTooSkewed", "RequestExpired")
    assert caught.value.title == "System clock is wrong"
    assert "timedatectl set-ntp" in str(caught.value)
    assert "Access denied" not in str(caught.value)
