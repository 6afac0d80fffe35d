"""Removed fingerprinted assets kept for a grace period, end to end (SeaweedFS + moto).

v1 of a site loads 12 fingerprinted chunks; v2 loads 12 others (every name new), as a
rebuild does. Time is injected, not slept: the deploy record in the bucket carries when
each kept chunk left the source (`removed_at`), and a test that needs the grace period
to be over rewrites those dates to the past, as if the week had gone by.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from deployer.headers import IMMUTABLE, default_cache_control
from devtools.faultproxy import FaultProxy, Faults
from devtools.servers import Server
from tests.integration.conftest import RunAction
from tests.integration.test_crash import kill_when
from tests.integration.test_deploy import succeeded
from tests.integration.test_faults import bucket_bytes, covers, invalidated_paths, site_objects

RECORD = ".s3-cloudfront-deploy.json"
CHUNKS = 12
DAY = 86400


def chunk_names(version: int) -> list[str]:
    """Fingerprinted names, all different between versions (as a rebuild gives)."""
    names = [f"assets/part{i:02d}-x{version}k{i:02d}q{version}z.js" for i in range(CHUNKS)]
    assert all(default_cache_control(name) == IMMUTABLE for name in names)
    return names


def write_site(root: Path, version: int) -> dict[str, bytes]:
    """Replace `root` with version `version` of the site; return its files."""
    if root.exists():
        for path in sorted(root.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    files = {
        name: f"// chunk {i} of v{version}\n".encode() + b"x" * (200 + i)
        for i, name in enumerate(chunk_names(version))
    }
    scripts = "".join(f'<script src="/{name}"></script>' for name in chunk_names(version))
    files["index.html"] = f"<!doctype html><title>v{version}</title>{scripts}".encode()
    files["about/index.html"] = b"<!doctype html><title>about</title>"
    files["img/logo.png"] = b"\x89PNG logo"
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return files


def recorded(seaweed: Server, bucket: str) -> dict[str, dict[str, str]]:
    body = seaweed.client("s3").get_object(Bucket=bucket, Key=RECORD)["Body"].read()
    objects: dict[str, dict[str, str]] = json.loads(body)["objects"]
    return objects


def age(seaweed: Server, bucket: str, keys: list[str], days: float) -> str:
    """Move the recorded `removed_at` of `keys` to `days` ago; return the new time."""
    client = seaweed.client("s3")
    data = json.loads(client.get_object(Bucket=bucket, Key=RECORD)["Body"].read())
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - days * DAY))
    for key in keys:
        assert "removed_at" in data["objects"][key], key
        data["objects"][key]["removed_at"] = when
    client.put_object(Bucket=bucket, Key=RECORD, Body=json.dumps(data).encode())
    return when


@pytest.fixture
def inputs(deploy_inputs: dict[str, str]) -> dict[str, str]:
    return {**deploy_inputs, "invalidation-max-paths": "3000"}  # exact paths, no roll-up


def test_v1_chunks_kept_after_v2_then_exactly_they_are_pruned(
    run_action: RunAction,
    tmp_path: Path,
    seaweed: Server,
    moto_aws: Server,
    inputs: dict[str, str],
) -> None:
    """v1 -> v2: v1's chunks still served byte for byte, not invalidated; v2 complete.
    After the grace period the next deploy deletes exactly v1's chunks."""
    bucket, dist = inputs["bucket"], inputs["distribution-id"]
    workspace = tmp_path / "ws"
    v1 = write_site(workspace / "site", 1)
    succeeded(run_action(workspace, inputs))
    v2 = write_site(workspace / "site", 2)

    second = succeeded(run_action(workspace, inputs))

    remote = bucket_bytes(seaweed, bucket)
    v1_chunks = chunk_names(1)
    assert {k: remote[k] for k in v1_chunks} == {k: v1[k] for k in v1_chunks}  # bytes intact
    assert site_objects(remote) == v2 | {k: v1[k] for k in v1_chunks}
    assert second.outputs["retained-count"] == str(CHUNKS)
    assert second.outputs["deleted-count"] == "0"
    assert second.outputs["pruned-count"] == "0"
    batches = invalidated_paths(moto_aws, dist)
    assert len(batches) == 1 and sorted(batches[0]) == ["/", "/index.html"], batches
    assert f"Removed assets kept for pages still open ({CHUNKS})" in second.summary
    assert all("removed_at" in recorded(seaweed, bucket)[k] for k in v1_chunks)

    # A week later (the record says so), a deploy of the same v2 prunes v1's chunks.
    age(seaweed, bucket, v1_chunks, days=7.01)
    later = succeeded(run_action(workspace, inputs))
    assert site_objects(bucket_bytes(seaweed, bucket)) == v2
    assert later.outputs["pruned-count"] == str(CHUNKS)
    assert later.outputs["deleted-count"] == str(CHUNKS)
    assert later.outputs["retained-count"] == "0"
    assert sorted(json.loads(later.outputs["changed-keys"])) == sorted(v1_chunks)
    assert len(invalidated_paths(moto_aws, dist)) == 1  # pruning invalidates nothing
    assert not any("removed_at" in entry for entry in recorded(seaweed, bucket).values())


