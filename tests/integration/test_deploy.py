"""The action end to end: `entrypoint.py` in a subprocess, as the runner runs it.

S3 is SeaweedFS (real MD5 ETags, credentials checked, a random secret), CloudFront is
moto server. Each test gets a fresh bucket, a distribution in front of it and a
workspace holding a copy of examples/site as `site/`. Expectations are computed from
the files on disk and checked against what the servers hold afterwards, not only
against what the program says it did.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from devtools.action import ActionResult
from devtools.servers import Server

if TYPE_CHECKING:
    from mypy_boto3_cloudfront import CloudFrontClient
    from mypy_boto3_s3 import S3Client

    from tests.integration.conftest import RunAction

pytestmark = pytest.mark.integration

RECORD_KEY = ".s3-cloudfront-deploy.json"  # the deploy record, beside the published files
# The Cache-Control values users get by default, written out (not deployer.headers' own).
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"
OLD_JS = "assets/index-DiwrgTda.js"
NEW_JS = "assets/index-Zx81Kq2P.js"
KOREAN_DOC = "docs/안내 문서.txt"

# The Content-Type each extension must get (the list; a few have two spellings).
EXPECTED_TYPES: dict[str, tuple[str, ...]] = {
    "html": ("text/html; charset=utf-8",),
    "css": ("text/css; charset=utf-8",),
    "js": ("text/javascript; charset=utf-8", "text/javascript"),
    "wasm": ("application/wasm",),
    "svg": ("image/svg+xml", "image/svg+xml; charset=utf-8"),
    "png": ("image/png",),
    "webp": ("image/webp",),
    "ico": ("image/vnd.microsoft.icon", "image/x-icon"),
    "woff2": ("font/woff2",),
    "txt": ("text/plain; charset=utf-8",),
    "xml": ("application/xml; charset=utf-8", "text/xml; charset=utf-8", "application/xml"),
    "webmanifest": ("application/manifest+json", "application/manifest+json; charset=utf-8"),
}
# Entry files: they must revalidate (`no-cache`) so a deploy reaches users at once.
ENTRY_FILES = {"robots.txt", "sitemap.xml", "manifest.webmanifest"}


# -- helpers ---------------------------------------------------------------------------


def local_files(site: Path) -> dict[str, bytes]:
    """Every file under `site` by its relative POSIX path (= the S3 key, no prefix)."""
    files: dict[str, bytes] = {}
    for path in sorted(site.rglob("*")):
        if path.is_file():
            files[path.relative_to(site).as_posix()] = path.read_bytes()
    return files


def listing(s3: S3Client, bucket: str) -> dict[str, str]:
    """Every object in the bucket: key -> ETag (quotes stripped)."""
    objects: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            objects[item["Key"]] = item["ETag"].strip('"')
    return objects


def invalidations(cloudfront: CloudFrontClient, distribution: str) -> list[tuple[str, set[str]]]:
    """(id, paths) of every invalidation the distribution has received."""
    found: list[tuple[str, set[str]]] = []
    summary = cloudfront.list_invalidations(DistributionId=distribution)["InvalidationList"]
    for item in summary.get("Items", []):
        batch = cloudfront.get_invalidation(DistributionId=distribution, Id=item["Id"])
        paths = batch["Invalidation"]["InvalidationBatch"]["Paths"].get("Items", [])
        found.append((item["Id"], set(paths)))
    return found


def succeeded(result: ActionResult) -> ActionResult:
    assert result.returncode == 0, result.describe()
    return result


def json_output(result: ActionResult, name: str) -> list[str]:
    value = json.loads(result.outputs[name])
    assert isinstance(value, list), result.describe()
    return [str(item) for item in value]


def cf_path(key: str) -> str:
    """The CloudFront path of a key, percent-encoded (UTF-8) like a browser would send it."""
    return "/" + quote(key, safe="/-._~")


def touch_all(root: Path) -> None:
    """What a fresh checkout does: every file gets a new modification time."""
    later = time.time() + 3600
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (later, later))


def same_size_edit(path: Path) -> None:
    """Change one letter's case in the text of an HTML file: same size, new content."""
    data = bytearray(path.read_bytes())
    start = data.index(b"<body")
    for i in range(start, len(data)):
        if data[i] == ord(">"):
            start = i + 1
            break
    for i in range(start, len(data)):
        char = chr(data[i])
        if char.isascii() and char.isalpha():
            data[i] = ord(char.swapcase())
            break
    else:
        raise AssertionError(f"no letter to edit in {path}")
    path.write_bytes(bytes(data))


