"""Integration fixtures: a fresh bucket, a CloudFront distribution, a workspace, `run_action`.

`run_action(workspace, inputs, extra_env=None)` runs `entrypoint.py` in a subprocess the way
the GitHub runner runs the container: every declared input as `INPUT_<NAME>` (hyphens
kept) with its default, `inputs` on top; `GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`,
`GITHUB_WORKSPACE`; `AWS_ENDPOINT_URL_S3` at SeaweedFS and `AWS_ENDPOINT_URL_CLOUDFRONT` /
`AWS_ENDPOINT_URL_STS` at moto server; nothing `AWS_*` inherited. It returns an
`ActionResult` (returncode, stdout, stderr, outputs, summary).

`deploy_inputs` holds what a user's workflow would set: the SeaweedFS keys, region,
bucket, distribution and `source-dir: site`.
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import pytest

from devtools.action import REPO_ROOT, ActionResult, run_entrypoint
from devtools.servers import Server, create_distribution

EXAMPLE_SITE = Path(os.environ.get("S3CFD_EXAMPLE_SITE", REPO_ROOT / "examples" / "site"))
SITE_DIR = "site"  # where the workspace holds its copy of the example site


class RunAction(Protocol):
    def __call__(
        self,
        workspace: Path,
        inputs: Mapping[str, str],
        extra_env: Mapping[str, str] | None = None,
    ) -> ActionResult: ...


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration talks to real servers: mark it `integration`."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def bucket(seaweed: Server) -> str:
    """A fresh, empty bucket on SeaweedFS, unique to the test."""
    name = f"it-{uuid.uuid4().hex[:16]}"
    seaweed.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def distribution(moto_aws: Server, bucket: str) -> str:
    """The ID of a fresh distribution in front of `bucket`."""
    return create_distribution(moto_aws, bucket)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A checkout-like folder holding a copy of examples/site as `site/`."""
    if not (EXAMPLE_SITE / "index.html").is_file():
        pytest.fail(f"the example site is missing: {EXAMPLE_SITE}/index.html")
    root = tmp_path / "workspace"
    root.mkdir()
    shutil.copytree(EXAMPLE_SITE, root / SITE_DIR, symlinks=True)
    return root


@pytest.fixture
def site(workspace: Path) -> Path:
    """The published folder inside `workspace`."""
    return workspace / SITE_DIR


@pytest.fixture
def deploy_inputs(seaweed: Server, bucket: str, distribution: str) -> dict[str, str]:
    """The inputs a user's workflow would set for this bucket and distribution."""
    return {
        "aws-access-key-id": seaweed.access_key,
        "aws-secret-access-key": seaweed.secret_key,
        "aws-region": seaweed.region,
        "bucket": bucket,
        "distribution-id": distribution,
        "source-dir": SITE_DIR,
    }


@pytest.fixture
def run_action(seaweed: Server, moto_aws: Server, tmp_path: Path) -> RunAction:
    """Run the action's entrypoint against SeaweedFS (S3) and moto (CloudFront, STS)."""
    counter = itertools.count(1)
    endpoints = {"s3": seaweed.endpoint, "cloudfront": moto_aws.endpoint, "sts": moto_aws.endpoint}

    def run(
        workspace: Path,
        inputs: Mapping[str, str],
        extra_env: Mapping[str, str] | None = None,
    ) -> ActionResult:
        return run_entrypoint(
            workspace,
            inputs,
            endpoints=endpoints,
            extra_env=extra_env,
            runner_dir=tmp_path / f"runner-{next(counter)}",
        )

    return run