def test_rollback_within_the_window_uploads_only_the_entry_file(
    run_action: RunAction,
    tmp_path: Path,
    seaweed: Server,
    moto_aws: Server,
    inputs: dict[str, str],
) -> None:
    """v1 -> v2 -> v1 (re-running the previous commit's job): only index.html is uploaded
    and invalidated, nothing is deleted, and v2's chunks are now the kept ones."""
    bucket, dist = inputs["bucket"], inputs["distribution-id"]
    workspace = tmp_path / "ws"
    write_site(workspace / "site", 1)
    succeeded(run_action(workspace, inputs))
    v2 = write_site(workspace / "site", 2)
    succeeded(run_action(workspace, inputs))
    v1 = write_site(workspace / "site", 1)

    rollback = succeeded(run_action(workspace, inputs))

    assert json.loads(rollback.outputs["changed-keys"]) == ["index.html"]
    assert rollback.outputs["uploaded-count"] == "1"
    assert rollback.outputs["deleted-count"] == "0"
    assert rollback.outputs["retained-count"] == str(CHUNKS)
    assert rollback.outputs["unchanged-count"] == str(len(v1) - 1)
    remote = bucket_bytes(seaweed, bucket)
    assert site_objects(remote) == v1 | {k: v2[k] for k in chunk_names(2)}
    assert sorted(invalidated_paths(moto_aws, dist)[-1]) == ["/", "/index.html"]
    kept = recorded(seaweed, bucket)
    assert all("removed_at" in kept[k] for k in chunk_names(2))
    assert not any("removed_at" in kept[k] for k in chunk_names(1))


def test_keep_zero_deletes_and_invalidates_at_once(
    run_action: RunAction,
    tmp_path: Path,
    seaweed: Server,
    moto_aws: Server,
    inputs: dict[str, str],
) -> None:
    """`keep-removed-assets: 0` is the earlier behaviour: v1's chunks deleted and invalidated
    by the v2 deploy, nothing kept, no date in the record."""
    bucket, dist = inputs["bucket"], inputs["distribution-id"]
    workspace = tmp_path / "ws"
    write_site(workspace / "site", 1)
    zero = {**inputs, "keep-removed-assets": "0"}
    succeeded(run_action(workspace, zero))
    v2 = write_site(workspace / "site", 2)

    result = succeeded(run_action(workspace, zero))

    assert site_objects(bucket_bytes(seaweed, bucket)) == v2
    assert result.outputs["deleted-count"] == str(CHUNKS)
    assert result.outputs["retained-count"] == "0"
    assert result.outputs["pruned-count"] == "0"
    paths = invalidated_paths(moto_aws, dist)[-1]
    assert all(covers(paths, "/" + key) for key in chunk_names(1))
    assert not any("removed_at" in entry for entry in recorded(seaweed, bucket).values())
    assert "Removed assets kept" not in result.summary


def test_a_record_of_the_previous_release_is_read_without_heads_or_uploads(
    run_action: RunAction,
    tmp_path: Path,
    seaweed: Server,
    inputs: dict[str, str],
) -> None:
    """The previous release wrote version 1 records (the same bytes but the version):
    read as they are, with no HEAD request and no upload but the record, rewritten as 2."""
    bucket = inputs["bucket"]
    workspace = tmp_path / "ws"
    write_site(workspace / "site", 1)
    succeeded(run_action(workspace, inputs))
    client = seaweed.client("s3")
    body = client.get_object(Bucket=bucket, Key=RECORD)["Body"].read()
    assert body.startswith(b'{"version":2,') and b"removed_at" not in body
    client.put_object(
        Bucket=bucket, Key=RECORD, Body=body.replace(b'{"version":2,', b'{"version":1,', 1)
    )

    with FaultProxy(seaweed.endpoint, Faults(methods=frozenset())) as proxy:
        upgrade = succeeded(run_action(workspace, {**inputs, "endpoint-url": proxy.url}))
        seen = proxy.stats
    assert upgrade.outputs["uploaded-count"] == "0", upgrade.describe()
    assert seen.requests["HEAD"] == 0, seen.requests
    assert seen.landed_put_keys == [RECORD]
    assert json.loads(client.get_object(Bucket=bucket, Key=RECORD)["Body"].read())["version"] == 2
    assert "::warning" not in upgrade.stdout, upgrade.describe()

    # Without the record every same-size object would have been checked with HEAD.
    client.put_object(Bucket=bucket, Key=RECORD, Body=b'{"version": 99}')
    with FaultProxy(seaweed.endpoint, Faults(methods=frozenset())) as proxy:
        succeeded(run_action(workspace, {**inputs, "endpoint-url": proxy.url}))
        assert proxy.stats.requests["HEAD"] > CHUNKS