def incremental_change(site: Path) -> dict[str, set[str]]:
    """A typical rebuild; returns the expected uploads, deletes, invalidated keys and the
    removed fingerprinted asset kept for open pages (`keep-removed-assets`)."""
    index = site / "index.html"
    html = index.read_text(encoding="utf-8")
    assert OLD_JS.split("/")[1] in html, "examples/site/index.html must load the JS bundle"
    index.write_text(html.replace(OLD_JS.split("/")[1], NEW_JS.split("/")[1]), encoding="utf-8")
    old_js = site / OLD_JS
    (site / NEW_JS).write_bytes(old_js.read_bytes() + b"\nconsole.log('v2');\n")
    old_js.unlink()
    (site / "images" / "first-post.webp").unlink()
    (site / "images" / "new-photo.png").write_bytes(
        (site / "images" / "hero.png").read_bytes() + b"\x00new"
    )
    (site / "robots.txt").write_text(
        (site / "robots.txt").read_text(encoding="utf-8") + "# v2\n", encoding="utf-8"
    )
    (site / KOREAN_DOC).write_text("두 번째 판\n", encoding="utf-8")
    return {
        "uploads": {"index.html", NEW_JS, "images/new-photo.png", "robots.txt", KOREAN_DOC},
        "deletes": {"images/first-post.webp"},
        "retained": {OLD_JS},  # neither deleted nor invalidated
        # updated or deleted; new keys need no invalidation
        "invalidate": {"index.html", "robots.txt", KOREAN_DOC, "images/first-post.webp"},
    }


# -- tests -----------------------------------------------------------------------------


def test_cold_deploy_publishes_every_file_with_bytes_and_headers(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    site: Path,
    seaweed: Server,
    moto_aws: Server,
    bucket: str,
    distribution: str,
) -> None:
    """A first deploy uploads everything with the right bytes, Content-Type and Cache-Control."""
    files = local_files(site)
    workspace_before = sorted(p.relative_to(workspace) for p in workspace.rglob("*"))

    result = succeeded(run_action(workspace, deploy_inputs))

    s3 = seaweed.client("s3")
    assert set(listing(s3, bucket)) == set(files) | {RECORD_KEY}
    for key, body in files.items():
        obj = s3.get_object(Bucket=bucket, Key=key)
        assert obj["Body"].read() == body, key
        extension = key.rsplit(".", 1)[-1].lower()
        if extension in EXPECTED_TYPES:
            assert obj["ContentType"] in EXPECTED_TYPES[extension], key
        cache_control = obj.get("CacheControl", "")
        name = key.rsplit("/", 1)[-1]
        if extension == "html" or name in ENTRY_FILES:
            assert cache_control == NO_CACHE, key
        elif key.startswith("assets/"):
            assert cache_control == IMMUTABLE, key
        else:
            assert cache_control == SHORT, key
    assert {key.rsplit(".", 1)[-1] for key in files} >= {"html", "css", "js", "png", "woff2"}

    assert result.outputs["uploaded-count"] == str(len(files))
    assert result.outputs["deleted-count"] == "0"
    assert result.outputs["unchanged-count"] == "0"
    assert result.outputs["uploaded-bytes"] == str(sum(len(b) for b in files.values()))
    assert json_output(result, "changed-keys") == sorted(files)
    # Brand-new keys were never cached: no invalidation at all.
    assert result.outputs["invalidation-id"] == ""
    assert json_output(result, "invalidation-paths") == []
    assert invalidations(moto_aws.client("cloudfront"), distribution) == []
    assert result.summary.strip(), "the job summary is empty"
    # The container runs as root: it must write nothing into the workspace.
    assert sorted(p.relative_to(workspace) for p in workspace.rglob("*")) == workspace_before


def test_fresh_checkout_uploads_nothing_and_invalidates_nothing(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    site: Path,
    seaweed: Server,
    moto_aws: Server,
    bucket: str,
    distribution: str,
) -> None:
    """New modification times on every file (a fresh checkout) change nothing."""
    succeeded(run_action(workspace, deploy_inputs))
    before = listing(seaweed.client("s3"), bucket)
    touch_all(site)

    result = succeeded(run_action(workspace, deploy_inputs))

    files = local_files(site)
    assert result.outputs["uploaded-count"] == "0"
    assert result.outputs["uploaded-bytes"] == "0"
    assert result.outputs["deleted-count"] == "0"
    assert result.outputs["unchanged-count"] == str(len(files))
    assert json_output(result, "changed-keys") == []
    assert result.outputs["invalidation-id"] == ""
    after = listing(seaweed.client("s3"), bucket)
    assert {k: v for k, v in after.items() if k != RECORD_KEY} == {
        k: v for k, v in before.items() if k != RECORD_KEY
    }
    assert invalidations(moto_aws.client("cloudfront"), distribution) == []


