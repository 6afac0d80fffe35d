"""Deploys through a faulty network: SeaweedFS behind `devtools.faultproxy`.

- About a quarter of the writes fail transiently (503 SlowDown, 500 InternalError,
  connection resets before the server saw the request, answers lost after it acted on
  it): the deploy succeeds and every object is byte-identical to the source.
- A write that always fails for one key: the deploy fails, names the file in the one
  `::error` annotation and in the summary, deletes nothing, holds back the HTML, and
  invalidates nothing that did not land; a clean re-run then finishes the job.

The number of faults injected is printed (`pytest -s`) and asserted non-zero.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from devtools.faultproxy import ALL_METHODS, FaultProxy, Faults
from devtools.servers import Server
from tests.integration.conftest import RunAction
from tests.integration.test_bad_input import error_annotations
from tests.integration.test_deploy import local_files

# Files above 1 MiB go as a streamed body (and with `Expect: 100-continue`): keep one.
SIZES = (0, 1, 17, 900, 4096, 70_000, 1_300_000)


RECORD = ".s3-cloudfront-deploy.json"


def build_site(root: Path, files: int, *, seed: int) -> dict[str, bytes]:
    """A site of `files` files under `root`, with HTML entries, assets and odd sizes."""
    rng = random.Random(seed)
    site: dict[str, bytes] = {
        "index.html": b"<!doctype html><title>home</title>" + rng.randbytes(40).hex().encode(),
        "docs/index.html": b"<!doctype html><title>docs</title>",
        "404.html": b"<!doctype html><title>missing</title>",
    }
    for i in range(files - len(site)):
        size = SIZES[i % len(SIZES)]
        folder = ("assets", "img", "fonts", "assets/chunks")[i % 4]
        site[f"{folder}/file-{i:03d}.bin"] = rng.randbytes(size)
    for rel, body in site.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return site


def bucket_bytes(s3: Server, bucket: str) -> dict[str, bytes]:
    """Every object in the bucket, fetched with GET (directly, not through the proxy)."""
    client = s3.client("s3")
    out: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            out[key] = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return out


def site_objects(remote: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in remote.items() if not k.endswith(".s3-cloudfront-deploy.json")}


def invalidated_paths(moto: Server, distribution: str) -> list[list[str]]:
    """The paths of every invalidation of `distribution`, oldest first.

    moto lists invalidations in creation order; the sort by CreateTime is stable.
    """
    client = moto.client("cloudfront")
    summaries = client.list_invalidations(DistributionId=distribution)["InvalidationList"]
    items = sorted(summaries.get("Items", []) or [], key=lambda item: item["CreateTime"])
    out = []
    for item in items:
        inv = client.get_invalidation(DistributionId=distribution, Id=item["Id"])
        out.append(list(inv["Invalidation"]["InvalidationBatch"]["Paths"].get("Items", [])))
    return out


def test_quarter_of_writes_failing_transiently(
    run_action: RunAction,
    tmp_path: Path,
    seaweed: Server,
    moto_aws: Server,
    deploy_inputs: dict[str, str],
) -> None:
    """~25% of PUT/POST/DELETE fail (503, 500, reset, answer lost): success, bytes identical."""
    workspace = tmp_path / "ws"
    site = build_site(workspace / "site", 40, seed=1)
    bucket, dist = deploy_inputs["bucket"], deploy_inputs["distribution-id"]
    faults = Faults(
        slowdown=0.07, internal=0.06, reset=0.06, lost=0.06, max_faults_per_key=2, seed=7
    )
    with FaultProxy(seaweed.endpoint, faults) as proxy:
        inputs = {**deploy_inputs, "endpoint-url": proxy.url, "concurrency": "8"}
        first = run_action(workspace, inputs)
        first_stats = proxy.stats

        # Second deploy, 60% of the writes failing: edits, a new file, deletions (DeleteObjects).
        proxy.reset_stats()
        proxy.configure(slowdown=0.2, internal=0.15, reset=0.1, lost=0.15)
        for name in ("assets/file-004.bin", "img/file-005.bin", "assets/chunks/file-007.bin"):
            (workspace / "site" / name).write_bytes(b"edited " + name.encode())
        (workspace / "site" / "img" / "new.png").write_bytes(os.urandom(3000))
        (workspace / "site" / "404.html").unlink()
        (workspace / "site" / "fonts" / "file-002.bin").unlink()
        second = run_action(workspace, inputs)
        second_stats = proxy.stats

    assert first.returncode == 0, first.describe()
    assert second.returncode == 0, second.describe()
    print(
        f"\nfaults injected and survived: cold deploy {first_stats.faults} "
        f"({dict(first_stats.injected)}) over {sum(first_stats.requests.values())} requests; "
        f"incremental deploy {second_stats.faults} ({dict(second_stats.injected)})"
    )
    writes = sum(first_stats.requests[m] for m in ("PUT", "POST", "DELETE"))
    assert first_stats.faults >= writes * 0.12, (first_stats, writes)
    assert second_stats.faults >= 1, second_stats
    assert {"slowdown", "internal", "reset", "lost"} <= set(first_stats.injected), first_stats

    local = local_files(workspace / "site")
    remote = bucket_bytes(seaweed, bucket)
    assert site_objects(remote) == local  # byte-identical, nothing missing, nothing extra
    assert len(local) == len(site) - 1
    outputs = first.outputs
    assert outputs["uploaded-count"] == str(len(site))
    assert second.outputs["deleted-count"] == "2"
    # The incremental deploy invalidated the edit and the deletions (once, despite retries).
    paths = invalidated_paths(moto_aws, dist)
    assert len(paths) == 1, paths
    assert covers(paths[0], "/assets/file-004.bin"), paths
    assert covers(paths[0], "/404.html") and covers(paths[0], "/fonts/file-002.bin"), paths


def test_faults_on_every_method_including_reads(
    run_action: RunAction, tmp_path: Path, seaweed: Server, deploy_inputs: dict[str, str]
) -> None:
    """Listing, HEAD and record reads fail too (and some answers are slow): still exact."""
    workspace = tmp_path / "ws"
    build_site(workspace / "site", 24, seed=2)
    faults = Faults(
        methods=ALL_METHODS,
        slowdown=0.1,
        internal=0.05,
        reset=0.05,
        delay=0.1,
        delay_s=0.3,
        max_faults_per_key=2,
        seed=11,
    )
    with FaultProxy(seaweed.endpoint, faults) as proxy:
        inputs = {**deploy_inputs, "endpoint-url": proxy.url}
        first = run_action(workspace, inputs)
        # Same entries, other bytes: the record's ETag no longer matches the record this
        # run would write, so the no-change run GETs it (through the faults) to find out.
        client = seaweed.client("s3")
        body = client.get_object(Bucket=deploy_inputs["bucket"], Key=RECORD)["Body"].read()
        client.put_object(Bucket=deploy_inputs["bucket"], Key=RECORD, Body=body + b"\n")
        before = proxy.stats
        again = run_action(workspace, inputs)  # no change: reads only, through faults
        stats = proxy.stats
    assert first.returncode == 0, first.describe()
    assert again.returncode == 0, again.describe()
    assert again.outputs["uploaded-count"] == "0", again.describe()
    assert again.outputs["invalidation-id"] == ""
    assert stats.injected["delay"] >= 1 and stats.faults >= 3, stats
    assert stats.requests["GET"] >= 2, stats
    assert stats.attempts[RECORD] > before.attempts[RECORD], stats  # the record was read
    assert stats.requests["PUT"] == before.requests["PUT"], stats  # found equal: no writes
    print(f"\nfaults on reads and writes survived: {stats.faults} ({dict(stats.injected)})")
    local = local_files(workspace / "site")
    assert site_objects(bucket_bytes(seaweed, deploy_inputs["bucket"])) == local


def test_a_write_that_always_fails(
    run_action: RunAction,
    tmp_path: Path,
    seaweed: Server,
    moto_aws: Server,
    deploy_inputs: dict[str, str],
) -> None:
    """One key never lands: exit 1, the file named, nothing deleted, no HTML, no stray paths."""
    workspace = tmp_path / "ws"
    root = workspace / "site"
    build_site(root, 12, seed=3)
    bucket, dist = deploy_inputs["bucket"], deploy_inputs["distribution-id"]
    v1 = run_action(workspace, deploy_inputs)  # a clean first deploy, straight to SeaweedFS
    assert v1.returncode == 0, v1.describe()
    v1_remote = bucket_bytes(seaweed, bucket)
    v1_invalidations = len(invalidated_paths(moto_aws, dist))

    # v2: two asset edits, an HTML edit, a new file and a removed one.
    (root / "assets" / "file-000.bin").write_bytes(b"broken key, new bytes")
    (root / "assets" / "file-004.bin").write_bytes(b"lands fine, new bytes")
    (root / "index.html").write_bytes(b"<!doctype html><title>home v2</title>")
    (root / "assets" / "extra.css").write_bytes(b"b{}")
    (root / "404.html").unlink()

    faults = Faults(fail_keys=r"^assets/file-000\.bin$", fail_with="internal")
    with FaultProxy(seaweed.endpoint, faults) as proxy:
        failed = run_action(workspace, {**deploy_inputs, "endpoint-url": proxy.url})
        stats = proxy.stats
    assert failed.returncode != 0, failed.describe()
    print(f"\nalways-failing key: {len(stats.failed_keys)} attempts refused, deploy failed cleanly")
    assert len(stats.failed_keys) >= 2, stats  # it was retried before giving up
    errors = error_annotations(failed.stdout)
    assert len(errors) == 1, failed.describe()
    assert "assets/file-000.bin" in errors[0]
    assert "assets/file-000.bin" in failed.summary
    assert "Traceback" not in failed.stdout + failed.stderr

    remote = bucket_bytes(seaweed, bucket)
    assert remote["404.html"] == v1_remote["404.html"], "deleted although an upload failed"
    assert remote["index.html"] == v1_remote["index.html"], "HTML went out before its assets"
    assert remote["assets/file-000.bin"] == v1_remote["assets/file-000.bin"]
    assert remote["assets/file-004.bin"] == b"lands fine, new bytes"  # other assets landed
    assert remote[".s3-cloudfront-deploy.json"] == v1_remote[".s3-cloudfront-deploy.json"]
    assert set(json.loads(failed.outputs["changed-keys"])) == {
        "assets/file-004.bin",
        "assets/extra.css",
    }

    # Invalidated only what landed: never the failed key, the held-back HTML or the kept file.
    after_fail = invalidated_paths(moto_aws, dist)[v1_invalidations:]
    flat = {p for batch in after_fail for p in batch}
    assert flat <= {"/assets/file-004.bin"}, flat

    # A clean re-run finishes the job and invalidates everything that changed since v1.
    rerun = run_action(workspace, deploy_inputs)
    assert rerun.returncode == 0, rerun.describe()
    local = local_files(root)
    assert site_objects(bucket_bytes(seaweed, bucket)) == local
    batches = invalidated_paths(moto_aws, dist)[v1_invalidations:]
    patterns = [p for batch in batches for p in batch]
    for path in ("/assets/file-000.bin", "/index.html", "/", "/404.html"):
        assert covers(patterns, path), (path, batches)
    if "/assets/file-004.bin" not in flat:  # not invalidated by the failed run: now it must be
        assert covers(patterns, "/assets/file-004.bin"), batches


def covers(patterns: list[str], path: str) -> bool:
    """Does any invalidation path (exact, or ending in `*`) cover `path`?"""
    return any(path == p or (p.endswith("*") and path.startswith(p[:-1])) for p in patterns)


def test_cloudfront_busy_then_accepts(
    run_action: RunAction,
    tmp_path: Path,
    seaweed: Server,
    moto_aws: Server,
    deploy_inputs: dict[str, str],
) -> None:
    """TooManyInvalidationsInProgress twice, then accepted: one invalidation, exit 0."""
    workspace = tmp_path / "ws"
    build_site(workspace / "site", 6, seed=4)
    dist = deploy_inputs["distribution-id"]
    assert run_action(workspace, deploy_inputs).returncode == 0
    (workspace / "site" / "index.html").write_bytes(b"<!doctype html><title>v2</title>")
    busy = Faults(methods=frozenset({"POST"}), custom=1.0, max_faults_per_key=2)
    with FaultProxy(moto_aws.endpoint, busy) as cdn:
        result = run_action(
            workspace, deploy_inputs, extra_env={"AWS_ENDPOINT_URL_CLOUDFRONT": cdn.url}
        )
        stats = cdn.stats
    assert result.returncode == 0, result.describe()
    assert stats.injected["custom"] == 2 and stats.landed["POST"] == 1, stats
    print(f"\nCloudFront busy answers survived: {stats.injected['custom']}")
    batches = invalidated_paths(moto_aws, dist)
    assert len(batches) == 1 and covers(batches[0], "/index.html"), batches
    assert result.outputs["invalidation-id"] != ""


def test_record_write_denied_is_a_warning_not_a_failure(
    run_action: RunAction,
    tmp_path: Path,
    seaweed: Server,
    moto_aws: Server,
    deploy_inputs: dict[str, str],
) -> None:
    """The site landed but its record cannot be written: exit 0, a warning; next run is fine."""
    workspace = tmp_path / "ws"
    build_site(workspace / "site", 6, seed=5)
    record_rule = Faults(fail_keys=r"\.s3-cloudfront-deploy\.json$", fail_with="denied")
    with FaultProxy(seaweed.endpoint, record_rule) as proxy:
        result = run_action(workspace, {**deploy_inputs, "endpoint-url": proxy.url})
    assert result.returncode == 0, result.describe()
    warnings = [line for line in result.stdout.splitlines() if line.startswith("::warning")]
    assert any("record" in line.lower() for line in warnings), result.describe()
    assert ".s3-cloudfront-deploy.json" not in bucket_bytes(seaweed, deploy_inputs["bucket"])
    again = run_action(workspace, deploy_inputs)
    assert again.returncode == 0 and again.outputs["uploaded-count"] == "0", again.describe()
    assert ".s3-cloudfront-deploy.json" in bucket_bytes(seaweed, deploy_inputs["bucket"])
