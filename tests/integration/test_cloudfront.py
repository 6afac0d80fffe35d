"""CloudFrontCDN against moto server (and a small busy-CloudFront proxy in front of it)."""

from __future__ import annotations

import http.client
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployer import aws
from deployer.cloudfront import CloudFrontCDN, origin_path_to_prefix, site_url
from deployer.errors import RemoteError
from deployer.settings import Settings, load_settings
from devtools.servers import Server


def error_xml(code: str) -> bytes:
    return (
        '<?xml version="1.0"?><ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/'
        f'2020-05-31/"><Error><Type>Sender</Type><Code>{code}</Code>'
        "<Message>refused</Message></Error><RequestId>r</RequestId></ErrorResponse>"
    ).encode()


def make_settings(tmp_path: Path) -> Settings:
    site = tmp_path / "ws" / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "index.html").write_text("x")
    flags = {"bucket": "placeholder", "source-dir": "site", "aws-region": "ap-northeast-2"}
    return load_settings(flags, {"GITHUB_WORKSPACE": str(tmp_path / "ws")}, tmp_path)


def make_cdn(
    endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sleeps: list[float] | None = None,
) -> CloudFrontCDN:
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFRONT", endpoint)
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    client = aws.cloudfront_client(session, make_settings(tmp_path))
    record = sleeps if sleeps is not None else []
    return CloudFrontCDN(client, sleep=record.append, poll_interval_s=0.01)


def create_distribution(
    moto_aws: Server, origins: list[tuple[str, str]], aliases: tuple[str, ...] = ()
) -> str:
    items: list[dict[str, Any]] = []
    for i, (domain, path) in enumerate(origins):
        item: dict[str, Any] = {"Id": f"o{i}", "DomainName": domain, "OriginPath": path}
        if ".s3." in domain:
            item["S3OriginConfig"] = {"OriginAccessIdentity": ""}
        else:
            item["CustomOriginConfig"] = {
                "HTTPPort": 80,
                "HTTPSPort": 443,
                "OriginProtocolPolicy": "https-only",
            }
        items.append(item)
    config: Any = {
        "CallerReference": uuid.uuid4().hex,
        "Comment": "",
        "Enabled": True,
        "Origins": {"Quantity": len(items), "Items": items},
        "Aliases": {"Quantity": len(aliases), "Items": list(aliases)},
        "DefaultCacheBehavior": {
            "TargetOriginId": "o0",
            "ViewerProtocolPolicy": "allow-all",
            "MinTTL": 0,
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
        },
    }
    resp = moto_aws.client("cloudfront").create_distribution(DistributionConfig=config)
    return resp["Distribution"]["Id"]


@pytest.fixture
def cdn(moto_aws: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CloudFrontCDN:
    return make_cdn(moto_aws.endpoint, tmp_path, monkeypatch)


def test_origin_path_from_the_bucket_origin(moto_aws: Server, cdn: CloudFrontCDN) -> None:
    """The origin whose domain is the bucket's S3 domain gives the key prefix served at `/`."""
    dist = create_distribution(
        moto_aws,
        [
            ("assets.example.com", "/x"),
            ("my-site.s3.ap-northeast-2.amazonaws.com", "/app/v2"),
        ],
    )
    assert cdn.distribution(dist, "my-site").origin_prefix == "app/v2/"
    root = create_distribution(moto_aws, [("my-site.s3.amazonaws.com", "")])
    assert cdn.distribution(root, "my-site").origin_prefix == ""
    assert cdn.distribution(root, "other-bucket").origin_prefix is None  # not this bucket


def test_site_url_is_the_first_alias_else_the_cloudfront_domain(
    moto_aws: Server, cdn: CloudFrontCDN
) -> None:
    """The same GetDistribution answer gives the site's address: the first alias that is a
    host name, else the distribution's `*.cloudfront.net` domain."""
    origin = [("my-site.s3.amazonaws.com", "")]
    plain = create_distribution(moto_aws, origin)
    domain = moto_aws.client("cloudfront").get_distribution(Id=plain)["Distribution"]
    assert domain["DomainName"].endswith(".cloudfront.net")
    assert cdn.distribution(plain, "my-site").site_url == "https://" + domain["DomainName"]
    named = create_distribution(moto_aws, origin, ("*.example.com", "www.example.com"))
    assert cdn.distribution(named, "my-site").site_url == "https://www.example.com"


def test_site_url_spelling() -> None:
    """Wildcard aliases are skipped; a trailing dot and upper case are dropped."""
    assert site_url(["*.a.com", "Shop.Example.com."], "d1.cloudfront.net") == (
        "https://shop.example.com"
    )
    assert site_url([], "d1.cloudfront.net") == "https://d1.cloudfront.net"
    assert site_url(["*.a.com"], "") == ""


def test_origin_path_prefix_mapping() -> None:
    """OriginPath strings map to key prefixes."""
    assert origin_path_to_prefix("") == ""
    assert origin_path_to_prefix("/") == ""
    assert origin_path_to_prefix("/app") == "app/"
    assert origin_path_to_prefix("/a/b/") == "a/b/"


def test_missing_distribution_names_the_input(cdn: CloudFrontCDN) -> None:
    """NoSuchDistribution: a clear error naming `distribution-id`."""
    with pytest.raises(RemoteError) as caught:
        cdn.distribution("E0000000000000", "my-site")
    assert "`distribution-id`" in str(caught.value)
    with pytest.raises(RemoteError):
        cdn.invalidate("E0000000000000", ["/index.html"], "ref")


def test_invalidate_and_wait(moto_aws: Server, cdn: CloudFrontCDN) -> None:
    """An invalidation is created with the paths; wait sees COMPLETED case-insensitively."""
    dist = create_distribution(moto_aws, [("my-site.s3.amazonaws.com", "")])
    paths = ("/", "/index.html", "/%ED%95%9C%EA%B8%80.html")
    result = cdn.invalidate(dist, paths, "ref-1")
    assert result.distribution_id == dist
    assert result.invalidation_id
    assert result.paths == paths
    listed = moto_aws.client("cloudfront").get_invalidation(
        DistributionId=dist, Id=result.invalidation_id
    )
    assert listed["Invalidation"]["InvalidationBatch"]["Paths"]["Items"] == list(paths)
    assert listed["Invalidation"]["InvalidationBatch"]["CallerReference"] == "ref-1"
    assert cdn.wait(dist, result.invalidation_id, timeout_s=5).lower() == "completed"


class BusyCloudFront:
    """Answers the first `busy` calls whose path ends with `path_suffix` (by default
    CreateInvalidation) with error `code` (status `status`); forwards the rest to moto."""

    def __init__(
        self,
        upstream: str,
        busy: int,
        *,
        code: str = "TooManyInvalidationsInProgress",
        status: int = 400,
        path_suffix: str | tuple[str, ...] = "/invalidation",
        method: str = "POST",
    ) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.busy = busy
        self.refused = 0
        reply = error_xml(code)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if (
                    self.command == method
                    and self.path.endswith(path_suffix)
                    and outer.refused < outer.busy
                ):
                    outer.refused += 1
                    self.send_response(status)
                    self.send_header("Content-Type", "text/xml")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                    return
                conn = http.client.HTTPConnection(outer.upstream, timeout=30)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("connection", "keep-alive")
                }
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = _relay  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> BusyCloudFront:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def busy_proxy(moto_aws: Server) -> Iterator[BusyCloudFront]:
    with BusyCloudFront(moto_aws.endpoint, busy=3) as proxy:
        yield proxy


