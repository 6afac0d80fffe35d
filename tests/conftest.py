"""Shared fixtures: real local servers, started once per test session, only when asked for.

- `seaweed`: SeaweedFS (`weed mini`) with a random secret key (the closest to AWS S3 here).
- `moto_aws`: moto server for CloudFront and STS (and S3, for moto-only checks).
- `rclone`: `rclone serve s3` (a second S3 implementation with its own quirks).

A server that cannot start fails the tests that need it (never skips them): a run that
silently tests nothing is worse than a red one. Each `Server` has `endpoint`,
`access_key`, `secret_key`, `log_path` and `client(service)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.servers import Server, moto_server, rclone_s3, seaweedfs


@pytest.fixture(scope="session")
def servers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data and log files of the session's servers (kept by pytest for debugging)."""
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def seaweed(servers_dir: Path) -> Iterator[Server]:
    with seaweedfs(servers_dir) as server:
        yield server


@pytest.fixture(scope="session")
def moto_aws(servers_dir: Path) -> Iterator[Server]:
    with moto_server(servers_dir) as server:
        yield server


@pytest.fixture(scope="session")
def rclone(servers_dir: Path) -> Iterator[Server]:
    with rclone_s3(servers_dir) as server:
        yield server
