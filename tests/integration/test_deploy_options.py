"""The action end to end with the inputs that change what a deploy does.

Same setup as test_deploy.py: `entrypoint.py` as the runner runs it, SeaweedFS for S3,
moto server for CloudFront, a fresh bucket and distribution per test. Plus the local
command line with a `.env` file, and the harness's own parser of `GITHUB_OUTPUT`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from deployer.interface import INPUTS
from devtools.action import ActionResult, input_env, parse_github_output, run_entrypoint
from devtools.servers import Server, create_distribution
from tests.integration.test_deploy import (
    RECORD_KEY,
    invalidations,
    json_output,
    listing,
    local_files,
    same_size_edit,
    succeeded,
    touch_all,
)

if TYPE_CHECKING:
    from tests.integration.conftest import RunAction

pytestmark = pytest.mark.integration

PNGS = ("images/hero.png", "images/icon-192.png")


def test_header_rule_change_copies_in_place_without_sending_bytes(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    seaweed: Server,
    moto_aws: Server,
    bucket: str,
    distribution: str,
) -> None:
    """A new `cache-control` rule reaches S3 by a server-side copy: 0 bytes sent."""
    succeeded(run_action(workspace, deploy_inputs))
    s3 = seaweed.client("s3")
    bodies = {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in PNGS}

    result = succeeded(
        run_action(workspace, {**deploy_inputs, "cache-control": "*.png: public, max-age=60"})
    )

    assert json_output(result, "changed-keys") == sorted(PNGS)
    assert result.outputs["uploaded-count"] == str(len(PNGS))
    assert result.outputs["uploaded-bytes"] == "0"
    for key in PNGS:
        obj = s3.get_object(Bucket=bucket, Key=key)
        assert obj.get("CacheControl") == "public, max-age=60", key
        assert obj["ContentType"] == "image/png", key
        assert obj["Body"].read() == bodies[key], key
    expected_paths = {"/" + key for key in PNGS}
    assert set(json_output(result, "invalidation-paths")) == expected_paths
    assert invalidations(moto_aws.client("cloudfront"), distribution) == [
        (result.outputs["invalidation-id"], expected_paths)
    ]


def test_destination_prefix_keeps_everything_outside_it(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    site: Path,
    seaweed: Server,
    moto_aws: Server,
    bucket: str,
    distribution: str,
) -> None:
    """Keys go under the prefix, objects outside it are never deleted, and the
    invalidation paths carry the prefix (the origin path is empty)."""
    s3 = seaweed.client("s3")
    s3.put_object(Bucket=bucket, Key="index.html", Body=b"<p>production</p>")
    s3.put_object(Bucket=bucket, Key="preview/pr-7/index.html", Body=b"<p>other preview</p>")
    inputs = {**deploy_inputs, "destination-prefix": "preview/pr-42"}
    succeeded(run_action(workspace, inputs))
    files = local_files(site)
    prefixed = {"preview/pr-42/" + key for key in files}
    outside = {"index.html", "preview/pr-7/index.html"}
    assert set(listing(s3, bucket)) == prefixed | outside | {"preview/pr-42/" + RECORD_KEY}

    same_size_edit(site / "index.html")
    (site / "robots.txt").unlink()
    result = succeeded(run_action(workspace, inputs))

    assert json_output(result, "changed-keys") == [
        "preview/pr-42/index.html",
        "preview/pr-42/robots.txt",
    ]
    expected_paths = {
        "/preview/pr-42/",
        "/preview/pr-42/index.html",
        "/preview/pr-42/robots.txt",
    }
    assert set(json_output(result, "invalidation-paths")) == expected_paths
    assert invalidations(moto_aws.client("cloudfront"), distribution) == [
        (result.outputs["invalidation-id"], expected_paths)
    ]
    remaining = set(listing(s3, bucket))
    assert outside <= remaining
    assert "preview/pr-42/robots.txt" not in remaining
    assert s3.get_object(Bucket=bucket, Key="index.html")["Body"].read() == b"<p>production</p>"


def test_delete_removed_false_and_exclude_keep_remote_objects(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    site: Path,
    seaweed: Server,
    bucket: str,
) -> None:
    """`delete-removed: false` deletes nothing; an `exclude` pattern protects remote objects."""
    s3 = seaweed.client("s3")
    s3.put_object(Bucket=bucket, Key="legacy/old.html", Body=b"<p>old</p>")
    s3.put_object(Bucket=bucket, Key="stale.txt", Body=b"stale")

    kept = succeeded(run_action(workspace, {**deploy_inputs, "delete-removed": "false"}))
    assert kept.outputs["deleted-count"] == "0"
    assert {"legacy/old.html", "stale.txt"} <= set(listing(s3, bucket))

    pruned = succeeded(run_action(workspace, {**deploy_inputs, "exclude": "legacy/\n*.map"}))
    assert pruned.outputs["deleted-count"] == "1"
    assert json_output(pruned, "changed-keys") == ["stale.txt"]
    remote = set(listing(s3, bucket))
    assert "legacy/old.html" in remote
    assert "stale.txt" not in remote
    assert set(local_files(site)) <= remote


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("all", {"/*"}), ("none", None)],
)
def test_invalidation_all_and_none(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    site: Path,
    moto_aws: Server,
    distribution: str,
    mode: str,
    expected: set[str] | None,
) -> None:
    """`invalidation: all` sends `/*`; `none` sends nothing (the upload still happens)."""
    succeeded(run_action(workspace, deploy_inputs))
    same_size_edit(site / "about" / "index.html")

    result = succeeded(run_action(workspace, {**deploy_inputs, "invalidation": mode}))

    assert json_output(result, "changed-keys") == ["about/index.html"]
    sent = invalidations(moto_aws.client("cloudfront"), distribution)
    if expected is None:
        assert sent == []
        assert result.outputs["invalidation-id"] == ""
    else:
        assert sent == [(result.outputs["invalidation-id"], expected)]


def test_many_changes_roll_up_to_wildcards(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    site: Path,
    moto_aws: Server,
    distribution: str,
) -> None:
    """More changed paths than `invalidation-max-paths`: the narrowest wildcard covers them."""
    guides = site / "guides"
    guides.mkdir()
    for n in range(20):
        (guides / f"page-{n:02}.html").write_text(f"<p>{n}</p>\n", encoding="utf-8")
    succeeded(run_action(workspace, deploy_inputs))
    for n in range(20):
        (guides / f"page-{n:02}.html").write_text(f"<p>{n} v2</p>\n", encoding="utf-8")

    result = succeeded(run_action(workspace, {**deploy_inputs, "invalidation-max-paths": "5"}))

    assert result.outputs["uploaded-count"] == "20"
    assert json_output(result, "invalidation-paths") == ["/guides/*"]
    assert invalidations(moto_aws.client("cloudfront"), distribution) == [
        (result.outputs["invalidation-id"], {"/guides/*"})
    ]


def test_two_distributions_are_both_invalidated(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    site: Path,
    moto_aws: Server,
    bucket: str,
    distribution: str,
) -> None:
    """Several distribution IDs: one invalidation each, IDs comma-separated in the output."""
    second = create_distribution(moto_aws, bucket)
    inputs = {**deploy_inputs, "distribution-id": f"{distribution}\n{second}"}
    succeeded(run_action(workspace, inputs))
    same_size_edit(site / "about" / "index.html")

    result = succeeded(run_action(workspace, inputs))

    cloudfront = moto_aws.client("cloudfront")
    first_sent = invalidations(cloudfront, distribution)
    second_sent = invalidations(cloudfront, second)
    expected_paths = {"/about/", "/about/index.html"}
    assert [paths for _, paths in first_sent + second_sent] == [expected_paths] * 2
    assert result.outputs["invalidation-id"].split(",") == [first_sent[0][0], second_sent[0][0]]


def test_endpoint_url_input_wins_over_the_environment(
    workspace: Path, site: Path, rclone: Server, moto_aws: Server, tmp_path: Path
) -> None:
    """`endpoint-url` (here rclone serve s3) beats an `AWS_ENDPOINT_URL_S3` that points nowhere."""
    bucket = "endpoint-input-test"
    rclone.client("s3").create_bucket(Bucket=bucket)
    inputs = {
        "aws-access-key-id": rclone.access_key,
        "aws-secret-access-key": rclone.secret_key,
        "bucket": bucket,
        "source-dir": "site",
        "endpoint-url": rclone.endpoint,
    }
    nowhere = {"s3": "http://127.0.0.1:9", "cloudfront": moto_aws.endpoint}
    result = run_entrypoint(workspace, inputs, endpoints=nowhere, runner_dir=tmp_path / "r1")
    assert result.returncode == 0, result.describe()
    files = local_files(site)
    assert result.outputs["uploaded-count"] == str(len(files))
    stored = {
        obj["Key"] for obj in rclone.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])
    }
    assert stored == set(files) | {RECORD_KEY}
    again = run_entrypoint(workspace, inputs, endpoints=nowhere, runner_dir=tmp_path / "r2")
    assert again.returncode == 0, again.describe()
    assert again.outputs["uploaded-count"] == "0"


def test_wait_for_invalidation_reports_completion(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    site: Path,
    moto_aws: Server,
    distribution: str,
) -> None:
    """`wait-for-invalidation: true` polls until CloudFront reports it complete (any case)."""
    inputs = {**deploy_inputs, "wait-for-invalidation": "true"}
    succeeded(run_action(workspace, inputs))
    same_size_edit(site / "about" / "index.html")

    result = succeeded(run_action(workspace, inputs))

    invalidation_id = result.outputs["invalidation-id"]
    assert invalidation_id
    assert f"Invalidation `{invalidation_id}` completed" in result.stdout
    status = moto_aws.client("cloudfront").get_invalidation(
        DistributionId=distribution, Id=invalidation_id
    )["Invalidation"]["Status"]
    assert status.lower() == "completed"
    assert not any(line.startswith("::warning") for line in result.stdout.splitlines())


def test_multipart_object_is_not_uploaded_again(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    site: Path,
    seaweed: Server,
    bucket: str,
) -> None:
    """A file big enough for a multipart upload (ETag `...-N`, not an MD5) is still
    recognised as unchanged after a fresh checkout."""
    from deployer.s3 import MULTIPART_THRESHOLD

    video = site / "media" / "intro.mp4"
    video.parent.mkdir()
    chunk = os.urandom(1024 * 1024)
    with video.open("wb") as out:
        for n in range(MULTIPART_THRESHOLD // len(chunk) + 1):
            out.write(chunk[:-1] + bytes([n]))
    succeeded(run_action(workspace, deploy_inputs))
    etag = listing(seaweed.client("s3"), bucket)["media/intro.mp4"]
    assert "-" in etag, f"expected a multipart ETag, got {etag}"
    touch_all(site)

    result = succeeded(run_action(workspace, deploy_inputs))

    assert result.outputs["uploaded-count"] == "0", result.describe()
    assert result.outputs["uploaded-bytes"] == "0"
    assert listing(seaweed.client("s3"), bucket)["media/intro.mp4"] == etag


def test_local_cli_reads_a_dotenv_file(
    workspace: Path, site: Path, seaweed: Server, moto_aws: Server, bucket: str, distribution: str
) -> None:
    """`s3-cloudfront-deploy` outside Actions: settings and keys from `.env`, a readable report."""
    (workspace / ".env").write_text(
        "\n".join(
            [
                f"S3CFD_BUCKET={bucket}",
                f"S3CFD_DISTRIBUTION_ID={distribution}",
                "S3CFD_SOURCE_DIR=site",
                f"AWS_ACCESS_KEY_ID={seaweed.access_key}",
                f"AWS_SECRET_ACCESS_KEY={seaweed.secret_key}",
                "AWS_REGION=us-east-1",
                "",
            ]
        ),
        encoding="utf-8",
    )
    home = workspace.parent / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_S3": seaweed.endpoint,
        "AWS_ENDPOINT_URL_CLOUDFRONT": moto_aws.endpoint,
        "AWS_ENDPOINT_URL_STS": moto_aws.endpoint,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "deployer"],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert set(listing(seaweed.client("s3"), bucket)) == set(local_files(site)) | {RECORD_KEY}
    assert "::" not in output  # no workflow commands outside Actions
    assert seaweed.secret_key not in output
    assert "index.html" in output


# -- the harness itself ------------------------------------------------------------------


def test_parse_github_output_reads_heredocs_and_plain_lines() -> None:
    """Multi-line values, `=` inside values and empty values survive the round trip."""
    text = (
        "changed-keys<<ghadelimiter_1\n"
        '["a.html",\n"b=c.css"]\n'
        "ghadelimiter_1\n"
        "invalidation-id<<ghadelimiter_2\n"
        "\n"
        "ghadelimiter_2\n"
        "plain=x=y\n"
    )
    assert parse_github_output(text) == {
        "changed-keys": '["a.html",\n"b=c.css"]',
        "invalidation-id": "",
        "plain": "x=y",
    }
    with pytest.raises(ValueError, match="not closed"):
        parse_github_output("name<<EOF\nvalue\n")


def test_input_env_sets_every_declared_input_with_hyphens() -> None:
    """Every input is present (as the runner does), defaults included; typos are refused."""
    env = input_env({"dry-run": "true"})
    assert set(env) == {spec.env_input for spec in INPUTS}
    assert env["INPUT_DRY-RUN"] == "true"
    assert env["INPUT_DELETE-REMOVED"] == "true"
    with pytest.raises(KeyError):
        input_env({"dryrun": "true"})


def test_action_result_everything_covers_every_channel() -> None:
    """The leak check looks at stdout, stderr, the summary and every output."""
    result = ActionResult(1, "out", "err", {"name": json.dumps(["value"])}, "summary")
    text = result.everything()
    for part in ("out", "err", "summary", "value"):
        assert part in text
