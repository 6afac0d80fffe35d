"""Awkward but legal input, end to end: what the deploy does, decided and pinned here.

- Symbolic links: followed inside the source folder (published under the link's path);
  skipped with a `::warning` when they leave it, dangle or loop. The bytes of a file
  outside the folder never reach the bucket.
- `..`: names that merely contain dots (`..foo`, `a..b`, `...`) are ordinary names; a
  `..` segment cannot come from the folder walk; a `destination-prefix` with one is
  refused (see test_bad_input); a remote key with a `..` segment under the prefix (moto
  stores one, SeaweedFS refuses it) is a stale object like any other and is deleted.
- Zero-byte files are published (ETag = MD5 of nothing) and are unchanged next time.
- Very many files: 3,000 small files deploy, and the next run has nothing to do.
- Unicode normalisation: a macOS-made (NFD) name is published under its NFC key, the
  one browsers request; with both forms on disk the NFC file wins and a warning names
  the other.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import unicodedata
from pathlib import Path

from devtools.servers import Server
from tests.integration.conftest import RunAction
from tests.integration.test_bad_input import error_annotations
from tests.integration.test_faults import bucket_bytes, covers, invalidated_paths, site_objects

EMPTY_MD5 = hashlib.md5(b"").hexdigest()


def write(root: Path, files: dict[str, bytes]) -> None:
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def warnings_of(stdout: str) -> list[str]:
    return error_annotations(stdout, kind="warning")


def test_symlinks_inside_followed_escaping_ones_skipped(
    run_action: RunAction, tmp_path: Path, seaweed: Server, deploy_inputs: dict[str, str]
) -> None:
    """In-folder links publish the target's bytes; links out, dangling or looping are skipped."""
    workspace = tmp_path / "ws"
    site = workspace / "site"
    write(site, {"index.html": b"<!doctype html>", "css/site.css": b"body{}"})
    secret_dir = tmp_path / "private"
    write(secret_dir, {"id_rsa": b"-----BEGIN PRIVATE KEY----- not for the web"})
    write(workspace, {"README.md": b"in the repo, outside source-dir"})
    (site / "alias.css").symlink_to("css/site.css")
    (site / "styles").symlink_to("css", target_is_directory=True)
    (site / "key.txt").symlink_to(secret_dir / "id_rsa")
    (site / "private").symlink_to(secret_dir, target_is_directory=True)
    (site / "readme.md").symlink_to("../README.md")  # inside the workspace, outside source
    (site / "dangling.js").symlink_to("nowhere.js")
    (site / "loop").symlink_to(".", target_is_directory=True)

    result = run_action(workspace, deploy_inputs)
    assert result.returncode == 0, result.describe()
    remote = site_objects(bucket_bytes(seaweed, deploy_inputs["bucket"]))
    assert remote == {
        "index.html": b"<!doctype html>",
        "css/site.css": b"body{}",
        "alias.css": b"body{}",
        "styles/site.css": b"body{}",
    }
    assert not any(b"PRIVATE KEY" in body for body in remote.values())
    warnings = "\n".join(warnings_of(result.stdout))
    for name in ("key.txt", "private", "readme.md", "dangling.js", "loop"):
        assert f"`{name}" in warnings, (name, result.describe())
    assert "PRIVATE KEY" not in result.stdout + result.summary

    again = run_action(workspace, deploy_inputs)
    assert again.outputs["uploaded-count"] == "0", again.describe()


def test_dots_in_names(
    run_action: RunAction, tmp_path: Path, seaweed: Server, deploy_inputs: dict[str, str]
) -> None:
    """`..foo`, `a..b`, `...` and a `v1..2/` folder are plain names, under a prefix too."""
    workspace = tmp_path / "ws"
    files = {
        "index.html": b"<!doctype html>",
        "..foo": b"dots",
        "a..b.txt": b"dots",
        "...": b"three dots",
        "v1..2/notes.txt": b"folder with dots",
    }
    write(workspace / "site", files)
    inputs = {**deploy_inputs, "destination-prefix": "app..x/"}
    result = run_action(workspace, inputs)
    assert result.returncode == 0, result.describe()
    remote = site_objects(bucket_bytes(seaweed, deploy_inputs["bucket"]))
    assert remote == {"app..x/" + k: v for k, v in files.items()}
    again = run_action(workspace, inputs)
    assert again.outputs["uploaded-count"] == "0", again.describe()


def test_a_dotdot_key_in_the_bucket_is_a_stale_object(
    run_action: RunAction, tmp_path: Path, moto_aws: Server
) -> None:
    """A key `app/../evil.html` (SeaweedFS refuses such keys; moto stores them) is deleted."""
    client = moto_aws.client("s3")
    bucket = f"dots-{os.urandom(6).hex()}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="app/../evil.html", Body=b"stray")
    client.put_object(Bucket=bucket, Key="evil.html", Body=b"outside the prefix")
    assert "app/../evil.html" in [
        o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]
    ]
    workspace = tmp_path / "ws"
    write(workspace / "site", {"index.html": b"<!doctype html>"})
    inputs = {
        "aws-access-key-id": "AKIAMOTO",
        "aws-secret-access-key": "moto-accepts-anything",
        "bucket": bucket,
        "source-dir": "site",
        "destination-prefix": "app",
    }
    env = {"AWS_ENDPOINT_URL_S3": moto_aws.endpoint}
    result = run_action(workspace, inputs, extra_env=env)
    assert result.returncode == 0, result.describe()
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {"app/index.html", "app/.s3-cloudfront-deploy.json", "evil.html"}
    assert result.outputs["deleted-count"] == "1"


