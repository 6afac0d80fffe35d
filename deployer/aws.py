"""botocore configuration and the client factories: the one place clients are made.

- Retries: botocore's `standard` mode, bounded (`TOTAL_ATTEMPTS` per request, the
  first one included), with exponential backoff and jitter; it retries S3
  `SlowDown`, 5xx, throttling, connection resets and timeouts.
- `max_pool_connections` covers every worker thread: one client is shared by all
  of them (botocore clients are thread-safe), so the pool must not be the cap.
- Checksums only when an operation requires them: S3-compatible servers such as
  Cloudflare R2 reject the newest default (CRC32 trailers on every PutObject).
  Integrity of each PutObject is kept by an explicit `Content-MD5` instead.
- Endpoints: the `endpoint-url` input wins over `AWS_ENDPOINT_URL` and
  `AWS_ENDPOINT_URL_S3`; without it botocore honours those variables itself.
  Any custom S3 endpoint gets path-style addressing (MinIO, SeaweedFS and local
  servers do not resolve `bucket.host` names).
- Models: botocore's data loader is told the three services the program uses
  (`prepare_session`), so it does not list every service folder before loading one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, cast

from botocore.config import Config
from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader, instance_cache
from botocore.utils import parse_timestamp

from deployer.concurrency import most
from deployer.endpoints import (
    CONNECT_TIMEOUT_S,
    MULTIPART_CONCURRENCY,
    POOL_HEADROOM,
    READ_TIMEOUT_S,
    TOTAL_ATTEMPTS,
    s3_endpoint,
)
from deployer.settings import Settings

__all__ = ["TOTAL_ATTEMPTS", "s3_endpoint"]  # re-exported: tests patch and call them here

if TYPE_CHECKING:
    import boto3.session
    import botocore.session
    from mypy_boto3_cloudfront import CloudFrontClient
    from mypy_boto3_s3 import S3Client

    AnySession = botocore.session.Session | boto3.session.Session

SERVICES = ("cloudfront", "s3", "sts")  # sorted, as botocore lists them


class ServicesLoader(Loader):
    """botocore's data loader, limited to `SERVICES`.

    Before it loads a model, botocore checks the service name against the list of every
    service it has: a `listdir` and a `stat` per service folder, for the model and again
    for the endpoint rules. With a full botocore (400+ services; the image keeps three)
    that cost ~20 ms of CPU before the first request. Everything else is botocore's own.
    """

    @instance_cache
    def list_available_services(self, type_name: str) -> list[str]:
        available = []
        for name in SERVICES:
            try:
                self.list_api_versions(name, type_name)
            except DataNotFoundError:
                continue
            available.append(name)
        return available


def prepare_session(session: botocore.session.Session) -> botocore.session.Session:
    """Give a new session the `ServicesLoader` (with botocore's `AWS_DATA_PATH` handling)."""
    data_path = session.get_config_variable("data_path")
    extra = None
    if data_path is not None:  # as botocore's `create_loader` reads it
        paths = data_path.split(os.pathsep)
        extra = [os.path.expanduser(os.path.expandvars(p)) for p in paths]  # noqa: PTH111
    session.register_component("data_loader", ServicesLoader(extra_search_paths=extra))
    return session


def client_config(settings: Settings, *, path_style: bool = False) -> Config:
    """The botocore Config every client uses."""
    config = Config(
        region_name=settings.aws_region,
        retries={"mode": "standard", "total_max_attempts": TOTAL_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        tcp_keepalive=True,
        max_pool_connections=most(settings.concurrency) + MULTIPART_CONCURRENCY + POOL_HEADROOM,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        user_agent_extra="s3-cloudfront-deploy",
    )
    if path_style:
        config = config.merge(Config(s3={"addressing_style": "path"}))
    return config


def fast_timestamp(value: str) -> datetime:
    """Response timestamps without dateutil when they are ISO 8601 (ListObjectsV2's
    `LastModified`): botocore's default parser cost 0.1 s of CPU per 2,000 listed keys.
    Anything else (HTTP dates, naive times) goes to botocore's own parser."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return parse_timestamp(value)
    return parsed if parsed.tzinfo is not None else parse_timestamp(value)


def _core(session: AnySession) -> botocore.session.Session:
    """The botocore session (the program makes botocore sessions; a boto3 one is unwrapped)."""
    inner = getattr(session, "_session", None)
    return cast("botocore.session.Session", inner if inner is not None else session)


def use_fast_timestamps(session: AnySession) -> None:
    """Make every client created from `session` from now on parse timestamps fast."""
    factory = _core(session).get_component("response_parser_factory")
    factory.set_parser_defaults(timestamp_parser=fast_timestamp)


def s3_client(
    session: AnySession,
    settings: Settings,
    env: Mapping[str, str] | None = None,
) -> S3Client:
    """One S3 client for the whole run, shared by every worker thread.

    `env` is the environment botocore reads (default `os.environ`); it is only
    consulted to decide on path-style addressing for a custom endpoint.
    """
    endpoint = s3_endpoint(settings, env)
    config = client_config(settings, path_style=endpoint is not None)
    use_fast_timestamps(session)
    # Passing endpoint_url explicitly overrides AWS_ENDPOINT_URL(_S3); None leaves them be.
    client = _core(session).create_client("s3", endpoint_url=settings.endpoint_url, config=config)
    return cast("S3Client", client)


def cloudfront_client(session: AnySession, settings: Settings) -> CloudFrontClient:
    """The CloudFront client (a global service; `AWS_ENDPOINT_URL_CLOUDFRONT` is honoured)."""
    config = client_config(settings).merge(Config(region_name="us-east-1"))
    return cast("CloudFrontClient", _core(session).create_client("cloudfront", config=config))