def test_same_size_edit_is_uploaded_and_invalidated(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    site: Path,
    seaweed: Server,
    moto_aws: Server,
    bucket: str,
    distribution: str,
) -> None:
    """An edit that keeps the size is still a change (content, not size, decides)."""
    succeeded(run_action(workspace, deploy_inputs))
    page = site / "about" / "index.html"
    size = page.stat().st_size
    same_size_edit(page)
    assert page.stat().st_size == size

    result = succeeded(run_action(workspace, deploy_inputs))

    assert json_output(result, "changed-keys") == ["about/index.html"]
    assert result.outputs["uploaded-count"] == "1"
    assert result.outputs["uploaded-bytes"] == str(size)
    body = seaweed.client("s3").get_object(Bucket=bucket, Key="about/index.html")["Body"].read()
    assert body == page.read_bytes()
    expected_paths = {"/about/index.html", "/about/"}
    assert set(json_output(result, "invalidation-paths")) == expected_paths
    sent = invalidations(moto_aws.client("cloudfront"), distribution)
    assert sent == [(result.outputs["invalidation-id"], expected_paths)]


def test_incremental_deploy_changes_exactly_what_changed(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    site: Path,
    seaweed: Server,
    moto_aws: Server,
    bucket: str,
    distribution: str,
) -> None:
    """Uploads exactly the changed files, deletes exactly the removed ones, invalidates
    exactly their paths (`/` too, because the root index.html changed)."""
    succeeded(run_action(workspace, deploy_inputs))
    before = listing(seaweed.client("s3"), bucket)
    expected = incremental_change(site)

    result = succeeded(run_action(workspace, deploy_inputs))

    files = local_files(site)
    after = listing(seaweed.client("s3"), bucket)
    assert set(after) == set(files) | {RECORD_KEY} | expected["retained"]
    assert after[OLD_JS] == before[OLD_JS]
    rewritten = {k for k in files if k in before and after[k] != before[k]}
    assert rewritten == expected["uploads"] - {NEW_JS, "images/new-photo.png"}
    s3 = seaweed.client("s3")
    for key in expected["uploads"]:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == files[key], key
    assert set(before) - set(after) == expected["deletes"]

    assert result.outputs["uploaded-count"] == str(len(expected["uploads"]))
    assert result.outputs["deleted-count"] == str(len(expected["deletes"]))
    assert result.outputs["retained-count"] == "1"
    assert result.outputs["pruned-count"] == "0"
    unchanged = len(files) - len(expected["uploads"])
    assert result.outputs["unchanged-count"] == str(unchanged)
    assert result.outputs["uploaded-bytes"] == str(
        sum(len(files[key]) for key in expected["uploads"])
    )
    assert json_output(result, "changed-keys") == sorted(expected["uploads"] | expected["deletes"])

    expected_paths = {cf_path(key) for key in expected["invalidate"]} | {"/"}
    assert set(json_output(result, "invalidation-paths")) == expected_paths
    sent = invalidations(moto_aws.client("cloudfront"), distribution)
    assert sent == [(result.outputs["invalidation-id"], expected_paths)]


def test_dry_run_writes_nothing(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    site: Path,
    seaweed: Server,
    moto_aws: Server,
    bucket: str,
    distribution: str,
) -> None:
    """A dry run reports the plan but leaves the bucket and the CDN exactly as they were."""
    succeeded(run_action(workspace, deploy_inputs))
    before = listing(seaweed.client("s3"), bucket)
    expected = incremental_change(site)
    changed = sorted(expected["uploads"] | expected["deletes"])

    result = succeeded(run_action(workspace, {**deploy_inputs, "dry-run": "true"}))

    assert listing(seaweed.client("s3"), bucket) == before  # the record too
    assert invalidations(moto_aws.client("cloudfront"), distribution) == []
    assert result.outputs["invalidation-id"] == ""
    assert json_output(result, "changed-keys") == changed  # what would change
    assert any(key in result.stdout for key in changed), result.describe()

    # The dry run left nothing behind that hides the changes from a real deploy.
    real = succeeded(run_action(workspace, deploy_inputs))
    assert json_output(real, "changed-keys") == changed
    assert len(invalidations(moto_aws.client("cloudfront"), distribution)) == 1


