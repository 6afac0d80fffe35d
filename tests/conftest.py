"""Shared fixtures: real local servers, started once per test session, only when asked for.

- `seaweed`: SeaweedFS (`weed mini`) with a random secret key (the closest to AWS S3 here).
- `moto_aws`: moto server for CloudFront and STS (and S3, for moto-only checks).
- `rclone`: `rclone serve s3` (a second S3 implementation with its own quirks).
- `gen_tables`: `docs/gen_tables.py` loaded as a module (for the README checks).

A server that cannot start fails the tests that need it (never skips them): a run that
silently tests nothing is worse than a red one. Each `Server` has `endpoint`,
`access_key`, `secret_key`, `log_path` and `client(service)`.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

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


@pytest.fixture(scope="session")
def gen_tables() -> ModuleType:
    """`docs/gen_tables.py` (the README tables' generator; docs/ is not a package)."""
    if "gen_tables" in sys.modules:
        return sys.modules["gen_tables"]
    path = Path(__file__).resolve().parent.parent / "docs" / "gen_tables.py"
    spec = importlib.util.spec_from_file_location("gen_tables", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_tables"] = module  # before running it: its dataclass looks itself up
    spec.loader.exec_module(module)
    return module