def test_zero_byte_files(
    run_action: RunAction, tmp_path: Path, seaweed: Server, deploy_inputs: dict[str, str]
) -> None:
    """Empty files are published with the empty MD5 and are unchanged next time."""
    workspace = tmp_path / "ws"
    write(
        workspace / "site",
        {"index.html": b"", ".nojekyll": b"", "assets/empty.js": b"", "a.css": b"a{}"},
    )
    result = run_action(workspace, deploy_inputs)
    assert result.returncode == 0, result.describe()
    client = seaweed.client("s3")
    for key in ("index.html", ".nojekyll", "assets/empty.js"):
        head = client.head_object(Bucket=deploy_inputs["bucket"], Key=key)
        assert head["ContentLength"] == 0 and head["ETag"].strip('"') == EMPTY_MD5
    again = run_action(workspace, deploy_inputs)
    assert again.outputs["uploaded-count"] == "0", again.describe()
    # Content -> empty and empty -> content are both changes.
    (workspace / "site" / "a.css").write_bytes(b"")
    (workspace / "site" / "index.html").write_bytes(b"<!doctype html>")
    third = run_action(workspace, deploy_inputs)
    assert sorted(json.loads(third.outputs["changed-keys"])) == ["a.css", "index.html"]


def test_three_thousand_files_then_nothing_to_do(
    run_action: RunAction, tmp_path: Path, seaweed: Server, deploy_inputs: dict[str, str]
) -> None:
    """3,000 small files: all published; a re-run after touching every file does nothing."""
    workspace = tmp_path / "ws"
    site = workspace / "site"
    files = {"index.html": b"<!doctype html>"}
    for i in range(2999):
        files[f"p{i % 30:02d}/f{i:04d}.txt"] = f"file {i}\n".encode()
    write(site, files)
    started = time.monotonic()
    cold = run_action(workspace, deploy_inputs)
    cold_s = time.monotonic() - started
    assert cold.returncode == 0, cold.describe()
    assert cold.outputs["uploaded-count"] == "3000"
    assert len(cold.summary.encode()) < 1024 * 1024
    assert len(error_annotations(cold.stdout)) == 0

    now = time.time() + 60
    for path in site.rglob("*"):
        os.utime(path, (now, now))
    started = time.monotonic()
    again = run_action(workspace, deploy_inputs)
    again_s = time.monotonic() - started
    assert again.returncode == 0, again.describe()
    assert again.outputs["uploaded-count"] == "0" and again.outputs["invalidation-id"] == ""
    assert again.outputs["unchanged-count"] == "3000"
    print(f"\n3,000 files: cold deploy {cold_s:.1f} s, no-change re-run {again_s:.1f} s")
    client = seaweed.client("s3")
    count = sum(
        len(page.get("Contents", []))
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=deploy_inputs["bucket"])
    )
    assert count == 3001  # and the deploy record


def test_nfd_name_is_published_under_its_nfc_key(
    run_action: RunAction,
    tmp_path: Path,
    seaweed: Server,
    moto_aws: Server,
    deploy_inputs: dict[str, str],
) -> None:
    """A decomposed (macOS) name gets the NFC key; an edit invalidates the NFC URL."""
    nfc = "caf\u00e9/\ud55c\uae00.html"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    workspace = tmp_path / "ws"
    write(workspace / "site", {"index.html": b"<!doctype html>", nfd: b"v1"})
    result = run_action(workspace, deploy_inputs)
    assert result.returncode == 0, result.describe()
    remote = site_objects(bucket_bytes(seaweed, deploy_inputs["bucket"]))
    assert set(remote) == {"index.html", nfc}
    again = run_action(workspace, deploy_inputs)
    assert again.outputs["uploaded-count"] == "0", again.describe()

    (workspace / "site" / nfd).write_bytes(b"v2")
    edited = run_action(workspace, deploy_inputs)
    assert json.loads(edited.outputs["changed-keys"]) == [nfc]
    paths = invalidated_paths(moto_aws, deploy_inputs["distribution-id"])[-1]
    assert covers(paths, "/caf%C3%A9/%ED%95%9C%EA%B8%80.html"), paths


def test_nfc_and_nfd_twins_keep_the_nfc_file(
    run_action: RunAction, tmp_path: Path, seaweed: Server, deploy_inputs: dict[str, str]
) -> None:
    """Both spellings on disk (possible on Linux): one key, the NFC file's bytes, a warning."""
    nfc = "r\u00e9sum\u00e9.html"
    nfd = unicodedata.normalize("NFD", nfc)
    workspace = tmp_path / "ws"
    write(workspace / "site", {"index.html": b"<!doctype html>", nfc: b"nfc", nfd: b"nfd"})
    result = run_action(workspace, deploy_inputs)
    assert result.returncode == 0, result.describe()
    remote = site_objects(bucket_bytes(seaweed, deploy_inputs["bucket"]))
    assert remote == {"index.html": b"<!doctype html>", nfc: b"nfc"}
    assert any("normali" in w.lower() or "differs" in w for w in warnings_of(result.stdout))
    again = run_action(workspace, deploy_inputs)
    assert again.outputs["uploaded-count"] == "0", again.describe()
