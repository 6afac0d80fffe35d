"""Where S3 requests go, and how patiently: decided without importing botocore.

Network limits shared by botocore's clients (`deployer/aws.py`) and `deployer/s3wire.py`.

`s3_target` resolves a bucket's address by itself in the two common cases, so a deploy
with keys known up front (key inputs or ambient keys) lists and uploads before botocore
is even imported (it costs ~0.14 s of CPU to import botocore and build an S3 client):

- a custom endpoint (`endpoint-url`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`; the
  variables not when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is `true`, as botocore):
  path style, `{endpoint}/{bucket}/{key}`, signed for `aws-region`, exactly what the
  botocore client is configured to do (`aws.s3_client`);
- AWS in a standard commercial region, with no AWS config file and none of the variables
  that change AWS endpoints (FIPS, dual-stack, a profile): virtual-hosted
  `https://{bucket}.s3.{region}.amazonaws.com/{key}` (`s3.amazonaws.com` in us-east-1),
  or path style on that host for bucket names with dots (their names break the
  wildcard TLS certificate), as botocore's endpoint rules give.

Everything else (GovCloud, China, FIPS, dual-stack, profiles and config files that may
set any of those) returns None: the address then comes from botocore itself
(`s3._probe_target`). A unit test compares both resolutions for every case here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

from deployer.awsconfig import config_path, ignores_configured_endpoints
from deployer.s3wire import Target, host_port

TOTAL_ATTEMPTS = 6  # 1 try + 5 retries; standard mode backs off up to 20 s between them
CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60
POOL_HEADROOM = 4  # listing and the record share the pool with the workers
MULTIPART_CONCURRENCY = 8  # parts in flight for the one large file uploaded at a time

S3_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
# Variables that can make botocore choose another AWS endpoint than the plain regional one.
BOTOCORE_ENDPOINT_VARIABLES = (
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT",
)


class Place(Protocol):
    """Where the bucket is, as the inputs say: the validated `Settings`, or the raw inputs
    guessed before validation (`early.py`). Nothing here needs pydantic."""

    @property
    def aws_region(self) -> str: ...
    @property
    def bucket(self) -> str: ...
    @property
    def endpoint_url(self) -> str | None: ...


_COMMERCIAL_REGION = re.compile(
    r"(us|eu|ap|sa|ca|me|af|il|mx)-(central|north|south|east|west|"
    r"northeast|northwest|southeast|southwest)-\d{1,2}"
)


def s3_endpoint(settings: Place, env: Mapping[str, str] | None = None) -> str | None:
    """The custom S3 endpoint in effect, if any: the input first, then the variables,
    unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` says to ignore them (as botocore does:
    an explicit endpoint still counts, configured ones do not)."""
    if settings.endpoint_url:
        return settings.endpoint_url
    environ = os.environ if env is None else env
    if ignores_configured_endpoints(environ):
        return None
    for name in S3_ENDPOINT_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def s3_target(settings: Place, env: Mapping[str, str]) -> Target | None:
    """The bucket's address when it can be known without botocore (see the module doc)."""
    region = settings.aws_region
    endpoint = s3_endpoint(settings, env)
    if endpoint is not None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            return None
        base = f"{parts.path.rstrip('/')}/{settings.bucket}"
        return Target(parts.scheme, host_port(endpoint), base, region)
    if any(env.get(name, "").strip() for name in BOTOCORE_ENDPOINT_VARIABLES):
        return None
    if _has_aws_config(env) or not _COMMERCIAL_REGION.fullmatch(region):
        return None
    # botocore keeps S3's global host for us-east-1 (unless told otherwise, see above).
    host = "s3.amazonaws.com" if region == "us-east-1" else f"s3.{region}.amazonaws.com"
    if "." in settings.bucket:
        return Target("https", host, f"/{settings.bucket}", region)
    return Target("https", f"{settings.bucket}.{host}", "", region)


def behind_proxy(target: Target) -> bool:
    """An HTTP proxy is configured for `target` (and does not bypass its host): botocore
    honours proxies and `http.client` does not, so such a bucket is reached through
    botocore only (`s3.make_wire`, `early.guess`)."""
    import urllib.request  # noqa: PLC0415

    host = target.netloc.rsplit(":", 1)[0] if "]" not in target.netloc else target.netloc
    return bool(urllib.request.getproxies().get(target.scheme)) and not bool(
        urllib.request.proxy_bypass(host)
    )


def _has_aws_config(env: Mapping[str, str]) -> bool:
    """A non-empty AWS config file (it may set endpoints, FIPS or dual-stack)."""
    path = config_path(env)
    try:
        return path is not None and path.stat().st_size > 0
    except OSError:
        return False
