"""s3wire's pure parts: SigV4 signatures equal botocore's, targets, error codes, backoff."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import quote
from xml.etree import ElementTree

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials, ReadOnlyCredentials

from deployer.s3wire import (
    UNSIGNED_PAYLOAD,
    BodyChangedError,
    ChunkReader,
    ExactReader,
    ListPage,
    Target,
    Wire,
    WireProtocolError,
    backoff_s,
    complete_body,
    delete_body,
    error_code,
    first_answer_s,
    is_retryable,
    new_connection,
    parse_complete,
    parse_delete_errors,
    parse_list_page,
    parse_upload_id,
    sign,
)


def botocore_signed(
    method: str, url: str, headers: dict[str, str], creds: Credentials, region: str
) -> AWSRequest:
    request = AWSRequest(method=method, url=url, data=b"body", headers=headers)
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    S3SigV4Auth(creds, "s3", region).add_auth(request)
    return request


@pytest.mark.parametrize(
    ("key", "token", "region", "host", "base"),
    [
        ("index.html", None, "us-east-1", "site.s3.us-east-1.amazonaws.com", ""),
        (
            "assets/app.3f2a.js",
            "FwoGZX//token+with/slashes==",
            "eu-west-1",
            "s3.eu-west-1.amazonaws.com",
            "/my.bucket",
        ),
        ("블로그/첫 글 #1?.html", None, "auto", "acct.r2.cloudflarestorage.com", "/site"),
        ("a//b/~c+d=e&f", "tok", "ap-northeast-2", "127.0.0.1:8333", "/bkt"),
    ],
)
def test_put_signature_equals_botocores(
    key: str, token: str | None, region: str, host: str, base: str
) -> None:
    """The same request signed by botocore's S3SigV4Auth and by `sign` carries the same
    Authorization header (same canonical request, signed headers and signature)."""
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    target = Target(scheme="https", netloc=host, base_path=base, region=region)
    path = target.path(key)
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "public,  max-age=300",
        "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
        "x-amz-meta-md5": "d41d8cd98f00b204e9800998ecf8427e",
        "Content-Length": "4",
    }
    theirs = botocore_signed("PUT", f"https://{host}{path}", dict(headers), creds, region)
    ours = sign(
        "PUT",
        path,
        {},
        {**headers, "Host": host},
        credentials=ReadOnlyCredentials("AKIDEXAMPLE", creds.secret_key, token),
        region=region,
        amz_date=theirs.headers["X-Amz-Date"],
    )
    assert (
        ours["X-Amz-Content-SHA256"] == theirs.headers["X-Amz-Content-SHA256"] == UNSIGNED_PAYLOAD
    )
    assert ours["Authorization"] == theirs.headers["Authorization"]
    assert ours.get("X-Amz-Security-Token") == theirs.headers.get("X-Amz-Security-Token")


def test_query_signature_equals_botocores() -> None:
    """Query parameters are canonicalised like botocore's (sorted, RFC 3986 encoded)."""
    creds = Credentials("AKIDEXAMPLE", "secret", None)
    query = {"list-type": "2", "prefix": "블로그/a b+c", "continuation-token": "x/y=="}
    encoded = "&".join(f"{k}={quote(v, safe='-_.~')}" for k, v in query.items())
    theirs = botocore_signed("GET", f"http://h:9/bkt?{encoded}", {}, creds, "us-east-1")
    ours = sign(
        "GET",
        "/bkt",
        query,
        {"Host": "h:9"},
        credentials=ReadOnlyCredentials("AKIDEXAMPLE", "secret", None),
        region="us-east-1",
        amz_date=theirs.headers["X-Amz-Date"],
    )
    assert ours["Authorization"] == theirs.headers["Authorization"]


