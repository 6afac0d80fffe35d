"""Crash safety: a deploy killed with SIGKILL part-way, then run again.

v1 is deployed cleanly (its deploy record is written). v2 changes every asset, the
home page and deletes a page; it is deployed through a proxy that slows every PUT,
and the process is SIGKILLed once some of the new assets have landed. Then the same
v2 is deployed again, normally. The second run must

- converge: the bucket holds exactly the source, byte for byte;
- invalidate every path that changed since the last *completed* deploy (v1), including
  the assets the killed run had already uploaded: in the bucket they now look
  unchanged, only the deploy record (still v1's) tells that the CDN may serve old bytes.

A third run has nothing to do and invalidates nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from devtools.action import start_entrypoint
from devtools.faultproxy import FaultProxy, Faults, Stats
from devtools.servers import Server
from tests.integration.conftest import RunAction
from tests.integration.test_deploy import local_files
from tests.integration.test_faults import bucket_bytes, covers, invalidated_paths, site_objects

ASSETS = 30
RECORD = ".s3-cloudfront-deploy.json"


def write_site(root: Path, version: int) -> None:
    """v1 or v2 of a site; v2 edits every asset (half of them keep their size)."""
    for i in range(ASSETS):
        body = f"/* asset {i} v{version} */\n".encode() + bytes([65 + i % 26]) * (500 + i)
        if version == 2 and i % 2:
            body = f"/* asset {i} v{version} */\n".encode() + bytes([97 + i % 26]) * (500 + i)
        path = root / "assets" / f"chunk-{i:02d}.js"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    (root / "index.html").write_text(f"<!doctype html><title>home v{version}</title>")
    (root / "about").mkdir(exist_ok=True)
    (root / "about" / "index.html").write_text("<!doctype html><title>about</title>")
    gone = root / "old" / "gone.html"
    if version == 1:
        gone.parent.mkdir(exist_ok=True)
        gone.write_text("<!doctype html><title>soon gone</title>")
    else:
        gone.unlink()
        (root / "assets" / "new-in-v2.js").write_text("// new\n")


def test_sigkill_mid_upload_then_rerun_converges_and_invalidates(
    run_action: RunAction,
    tmp_path: Path,
    seaweed: Server,
    moto_aws: Server,
    deploy_inputs: dict[str, str],
) -> None:
    """Kill -9 after some PUTs landed; the re-run converges and invalidates all v1->v2 changes."""
    workspace = tmp_path / "ws"
    root = workspace / "site"
    write_site(root, 1)
    bucket, dist = deploy_inputs["bucket"], deploy_inputs["distribution-id"]
    inputs = {**deploy_inputs, "invalidation-max-paths": "3000"}  # exact paths, no roll-up
    v1 = run_action(workspace, inputs)
    assert v1.returncode == 0, v1.describe()
    v1_remote = bucket_bytes(seaweed, bucket)
    assert RECORD in v1_remote
    before = len(invalidated_paths(moto_aws, dist))

    write_site(root, 2)
    changed_assets = {f"assets/chunk-{i:02d}.js" for i in range(ASSETS)}

    # The killed run: every PUT waits 0.4 s at the proxy, two at a time.
    faults = Faults(methods=frozenset({"PUT"}), delay=1.0, delay_s=0.4)
    with FaultProxy(seaweed.endpoint, faults) as proxy:
        proc, _ = start_entrypoint(
            workspace,
            {**inputs, "endpoint-url": proxy.url, "concurrency": "2"},
            endpoints={"s3": seaweed.endpoint, "cloudfront": moto_aws.endpoint},
            runner_dir=tmp_path / "killed-runner",
        )
        try:
            proxy.wait_for(
                lambda s: len(changed_assets.intersection(s.landed_put_keys)) >= 6, timeout=60
            )
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        time.sleep(faults.delay_s + 0.5)  # requests already in flight still land: let them
        landed = changed_assets.intersection(proxy.stats.landed_put_keys)
    assert proc.returncode == -signal.SIGKILL

    partial = bucket_bytes(seaweed, bucket)
    v2 = local_files(root)
    landed_now = {k for k in changed_assets if partial.get(k) == v2[k]}
    print(f"\nkilled run: {len(landed_now)} of {len(changed_assets)} changed assets had landed")
    assert landed <= landed_now
    assert 6 <= len(landed_now) < len(changed_assets), "the kill came too late to test anything"
    assert partial["index.html"] == v1_remote["index.html"], "HTML went out before the assets"
    assert "old/gone.html" in partial, "deleted before the uploads finished"
    assert partial[RECORD] == v1_remote[RECORD], "the record moved without a completed deploy"
    assert len(invalidated_paths(moto_aws, dist)) == before

    # The re-run: converges, and invalidates everything that changed since v1.
    rerun = run_action(workspace, inputs)
    assert rerun.returncode == 0, rerun.describe()
    assert site_objects(bucket_bytes(seaweed, bucket)) == v2
    batches = invalidated_paths(moto_aws, dist)[before:]
    assert len(batches) == 1, batches
    paths = batches[0]
    must = sorted(changed_assets | {"old/gone.html"})
    missing = ["/" + key for key in must if not covers(paths, "/" + key)]
    assert not missing, f"not invalidated: {missing}\n{rerun.describe()}"
    assert covers(paths, "/index.html") and covers(paths, "/"), paths
    assert not covers(paths, "/about/index.html"), paths  # unchanged since v1
    # The point of the record: files the killed run uploaded look unchanged now, yet are
    # invalidated (the CDN may still hold their v1 bytes).
    assert all(covers(paths, "/" + key) for key in landed_now)
    # ...and are not uploaded again.
    not_yet = {key for key, body in v2.items() if partial.get(key) != body}
    assert int(rerun.outputs["uploaded-count"]) == len(not_yet), rerun.describe()

    # A third run: nothing to do, nothing to invalidate.
    third = run_action(workspace, inputs)
    assert third.returncode == 0, third.describe()
    assert third.outputs["uploaded-count"] == "0"
    assert third.outputs["invalidation-id"] == ""
    assert len(invalidated_paths(moto_aws, dist)) == before + 1


def test_sigkill_after_every_write_before_the_invalidation(
    run_action: RunAction,
    tmp_path: Path,
    seaweed: Server,
    moto_aws: Server,
    deploy_inputs: dict[str, str],
) -> None:
    """Killed while CloudFront is unreachable: the bucket is v2, the CDN never heard of it.

    The re-run finds nothing to upload or delete, yet must invalidate every v1->v2 change
    (edited, and deleted: gone both locally and remotely), from the v1 record alone.
    """
    workspace = tmp_path / "ws"
    root = workspace / "site"
    write_site(root, 1)
    bucket, dist = deploy_inputs["bucket"], deploy_inputs["distribution-id"]
    inputs = {**deploy_inputs, "invalidation-max-paths": "3000"}
    v1 = run_action(workspace, inputs)
    assert v1.returncode == 0, v1.describe()
    v1_record = bucket_bytes(seaweed, bucket)[RECORD]
    before = len(invalidated_paths(moto_aws, dist))
    write_site(root, 2)

    # CloudFront behind a proxy that resets every CreateInvalidation (a POST).
    with FaultProxy(moto_aws.endpoint, Faults(methods=frozenset({"POST"}), reset=1.0)) as cdn:
        proc, _ = start_entrypoint(
            workspace,
            inputs,
            endpoints={"s3": seaweed.endpoint, "cloudfront": cdn.url},
            runner_dir=tmp_path / "killed-runner",
        )
        try:
            cdn.wait_for(lambda s: s.injected["reset"] >= 1, timeout=60)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    v2 = local_files(root)
    remote = bucket_bytes(seaweed, bucket)
    assert site_objects(remote) == v2, "every upload and delete should have landed"
    assert remote[RECORD] == v1_record
    assert len(invalidated_paths(moto_aws, dist)) == before

    rerun = run_action(workspace, inputs)
    assert rerun.returncode == 0, rerun.describe()
    assert rerun.outputs["uploaded-count"] == "0", rerun.describe()
    assert rerun.outputs["deleted-count"] == "0", rerun.describe()
    batches = invalidated_paths(moto_aws, dist)[before:]
    assert len(batches) == 1, (batches, rerun.describe())
    paths = batches[0]
    must = [f"/assets/chunk-{i:02d}.js" for i in range(ASSETS)]
    must += ["/index.html", "/", "/old/gone.html"]
    missing = [p for p in must if not covers(paths, p)]
    assert not missing, f"not invalidated: {missing}\n{rerun.describe()}"
    assert not covers(paths, "/about/index.html"), paths

    third = run_action(workspace, inputs)
    assert third.returncode == 0 and third.outputs["invalidation-id"] == "", third.describe()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cancel_mid_upload_reports_and_the_rerun_finishes(
    sig: signal.Signals,
    run_action: RunAction,
    tmp_path: Path,
    seaweed: Server,
    moto_aws: Server,
    deploy_inputs: dict[str, str],
) -> None:
    """A cancelled job (SIGINT, or SIGTERM as `docker stop` sends to the container's PID 1):
    exit 130, one annotation, no traceback, the summary written, nothing deleted."""
    workspace = tmp_path / "ws"
    root = workspace / "site"
    write_site(root, 1)
    bucket = deploy_inputs["bucket"]
    inputs = {**deploy_inputs, "invalidation-max-paths": "3000"}
    assert run_action(workspace, inputs).returncode == 0
    v1_remote = bucket_bytes(seaweed, bucket)
    write_site(root, 2)

    faults = Faults(methods=frozenset({"PUT"}), delay=1.0, delay_s=0.3)
    with FaultProxy(seaweed.endpoint, faults) as proxy:
        runner_dir = tmp_path / "cancelled-runner"
        proc, env = start_entrypoint(
            workspace,
            {**inputs, "endpoint-url": proxy.url, "concurrency": "2"},
            endpoints={"s3": seaweed.endpoint, "cloudfront": moto_aws.endpoint},
            runner_dir=runner_dir,
            capture=True,
        )
        try:
            proxy.wait_for(lambda s: len(s.landed_put_keys) >= 4, timeout=60)
            os.kill(proc.pid, sig)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        time.sleep(faults.delay_s + 0.5)
    assert proc.returncode == 130, (proc.returncode, stdout, stderr)
    errors = [line for line in stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "Interrupted" in errors[0], stdout
    assert "Traceback" not in stdout + stderr, stderr
    assert "Interrupted" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    partial = bucket_bytes(seaweed, bucket)
    assert "old/gone.html" in partial and partial[RECORD] == v1_remote[RECORD]
    assert partial["index.html"] == v1_remote["index.html"]

    rerun = run_action(workspace, inputs)
    assert rerun.returncode == 0, rerun.describe()
    assert site_objects(bucket_bytes(seaweed, bucket)) == local_files(root)


def test_garbage_record_is_ignored_with_a_warning(
    run_action: RunAction, tmp_path: Path, seaweed: Server, deploy_inputs: dict[str, str]
) -> None:
    """A record that is not ours (or truncated): warned about, HEADs decide, then rewritten."""
    workspace = tmp_path / "ws"
    write_site(workspace / "site", 1)
    bucket = deploy_inputs["bucket"]
    assert run_action(workspace, deploy_inputs).returncode == 0
    client = seaweed.client("s3")
    good = client.get_object(Bucket=bucket, Key=RECORD)["Body"].read()
    for garbage in (b"\x00\xffnot json", good[: len(good) // 2], b'{"version": 999}'):
        client.put_object(Bucket=bucket, Key=RECORD, Body=garbage)
        result = run_action(workspace, deploy_inputs)
        assert result.returncode == 0, result.describe()
        assert result.outputs["uploaded-count"] == "0", result.describe()
        assert any(line.startswith("::warning") for line in result.stdout.splitlines())
        rewritten = client.get_object(Bucket=bucket, Key=RECORD)["Body"].read()
        assert rewritten != garbage
        clean = run_action(workspace, deploy_inputs)
        assert not any(line.startswith("::warning") for line in clean.stdout.splitlines())


def kill_when(
    proxy: FaultProxy,
    until: Callable[[Stats], bool],
    workspace: Path,
    inputs: Mapping[str, str],
    *,
    endpoints: Mapping[str, str],
    runner_dir: Path,
) -> subprocess.Popen[str]:
    """Start the action; SIGKILL it as soon as `until(proxy.stats)` holds (or after 60 s)."""
    proc, _ = start_entrypoint(workspace, inputs, endpoints=endpoints, runner_dir=runner_dir)
    try:
        proxy.wait_for(until, timeout=60)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    return proc


def kill_mid_header_copies(
    workspace: Path, inputs: dict[str, str], tmp_path: Path, seaweed: Server, moto_aws: Server
) -> tuple[set[str], set[str]]:
    """Run a header-only deploy through a slow proxy; SIGKILL it after 5 copies landed.

    Returns the keys whose copy landed and the keys whose PUT landed.
    """
    faults = Faults(methods=frozenset({"PUT"}), delay=1.0, delay_s=0.4)
    with FaultProxy(seaweed.endpoint, faults) as proxy:
        kill_when(
            proxy,
            lambda s: len(s.landed_copy_keys) >= 5,
            workspace,
            {**inputs, "endpoint-url": proxy.url, "concurrency": "2"},
            endpoints={"s3": seaweed.endpoint, "cloudfront": moto_aws.endpoint},
            runner_dir=tmp_path / "killed-runner",
        )
        time.sleep(faults.delay_s + 0.5)
        return set(proxy.stats.landed_copy_keys), set(proxy.stats.landed_put_keys)


def test_sigkill_mid_header_copies_then_rerun_invalidates_them(
    run_action: RunAction,
    tmp_path: Path,
    seaweed: Server,
    moto_aws: Server,
    deploy_inputs: dict[str, str],
) -> None:
    """Only headers change (server-side copies); killed part-way; the re-run covers them all."""
    workspace = tmp_path / "ws"
    write_site(workspace / "site", 1)
    bucket, dist = deploy_inputs["bucket"], deploy_inputs["distribution-id"]
    inputs = {**deploy_inputs, "invalidation-max-paths": "3000"}
    assert run_action(workspace, inputs).returncode == 0
    before = len(invalidated_paths(moto_aws, dist))
    rule = {"cache-control": "assets/*.js: public, max-age=120"}

    copied, put = kill_mid_header_copies(workspace, {**inputs, **rule}, tmp_path, seaweed, moto_aws)
    # The only PUT is the record, re-written before the first copy so that it stops
    # vouching for the old headers of the objects about to be copied.
    assert put <= {RECORD}, "a header change sent bytes"
    client = seaweed.client("s3")
    new_headers = {
        f"assets/chunk-{i:02d}.js"
        for i in range(ASSETS)
        if client.head_object(Bucket=bucket, Key=f"assets/chunk-{i:02d}.js")["CacheControl"]
        == "public, max-age=120"
    }
    assert copied <= new_headers and 5 <= len(new_headers) < ASSETS, new_headers

    rerun = run_action(workspace, {**inputs, **rule})
    assert rerun.returncode == 0, rerun.describe()
    assert rerun.outputs["uploaded-bytes"] == "0"
    # The record no longer vouches for the headers of the keys the killed run was about
    # to copy: they are checked with HEAD, and only those still without the rule are copied.
    assert int(rerun.outputs["uploaded-count"]) <= ASSETS, rerun.describe()
    batches = invalidated_paths(moto_aws, dist)[before:]
    assert len(batches) == 1, batches
    missing = [
        f"/assets/chunk-{i:02d}.js"
        for i in range(ASSETS)
        if not covers(batches[0], f"/assets/chunk-{i:02d}.js")
    ]
    assert not missing, f"header changes not invalidated: {missing}"
    assert not covers(batches[0], "/index.html"), batches


def test_killed_header_change_then_reverted_rule_converges(
    run_action: RunAction,
    tmp_path: Path,
    seaweed: Server,
    moto_aws: Server,
    deploy_inputs: dict[str, str],
) -> None:
    """Killed mid header copies, then the rule is reverted: every object gets v1 headers back.

    A copy keeps the ETag, so the last completed deploy's record (v1 headers, same ETag)
    must not be trusted for keys a killed run may have copied.
    """
    workspace = tmp_path / "ws"
    write_site(workspace / "site", 1)
    bucket = deploy_inputs["bucket"]
    assert run_action(workspace, deploy_inputs).returncode == 0
    client = seaweed.client("s3")
    keys = [f"assets/chunk-{i:02d}.js" for i in range(ASSETS)]
    v1_headers = {k: client.head_object(Bucket=bucket, Key=k)["CacheControl"] for k in keys}
    rule = {"cache-control": "assets/*.js: public, max-age=120"}

    kill_mid_header_copies(workspace, {**deploy_inputs, **rule}, tmp_path, seaweed, moto_aws)

    rerun = run_action(workspace, deploy_inputs)  # the rule reverted: back to v1 headers
    assert rerun.returncode == 0, rerun.describe()
    now = {k: client.head_object(Bucket=bucket, Key=k)["CacheControl"] for k in keys}
    wrong = sorted(k for k in keys if now[k] != v1_headers[k])
    assert not wrong, f"left with the killed run's headers: {wrong}\n{rerun.describe()}"
