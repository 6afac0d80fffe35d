"""The deploy record end to end, against SeaweedFS (through `devtools.faultproxy` where a
test must fail a write, count requests or rewrite what the server answers).

- Under `destination-prefix` the record lives at `<prefix>/.s3-cloudfront-deploy.json`,
  and a rerun after a failed run reads it there, so it still invalidates what the failed
  run wrote.
- A deploy that only deletes rewrites the record; the next no-change run is one LIST.
- A server that sends upper-case ETags is read like AWS's lower-case ones.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deployer import record
from devtools.faultproxy import FaultProxy, Faults
from devtools.servers import Server
from tests.integration.conftest import RunAction
from tests.integration.test_deploy import (
    RECORD_KEY,
    invalidations,
    json_output,
    listing,
    local_files,
    succeeded,
)

pytestmark = pytest.mark.integration

ASSET = "assets/index-DiwrgTda.js"


def test_prefixed_record_is_read_at_its_key_after_a_failed_run(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    site: Path,
    seaweed: Server,
    moto_aws: Server,
    bucket: str,
    distribution: str,
) -> None:
    """A failed run under `app/` uploads an asset; the clean rerun reads `app/`'s record and
    invalidates that asset although it uploads only the page the failed run held back."""
    inputs = {**deploy_inputs, "destination-prefix": "app"}
    succeeded(run_action(workspace, inputs))
    s3 = seaweed.client("s3")
    keys = set(listing(s3, bucket))
    assert "app/" + RECORD_KEY in keys and RECORD_KEY not in keys
    recorded, problem = record.decode(
        s3.get_object(Bucket=bucket, Key="app/" + RECORD_KEY)["Body"].read()
    )
    assert problem is None and set(recorded) == {"app/" + k for k in local_files(site)}

    (site / ASSET).write_bytes(b"console.log('v2');\n")
    (site / "index.html").write_bytes(b"<!doctype html><title>v2</title>")
    refused = Faults(fail_keys=r"^app/index\.html$", fail_with="denied")
    with FaultProxy(seaweed.endpoint, refused) as proxy:
        failed = run_action(workspace, {**inputs, "endpoint-url": proxy.url})
    assert failed.returncode != 0, failed.describe()
    assert json_output(failed, "changed-keys") == ["app/" + ASSET]
    before = len(invalidations(moto_aws.client("cloudfront"), distribution))

    rerun = succeeded(run_action(workspace, inputs))
    assert json_output(rerun, "changed-keys") == ["app/index.html"]
    expected = {"/app/", "/app/index.html", "/app/" + ASSET}
    assert set(json_output(rerun, "invalidation-paths")) == expected
    assert len(invalidations(moto_aws.client("cloudfront"), distribution)) == before + 1


def test_delete_only_deploy_rewrites_the_record_and_the_next_run_is_one_list(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    site: Path,
    seaweed: Server,
    moto_aws: Server,
    bucket: str,
    distribution: str,
) -> None:
    """Deleting a file rewrites the record without it; the next run sends one request
    (the LIST: no record GET, no HEAD) and creates no invalidation."""
    succeeded(run_action(workspace, deploy_inputs))
    (site / "images/hero.png").unlink()
    result = succeeded(run_action(workspace, deploy_inputs))
    assert result.outputs["uploaded-count"] == "0"
    assert json_output(result, "changed-keys") == ["images/hero.png"]
    s3 = seaweed.client("s3")
    recorded, _ = record.decode(s3.get_object(Bucket=bucket, Key=RECORD_KEY)["Body"].read())
    assert set(recorded) == set(local_files(site))
    cloudfront = moto_aws.client("cloudfront")
    count = len(invalidations(cloudfront, distribution))

    with FaultProxy(seaweed.endpoint) as proxy:
        quiet = succeeded(run_action(workspace, {**deploy_inputs, "endpoint-url": proxy.url}))
        stats = proxy.stats
    assert dict(stats.requests) == {"GET": 1}, stats.requests  # the listing only
    assert quiet.outputs["uploaded-count"] == "0"
    assert quiet.outputs["invalidation-id"] == ""
    assert len(invalidations(cloudfront, distribution)) == count


def _upper_case_etags(method: str, path: str, status: int, body: bytes) -> bytes:
    """Answer listings with upper-case ETags, as some S3-compatible servers do."""
    if method != "GET" or b"<ListBucketResult" not in body:
        return body
    return re.sub(rb"(<ETag>)(.*?)(</ETag>)", lambda m: m[1] + m[2].upper() + m[3], body)


def test_upper_case_etags_are_read_as_the_same_md5(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    seaweed: Server,
) -> None:
    """With every listed ETag in upper case, a no-change deploy still uploads nothing and
    reads nothing but the listing."""
    with FaultProxy(seaweed.endpoint, response_hook=_upper_case_etags) as proxy:
        inputs = {**deploy_inputs, "endpoint-url": proxy.url}
        succeeded(run_action(workspace, inputs))
        proxy.reset_stats()
        again = succeeded(run_action(workspace, inputs))
        stats = proxy.stats
    assert again.outputs["uploaded-count"] == "0"
    assert json_output(again, "changed-keys") == []
    assert dict(stats.requests) == {"GET": 1}, stats.requests