def test_too_many_invalidations_is_retried_with_backoff(
    moto_aws: Server,
    busy_proxy: BusyCloudFront,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """TooManyInvalidationsInProgress three times, then success; the waits grow."""
    dist = create_distribution(moto_aws, [("my-site.s3.amazonaws.com", "")])
    sleeps: list[float] = []
    cdn = make_cdn(busy_proxy.url, tmp_path, monkeypatch, sleeps)
    result = cdn.invalidate(dist, ["/index.html"], "ref-busy")
    assert result.invalidation_id
    assert busy_proxy.refused == 3
    assert len(sleeps) == 3
    assert sleeps[0] < sleeps[2]  # exponential backoff (jitter stays within each ceiling)


def test_too_many_invalidations_gives_up_with_a_clear_error(
    moto_aws: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Still busy after every attempt: an error that says what to do, after bounded waits."""
    dist = create_distribution(moto_aws, [("my-site.s3.amazonaws.com", "")])
    with BusyCloudFront(moto_aws.endpoint, busy=100) as proxy:
        sleeps: list[float] = []
        cdn = make_cdn(proxy.url, tmp_path, monkeypatch, sleeps)
        with pytest.raises(RemoteError) as caught:
            cdn.invalidate(dist, ["/index.html"], "ref-busy")
    assert proxy.refused == cdn.attempts
    assert len(sleeps) == cdn.attempts - 1
    assert sum(sleeps) < 300
    assert "TooManyInvalidationsInProgress" in str(caught.value)
    assert "re-run" in str(caught.value)


def test_access_denied_on_invalidation_names_the_permission(
    moto_aws: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AccessDenied on CreateInvalidation names `cloudfront:CreateInvalidation` and the ARN."""
    dist = create_distribution(moto_aws, [("my-site.s3.amazonaws.com", "")])
    with BusyCloudFront(moto_aws.endpoint, busy=100, code="AccessDenied", status=403) as proxy:
        cdn = make_cdn(proxy.url, tmp_path, monkeypatch)
        with pytest.raises(RemoteError) as caught:
            cdn.invalidate(dist, ["/index.html"], "ref")
    assert proxy.refused == 1  # not retried
    assert "`cloudfront:CreateInvalidation`" in str(caught.value)
    assert f"distribution/{dist}" in str(caught.value)


def lookup_denied(
    moto_aws: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    denied: tuple[str, ...],
) -> tuple[str | None, str, int]:
    """Look up a distribution (origin `/app`, alias `a.example`) while the calls whose path
    ends with one of `denied` are refused (AccessDenied): (prefix, site URL, refusals)."""
    dist = create_distribution(moto_aws, [("my-site.s3.amazonaws.com", "/app")], ("a.example",))
    suffixes = tuple(suffix.replace("DIST", dist) for suffix in denied)
    with BusyCloudFront(
        moto_aws.endpoint,
        busy=100,
        code="AccessDenied",
        status=403,
        path_suffix=suffixes,
        method="GET",
    ) as proxy:
        found = make_cdn(proxy.url, tmp_path, monkeypatch).distribution(dist, "my-site")
    return found.origin_prefix, found.site_url, proxy.refused


def test_access_denied_on_distribution_means_unknown_origin(
    moto_aws: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `cloudfront:GetDistribution` nor `GetDistributionConfig` the origin path and
    the address are unknown (None, ""), no error."""
    denied = ("/distribution/DIST", "/config")
    assert lookup_denied(moto_aws, tmp_path, monkeypatch, denied) == (None, "", 2)


def test_a_policy_with_only_get_distribution_config_still_works(
    moto_aws: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A policy written for earlier releases (GetDistributionConfig, not GetDistribution):
    the origin path and aliases come from the configuration instead."""
    denied = ("/distribution/DIST",)
    assert lookup_denied(moto_aws, tmp_path, monkeypatch, denied) == (
        "app/",
        "https://a.example",
        1,
    )