def test_max_delete_refuses_before_any_write(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    site: Path,
    seaweed: Server,
    moto_aws: Server,
    bucket: str,
    distribution: str,
) -> None:
    """More deletions than `max-delete`: nothing uploaded, deleted or invalidated."""
    succeeded(run_action(workspace, deploy_inputs))
    before = listing(seaweed.client("s3"), bucket)
    for key in ("images/first-post.webp", "images/logo.svg", "fonts/inter-latin.woff2"):
        (site / key).unlink()
    same_size_edit(site / "index.html")
    (site / "new.txt").write_text("new\n", encoding="utf-8")

    refused = run_action(workspace, {**deploy_inputs, "max-delete": "2"})

    assert refused.returncode != 0, refused.describe()
    assert listing(seaweed.client("s3"), bucket) == before
    assert invalidations(moto_aws.client("cloudfront"), distribution) == []
    assert refused.outputs["uploaded-count"] == "0"
    assert refused.outputs["deleted-count"] == "0"
    assert "::error" in refused.stdout + refused.stderr, refused.describe()
    assert "`max-delete`" in refused.stdout + refused.stderr, refused.describe()
    assert "max-delete" in refused.summary, refused.describe()

    # Exactly at the limit is allowed.
    allowed = succeeded(run_action(workspace, {**deploy_inputs, "max-delete": "3"}))
    assert allowed.outputs["deleted-count"] == "3"
    assert allowed.outputs["uploaded-count"] == "2"


def test_default_excludes_never_leave_the_machine(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    site: Path,
    seaweed: Server,
    bucket: str,
) -> None:
    """`.git/`, `.github/`, `.env*`, `.DS_Store` inside the source folder are not uploaded."""
    published = set(local_files(site))
    (site / ".git").mkdir()
    (site / ".git" / "config").write_text("[core]\n", encoding="utf-8")
    (site / ".github" / "workflows").mkdir(parents=True)
    (site / ".github" / "workflows" / "main.yml").write_text("on: push\n", encoding="utf-8")
    (site / ".env").write_text("API_TOKEN=do-not-publish\n", encoding="utf-8")
    (site / ".env.production").write_text("API_TOKEN=do-not-publish\n", encoding="utf-8")
    (site / "about" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")

    succeeded(run_action(workspace, deploy_inputs))

    assert set(listing(seaweed.client("s3"), bucket)) == published | {RECORD_KEY}


def assert_secret_hidden(result: ActionResult, secret: str) -> None:
    """The secret is masked first, and appears nowhere else the user can see."""
    mask = f"::add-mask::{secret}"
    lines = result.stdout.splitlines()
    assert mask in lines, f"the secret is never masked\n{result.describe()}"
    others = [i for i, line in enumerate(lines) if not line.startswith("::add-mask::")]
    assert not others or lines.index(mask) < others[0], "masked after other output"
    visible = "\n".join(line for line in result.everything().splitlines() if line != mask)
    assert secret not in visible, "the secret leaked"


def test_secret_never_appears_in_any_output(
    run_action: RunAction,
    deploy_inputs: dict[str, str],
    workspace: Path,
    seaweed: Server,
) -> None:
    """The secret key is masked before anything is printed and never shows up, whether the
    deploy succeeds, is refused with a wrong secret, or fails on a missing bucket."""
    secret = seaweed.secret_key
    debug = {"RUNNER_DEBUG": "1"}  # tracebacks, if any, must be scrubbed too

    ok = succeeded(run_action(workspace, deploy_inputs, extra_env=debug))
    assert_secret_hidden(ok, secret)

    wrong_secret = secrets.token_urlsafe(30)
    denied = run_action(
        workspace, {**deploy_inputs, "aws-secret-access-key": wrong_secret}, extra_env=debug
    )
    assert denied.returncode != 0, denied.describe()
    assert_secret_hidden(denied, wrong_secret)
    assert secret not in denied.everything()

    missing = run_action(
        workspace,
        {**deploy_inputs, "bucket": f"it-missing-{secrets.token_hex(6)}"},
        extra_env=debug,
    )
    assert missing.returncode != 0, missing.describe()
    assert_secret_hidden(missing, secret)