def test_sigkill_mid_deploy_then_rerun_loses_no_retention_state(
    run_action: RunAction,
    tmp_path: Path,
    seaweed: Server,
    moto_aws: Server,
    inputs: dict[str, str],
) -> None:
    """v1's chunks kept since 5 days; v3 deploy SIGKILLed mid-upload; the re-run keeps
    their date exactly (and keeps v2's chunks from now); 3 days later exactly v1's go."""
    bucket = inputs["bucket"]
    workspace = tmp_path / "ws"
    write_site(workspace / "site", 1)
    succeeded(run_action(workspace, inputs))
    write_site(workspace / "site", 2)
    succeeded(run_action(workspace, inputs))
    since = age(seaweed, bucket, chunk_names(1), days=5)
    record_before = seaweed.client("s3").get_object(Bucket=bucket, Key=RECORD)["Body"].read()
    v3 = write_site(workspace / "site", 3)

    faults = Faults(methods=frozenset({"PUT"}), delay=1.0, delay_s=0.4)
    with FaultProxy(seaweed.endpoint, faults) as proxy:
        proc = kill_when(
            proxy,
            lambda s: len(s.landed_put_keys) >= 4,
            workspace,
            {**inputs, "endpoint-url": proxy.url, "concurrency": "2"},
            endpoints={"s3": seaweed.endpoint, "cloudfront": moto_aws.endpoint},
            runner_dir=tmp_path / "killed-runner",
        )
        time.sleep(faults.delay_s + 0.5)  # requests already in flight still land
    assert proc.returncode == -signal.SIGKILL
    partial = bucket_bytes(seaweed, bucket)
    assert partial[RECORD] == record_before, "the record moved without a completed deploy"
    assert all(key in partial for key in chunk_names(1) + chunk_names(2)), "deleted early"

    rerun = succeeded(run_action(workspace, inputs))
    kept = recorded(seaweed, bucket)
    assert {kept[k]["removed_at"] for k in chunk_names(1)} == {since}
    assert len({kept[k]["removed_at"] for k in chunk_names(2)}) == 1
    assert kept[chunk_names(2)[0]]["removed_at"] > since
    assert rerun.outputs["retained-count"] == str(2 * CHUNKS)
    assert rerun.outputs["deleted-count"] == "0"

    age(seaweed, bucket, chunk_names(1), days=8)  # three more days: v1's week is over
    pruned = succeeded(run_action(workspace, inputs))
    assert sorted(json.loads(pruned.outputs["changed-keys"])) == sorted(chunk_names(1))
    remote = site_objects(bucket_bytes(seaweed, bucket))
    assert set(remote) == set(v3) | set(chunk_names(2))


def test_killed_after_pruning_before_the_record_then_rerun(
    run_action: RunAction,
    tmp_path: Path,
    seaweed: Server,
    moto_aws: Server,
    inputs: dict[str, str],
) -> None:
    """Killed after the prunes landed but before its record (CloudFront unreachable): the
    old record still lists them; the re-run drops them quietly: no error, no invalidation."""
    bucket, dist = inputs["bucket"], inputs["distribution-id"]
    workspace = tmp_path / "ws"
    write_site(workspace / "site", 1)
    succeeded(run_action(workspace, inputs))
    write_site(workspace / "site", 2)
    succeeded(run_action(workspace, inputs))
    age(seaweed, bucket, chunk_names(1), days=8)
    v3 = write_site(workspace / "site", 3)
    before = len(invalidated_paths(moto_aws, dist))

    with FaultProxy(moto_aws.endpoint, Faults(methods=frozenset({"POST"}), reset=1.0)) as cdn:
        kill_when(
            cdn,
            lambda s: s.injected["reset"] >= 1,
            workspace,
            inputs,
            endpoints={"s3": seaweed.endpoint, "cloudfront": cdn.url},
            runner_dir=tmp_path / "killed-runner",
        )
    remote = site_objects(bucket_bytes(seaweed, bucket))
    assert set(remote) == set(v3) | set(chunk_names(2)), "v1's chunks are pruned by then"
    assert all("removed_at" in recorded(seaweed, bucket)[k] for k in chunk_names(1))

    rerun = succeeded(run_action(workspace, inputs))
    assert rerun.outputs["uploaded-count"] == "0" and rerun.outputs["deleted-count"] == "0"
    batches = invalidated_paths(moto_aws, dist)[before:]
    assert len(batches) == 1 and sorted(batches[0]) == ["/", "/index.html"], batches
    kept = recorded(seaweed, bucket)
    assert not any(k in kept for k in chunk_names(1))
    assert all("removed_at" in kept[k] for k in chunk_names(2))