def test_target_from_prepared_requests() -> None:
    """Target reads botocore's prepared request: host, the path before the key, the region."""
    auth = (
        "AWS4-HMAC-SHA256 Credential=AKID/20261127/{region}/{service}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    )
    virtual = Target.from_request(
        "https://site.s3.eu-west-1.amazonaws.com/probe",
        auth.format(region="eu-west-1", service="s3"),
        "probe",
    )
    assert virtual == Target("https", "site.s3.eu-west-1.amazonaws.com", "", "eu-west-1")
    path_style = Target.from_request(
        "http://127.0.0.1:8333/site/probe", auth.format(region="us-east-1", service="s3"), "probe"
    )
    assert path_style == Target("http", "127.0.0.1:8333", "/site", "us-east-1")
    assert path_style.path("a b/ü.html") == "/site/a%20b/%C3%BC.html"
    # Signature Version 2, another service, or a URL not ending with the key: not ours.
    assert Target.from_request("https://h/site/probe", "AWS AKID:sig", "probe") is None
    other = auth.format(region="us-east-1", service="s3-object-lambda")
    assert Target.from_request("https://h/site/probe", other, "probe") is None
    s3 = auth.format(region="us-east-1", service="s3")
    assert Target.from_request("https://h/site/other", s3, "probe") is None


def test_error_code_and_retry_decision() -> None:
    body = b'<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>m</Message></Error>'
    assert error_code(body) == "SlowDown"
    assert error_code(b"") == "" and error_code(b"<html>bad gateway</html>") == ""
    assert is_retryable(503, "SlowDown") and is_retryable(500, "")
    assert is_retryable(400, "RequestTimeout")
    assert not is_retryable(403, "AccessDenied") and not is_retryable(400, "BadDigest")
    assert not is_retryable(404, "NoSuchBucket")


def test_backoff_is_full_jitter_capped() -> None:
    assert backoff_s(0, lambda: 1.0) == 1.0
    assert backoff_s(3, lambda: 0.5) == 4.0
    assert backoff_s(10, lambda: 1.0) == 20.0
    assert backoff_s(4, lambda: 0.0) == 0.0


@pytest.mark.parametrize(
    ("since_asked", "since_sent", "opened_in", "expected"),
    [
        # opened for the request: its handshake is in the time since it was asked for
        (0.36, 0.36, None, 0.36),
        # opened ahead over a real link: the handshake's round trip, then the request's
        (0.18, 0.18, 0.18, 0.36),
        # opened ahead through something near that accepts at once (the benchmark's
        # relay): counted as a round trip like the request's own, not as nothing
        (0.09, 0.09, 0.0005, 0.18),
        # TLS: a handshake of two round trips counts as it is
        (0.18, 0.18, 0.36, 0.54),
        # waited for a connection still opening: the wait is in `since_asked`
        (0.50, 0.18, 0.2, 0.50),
    ],
)
def test_first_answer_counts_a_connections_opening_as_at_least_a_round_trip(
    since_asked: float, since_sent: float, opened_in: float | None, expected: float
) -> None:
    assert first_answer_s(since_asked, since_sent, opened_in) == pytest.approx(expected)


S3_NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def test_list_page_parses_aws_answers_and_decodes_keys() -> None:
    """AWS's shape (namespace, quoted ETags, url-encoded keys) and a continuation token."""
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult {S3_NS}><Name>site</Name><Prefix></Prefix><KeyCount>3</KeyCount>
<MaxKeys>3</MaxKeys><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
<Contents><Key>index.html</Key><LastModified>2026-11-27T01:00:00.000Z</LastModified>
<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size></Contents>
<Contents><Key>%EB%B8%94%EB%A1%9C%EA%B7%B8/a+b%2Bc.html</Key><ETag>"abc-2"</ETag><Size>12</Size></Contents>
<Contents><Key>x%26y%3C.js</Key><ETag>"e"</ETag><Size>7</Size></Contents>
</ListBucketResult>""".encode()
    page = parse_list_page(body)
    assert page.objects == [
        ("index.html", 0, '"d41d8cd98f00b204e9800998ecf8427e"'),
        ("블로그/a b+c.html", 12, '"abc-2"'),
        ("x&y<.js", 7, '"e"'),
    ]
    assert page.next_token == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="


def test_list_page_without_encoding_keeps_keys_and_ends() -> None:
    """A server that ignores `encoding-type` (no EncodingType): keys are taken as they are;
    no namespace, unquoted ETags and no KeyCount (rclone) are fine; not truncated = last."""
    body = b"""<ListBucketResult><IsTruncated>false</IsTruncated>
<Contents><Key>a+b%20c.txt</Key><ETag>abc</ETag><Size>3</Size></Contents></ListBucketResult>"""
    page = parse_list_page(body)
    assert page.objects == [("a+b%20c.txt", 3, "abc")]
    assert page.next_token is None
    assert parse_list_page(b"<ListBucketResult/>") == ListPage([], None)


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Welcome to nginx</body></html>",
        b"not xml at all",
        b"<ListBucketResult><Contents><Key>a</Key><Size>lots</Size></Contents></ListBucketResult>",
        b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
    ],
)
def test_list_page_rejects_what_s3_does_not_send(body: bytes) -> None:
    with pytest.raises(WireProtocolError):
        parse_list_page(body)


def test_delete_body_escapes_keys_and_errors_parse() -> None:
    """Keys with XML characters survive the request body; each <Error> becomes (key, code)."""
    body = delete_body(["a&b<c>.html", "블로그/x y.js"])
    assert body.startswith(b"<Delete><Quiet>true</Quiet>")
    root = ElementTree.fromstring(body)
    assert [key.text for key in root.iter("Key")] == ["a&b<c>.html", "블로그/x y.js"]
    answer = f"""<DeleteResult {S3_NS}><Deleted><Key>ok</Key></Deleted>
<Error><Key>a&amp;b&lt;c&gt;.html</Key><Code>AccessDenied</Code><Message>m</Message></Error>
</DeleteResult>""".encode()
    assert parse_delete_errors(answer) == [("a&b<c>.html", "AccessDenied")]
    assert parse_delete_errors(f"<DeleteResult {S3_NS}/>".encode()) == []
    with pytest.raises(WireProtocolError):
        parse_delete_errors(b"<html>proxy error</html>")


@pytest.mark.parametrize("size", [1, 7, 64, 10_000, -1])
def test_chunk_reader_gives_the_chunks_bytes_in_reads_of_any_size(size: int) -> None:
    chunks = [b"", b"abc", b"", b"defghij" * 5, b"k" * 100, b"xyz"]
    reader = ChunkReader(iter(chunks))
    got = []
    while block := reader.read(size):
        assert size < 0 or len(block) <= size
        got.append(block)
    assert b"".join(got) == b"".join(chunks)


# -- multipart uploads ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "root", ["InitiateMultipartUploadResult", "InitiateMultipartUpload"], ids=["aws", "rclone"]
)
def test_upload_id_is_read_whatever_the_root_is_named(root: str) -> None:
    """AWS's `...Result` root and rclone's `<InitiateMultipartUpload>` both give the UploadId."""
    answer = f"<?xml version='1.0'?><{root} {S3_NS}><Bucket>b</Bucket><Key>k</Key>"
    answer += f"<UploadId>2~abc.DEF_-</UploadId></{root}>"
    assert parse_upload_id(answer.encode()) == "2~abc.DEF_-"


@pytest.mark.parametrize("body", [b"<html>hi</html>", b"not xml", b"<R><UploadId> </UploadId></R>"])
def test_an_answer_without_upload_id_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(WireProtocolError):
        parse_upload_id(body)


def test_complete_body_lists_parts_in_order_with_their_etags() -> None:
    """Part numbers from 1 with each part's ETag as the server sent it (quotes escaped)."""
    body = complete_body(['"aaa"', '"bbb"', "ccc"])
    root = ElementTree.fromstring(body)
    assert root.tag == "CompleteMultipartUpload"
    got = [(p.findtext("PartNumber"), p.findtext("ETag")) for p in root.iter("Part")]
    assert got == [("1", '"aaa"'), ("2", '"bbb"'), ("3", "ccc")]


def test_complete_answer_gives_the_etag_or_the_error_inside_a_200() -> None:
    """The object's ETag, also after the spaces S3 sends to keep a long Complete alive; an
    `<Error>` in the 200 answer gives its code instead."""
    ok = f"""<?xml version="1.0"?><CompleteMultipartUploadResult {S3_NS}><Location>l</Location>
<Bucket>b</Bucket><Key>k</Key><ETag>"3858f62230ac3c915f300c664312c11f-9"</ETag>
</CompleteMultipartUploadResult>"""
    assert parse_complete(ok.encode()) == ('"3858f62230ac3c915f300c664312c11f-9"', "")
    kept_alive = b"   \n  " + b"<Error><Code>InternalError</Code><Message>m</Message></Error>"
    assert parse_complete(kept_alive) == ("", "InternalError")
    with pytest.raises(WireProtocolError):
        parse_complete(b"<html>")


def test_exact_reader_sends_a_slice_of_a_file_of_the_hashed_size(tmp_path: Path) -> None:
    """A part: `length` bytes from `offset`, if the file still has its hashed size; another
    size is BodyChangedError naming the whole file's sizes."""
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(100)))
    reader = ExactReader(path.open("rb"), 30, offset=50, size=100)
    got = b""
    while block := reader.read(7):
        got += block
    reader.close()
    assert got == bytes(range(50, 80))
    with pytest.raises(BodyChangedError) as caught:
        ExactReader(path.open("rb"), 30, offset=50, size=120)
    assert (caught.value.expected, caught.value.found) == (120, 100)


def test_idle_connections_are_taken_oldest_first() -> None:
    """The connection parked longest ago goes to the next request: something near may
    accept a connection at once and reach the far end only a round trip later, so the
    newest is the least likely to be ready (`Wire._idle`)."""
    target = Target("http", "127.0.0.1:9", "/b", "us-east-1")
    wire = Wire(
        target,
        Credentials("AKIDEXAMPLE", "secret"),
        attempts=1,
        connect_timeout=1.0,
        read_timeout=1.0,
        user_agent="test",
    )
    pairs = [socket.socketpair() for _ in range(3)]
    conns = []
    for ours, _ in pairs:
        conn = new_connection(target, None, 1.0, 1.0)
        conn.sock = ours
        conns.append(conn)
        wire._release(conn)
    try:
        assert [wire._connection(target) for _ in conns] == conns
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()
