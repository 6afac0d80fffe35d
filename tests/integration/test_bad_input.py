"""Bad input and refused requests: each fails cleanly, says what to fix, and writes nothing.

A table of invalid configurations and error conditions, each run end to end through
`entrypoint.py` as the runner runs it, against SeaweedFS (S3) and moto (CloudFront).
For every case: a non-zero exit, exactly one `::error` annotation that names the input
or resource and the fix, no traceback, and nothing written remotely (the bucket listing
is the same before and after, and the distribution has no invalidation).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devtools.action import ActionResult, run_entrypoint
from devtools.faultproxy import FaultProxy, add_seaweed_identity
from devtools.servers import Server, create_distribution, find_binary
from tests.integration.conftest import RunAction

TRACEBACK = "Traceback (most recent call last)"

SITE_FILES: dict[str, bytes] = {
    "index.html": b"<!doctype html><title>home</title><script src=/assets/app.js></script>",
    "about/index.html": b"<!doctype html><title>about</title>",
    "assets/app.js": b"console.log('app v2');\n",
    "assets/style.css": b"body { color: #333 }\n",
    "img/logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg"/>',
}
# What the bucket holds before each case: a deploy that went ahead would change it.
REMOTE_BEFORE: dict[str, bytes] = {
    "index.html": b"<!doctype html><title>old home</title>",
    "old/page.html": b"<!doctype html><title>removed page</title>",
    "stale-1.txt": b"1",
    "stale-2.txt": b"2",
}


def make_workspace(root: Path) -> Path:
    """A checkout with the site in `site/` and a few odd folders beside it."""
    workspace = root / "workspace"
    for rel, body in SITE_FILES.items():
        path = workspace / "site" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    (workspace / "empty").mkdir()
    hidden = workspace / "only-hidden"
    (hidden / ".git").mkdir(parents=True)
    (hidden / ".git" / "config").write_text("[core]\n")
    (hidden / ".env").write_text("TOKEN=x\n")
    outside = root / "outside"
    outside.mkdir()
    (outside / "index.html").write_text("outside")
    return workspace


def error_annotations(stdout: str, kind: str = "error") -> list[str]:
    """The `::error` (or other) workflow commands in a log, title and message unescaped."""
    found = []
    for line in stdout.splitlines():
        if line.startswith(f"::{kind}"):
            text = line.split("::", 2)[2] if line.count("::") >= 2 else line
            title = re.search(r"title=([^:]*)::", line)
            head = (title.group(1) + " | ") if title else ""
            found.append(_unescape(head + text))
    return found


def _unescape(text: str) -> str:
    for code, char in (("%0A", "\n"), ("%0D", "\r"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(code, char)
    return text


def visible(result: ActionResult) -> str:
    """Everything a user sees from a run, except the `::add-mask::` lines (which the runner
    consumes: they never reach the log)."""
    text = result.everything()
    return "\n".join(line for line in text.splitlines() if not line.startswith("::add-mask::"))


def snapshot(s3: Server, bucket: str) -> dict[str, str]:
    """key -> ETag of everything in the bucket."""
    client = s3.client("s3")
    out: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            out[item["Key"]] = item["ETag"]
    return out


def invalidation_count(moto: Server, distribution: str) -> int:
    listing = moto.client("cloudfront").list_invalidations(DistributionId=distribution)
    return int(listing["InvalidationList"].get("Quantity", 0))


# Cases that reach S3 or CloudFront with usable credentials: one at a time, each with its
# own before/after snapshot. Every other case runs in a parallel batch (see offline_batch).
SEQUENTIAL = frozenset(
    {
        "wrong-secret",
        "unknown-key-id",
        "bucket-missing",
        "distribution-missing",
        "access-denied",
        "max-delete-exceeded",
    }
)
PARALLEL_RUNS = 4


@dataclass(frozen=True)
class Ctx:
    """What a case's inputs can refer to (`{bucket}`, `{secret}`...)."""

    bucket: str
    dist: str
    key_id: str
    secret: str
    ro_key_id: str
    ro_secret: str


@dataclass(frozen=True)
class Case:
    id: str
    inputs: Mapping[str, str]  # on top of good inputs; `{field}` is filled from `Ctx`
    expect: tuple[str, ...]  # every one must appear in the one annotation (case-insensitive)
    env: Mapping[str, str] = field(default_factory=dict)


C = Case
CASES: tuple[Case, ...] = (
    # -- names, IDs, regions --------------------------------------------------------------
    C("bucket-empty", {"bucket": ""}, ("`bucket`", "required")),
    C("bucket-upper-underscore", {"bucket": "My_Site"}, ("`bucket`", "naming rules")),
    C("bucket-s3-url", {"bucket": "s3://my-site/dist"}, ("`bucket`", "destination-prefix")),
    C("bucket-ip", {"bucket": "192.168.1.10"}, ("`bucket`", "IP address")),
    C("bucket-too-long", {"bucket": "a" * 64}, ("`bucket`", "3-63")),
    C(
        "dist-domain",
        {"distribution-id": "d111111abcdef8.cloudfront.net"},
        ("`distribution-id`", "E2ABCDEF123456"),
    ),
    C("dist-lowercase", {"distribution-id": "e2abcdef123456"}, ("`distribution-id`", "upper")),
    C("dist-second-bad", {"distribution-id": "{dist}, not-an-id"}, ("`distribution-id`",)),
    C("region-name", {"aws-region": "Seoul"}, ("`aws-region`", "ap-northeast-2")),
    C("region-underscore", {"aws-region": "us_east_1"}, ("`aws-region`",)),
    # -- booleans and numbers out of their sets -------------------------------------------
    C("bool-delete-removed", {"delete-removed": "yes"}, ("`delete-removed`", "`true` or `false`")),
    C("bool-dry-run", {"dry-run": "1"}, ("`dry-run`", "`true` or `false`")),
    C("bool-wait", {"wait-for-invalidation": "maybe"}, ("`wait-for-invalidation`",)),
    C("concurrency-zero", {"concurrency": "0"}, ("`concurrency`", "1 to 256")),
    C("concurrency-too-many", {"concurrency": "257"}, ("`concurrency`", "1 to 256")),
    C("concurrency-word", {"concurrency": "ten"}, ("`concurrency`", "`auto`", "whole number")),
    C("max-delete-negative", {"max-delete": "-1"}, ("`max-delete`",)),
    C("max-paths-zero", {"invalidation-max-paths": "0"}, ("`invalidation-max-paths`",)),
    C("invalidation-mode", {"invalidation": "some"}, ("`invalidation`", "`changed`")),
    C("role-duration", {"role-duration-seconds": "100"}, ("`role-duration-seconds`", "900")),
    C("role-arn", {"role-to-assume": "deploy-role"}, ("`role-to-assume`", "arn:aws:iam::")),
    C("session-name", {"role-session-name": "a"}, ("`role-session-name`",)),
    C("endpoint-url", {"endpoint-url": "ftp://files.example"}, ("`endpoint-url`",)),
    # -- the source folder ----------------------------------------------------------------
    C("source-missing", {"source-dir": "dist"}, ("`source-dir`", "does not exist")),
    C("source-is-file", {"source-dir": "site/index.html"}, ("`source-dir`", "is a file")),
    C("source-outside", {"source-dir": "../outside"}, ("`source-dir`", "outside the workspace")),
    C("source-absolute-outside", {"source-dir": "/etc"}, ("`source-dir`", "outside")),
    C("source-empty", {"source-dir": "empty"}, ("`source-dir`", "empty")),
    C("source-only-hidden", {"source-dir": "only-hidden"}, ("`source-dir`",)),
    C("exclude-everything", {"exclude": "*"}, ("`exclude`",)),
    # -- rules ----------------------------------------------------------------------------
    C(
        "cache-control-no-colon",
        {"cache-control": "no-cache"},
        ("`cache-control`", "PATTERN: VALUE"),
    ),
    C(
        "cache-control-no-value",
        {"cache-control": "*.html:"},
        ("`cache-control`", "PATTERN: VALUE"),
    ),
    C("cache-control-bad-glob", {"cache-control": "[abc: no-cache"}, ("`cache-control`", "`[`")),
    C(
        "content-type-non-ascii",
        {"content-type": "*.js: text/javascript; charset=ütf-8"},
        ("`content-type`", "ASCII"),
    ),
    C("exclude-backslash", {"exclude": "assets\\*.map"}, ("`exclude`", "`/`")),
    C("exclude-unclosed-class", {"exclude": "*.[ch"}, ("`exclude`", "`[`")),
    C("prefix-dotdot", {"destination-prefix": "app/../other"}, ("`destination-prefix`", "..")),
    C("prefix-s3-url", {"destination-prefix": "s3://bucket/app"}, ("`destination-prefix`",)),
    C(
        "two-problems-one-annotation",
        {"bucket": "", "concurrency": "0"},
        ("`bucket`", "`concurrency`"),
    ),
    # -- credentials ----------------------------------------------------------------------
    C("key-id-without-secret", {"aws-secret-access-key": ""}, ("`aws-secret-access-key`",)),
    C("secret-without-key-id", {"aws-access-key-id": ""}, ("`aws-access-key-id`",)),
    C(
        "secret-trailing-newline",
        {"aws-secret-access-key": "{secret}\n"},
        ("`aws-secret-access-key`", "whitespace"),
    ),
    C(
        "no-credentials",
        {"aws-access-key-id": "", "aws-secret-access-key": ""},
        ("credentials", "`aws-access-key-id`"),
    ),
    C(
        "wrong-secret",
        {"aws-secret-access-key": "wrong-{secret}"},
        ("`aws-secret-access-key`", "SignatureDoesNotMatch"),
    ),
    C("unknown-key-id", {"aws-access-key-id": "AKIAUNKNOWN0000000000"}, ("`aws-access-key-id`",)),
    # -- resources ------------------------------------------------------------------------
    C("bucket-missing", {"bucket": "no-such-bucket-{bucket}"}, ("`bucket`", "does not exist")),
    C(
        "distribution-missing",
        {"distribution-id": "E0NOSUCHDIST00"},
        ("`distribution-id`", "E0NOSUCHDIST00"),
    ),
    C(
        "access-denied",
        {"aws-access-key-id": "{ro_key_id}", "aws-secret-access-key": "{ro_secret}"},
        ("Access denied", "s3:PutObject"),
    ),
    C("max-delete-exceeded", {"max-delete": "1"}, ("`max-delete`", "3")),
)


def make_read_only_keys(seaweed: Server) -> tuple[str, str]:
    """Credentials of a new SeaweedFS identity that may only Read and List."""
    key_id = "AKRO" + secrets.token_hex(8).upper()
    secret = secrets.token_urlsafe(30)
    add_seaweed_identity(
        find_binary("weed"),
        seaweed.pid,
        name=f"reader-{key_id[-6:].lower()}",
        access_key=key_id,
        secret_key=secret,
        actions=("Read", "List"),
    )
    return key_id, secret


@pytest.fixture(scope="module")
def read_only_keys(seaweed: Server) -> tuple[str, str]:
    return make_read_only_keys(seaweed)


@pytest.fixture(scope="module")
def shared(seaweed: Server, moto_aws: Server, read_only_keys: tuple[str, str]) -> Ctx:
    """One bucket and distribution for the whole table (each case must leave them as found)."""
    bucket = f"bad-{secrets.token_hex(8)}"
    seaweed.client("s3").create_bucket(Bucket=bucket)
    return Ctx(
        bucket=bucket,
        dist=create_distribution(moto_aws, bucket),
        key_id=seaweed.access_key,
        secret=seaweed.secret_key,
        ro_key_id=read_only_keys[0],
        ro_secret=read_only_keys[1],
    )


def reset_bucket(seaweed: Server, bucket: str) -> None:
    """Make `bucket` hold exactly `REMOTE_BEFORE` again (if a case changed it)."""
    client = seaweed.client("s3")
    current = snapshot(seaweed, bucket)
    if set(current) != set(REMOTE_BEFORE) or any(
        current[k].strip('"') != hashlib.md5(v).hexdigest() for k, v in REMOTE_BEFORE.items()
    ):
        if current:
            client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in current]})
        for key, body in REMOTE_BEFORE.items():
            client.put_object(Bucket=bucket, Key=key, Body=body)


@pytest.fixture
def ctx(shared: Ctx, seaweed: Server) -> Ctx:
    """The shared bucket holding exactly `REMOTE_BEFORE`."""
    reset_bucket(seaweed, shared.bucket)
    return shared


def good_inputs(ctx: Ctx) -> dict[str, str]:
    return {
        "aws-access-key-id": ctx.key_id,
        "aws-secret-access-key": ctx.secret,
        "aws-region": "us-east-1",
        "bucket": ctx.bucket,
        "distribution-id": ctx.dist,
        "source-dir": "site",
    }


def case_inputs(case: Case, ctx: Ctx) -> dict[str, str]:
    inputs = good_inputs(ctx)
    values = vars(ctx)
    for name, value in case.inputs.items():
        inputs[name] = value.format(**values)
    return inputs


def check_clean_failure(
    result: ActionResult, expect: tuple[str, ...], *, allow_traceback: bool = False
) -> str:
    """Non-zero exit, exactly one `::error` naming `expect`, no traceback. Returns it."""
    assert result.returncode != 0, result.describe()
    errors = error_annotations(result.stdout)
    assert len(errors) == 1, f"want exactly one ::error, got {len(errors)}\n{result.describe()}"
    message = errors[0]
    for needle in expect:
        assert needle.lower() in message.lower(), f"{needle!r} not in the annotation {message!r}"
    if not allow_traceback:
        assert TRACEBACK not in result.stdout + result.stderr, result.describe()
    assert "Exception" not in message or "Unexpected" not in message, message
    return message


def test_the_good_inputs_deploy(
    run_action: RunAction, tmp_path: Path, ctx: Ctx, seaweed: Server, moto_aws: Server
) -> None:
    """The baseline every case spoils one thing of does deploy, so each failure is the case's."""
    workspace = make_workspace(tmp_path)
    invalidations = invalidation_count(moto_aws, ctx.dist)
    result = run_action(workspace, {**good_inputs(ctx), "max-delete": "3"})
    assert result.returncode == 0, result.describe()
    assert error_annotations(result.stdout) == []
    assert set(snapshot(seaweed, ctx.bucket)) >= set(SITE_FILES)
    assert "stale-1.txt" not in snapshot(seaweed, ctx.bucket)
    assert invalidation_count(moto_aws, ctx.dist) == invalidations + 1


def run_batch(
    jobs: Mapping[str, tuple[Path, Mapping[str, str], Mapping[str, str]]],
    *,
    seaweed: Server,
    moto: Server,
    root: Path,
) -> dict[str, ActionResult]:
    """Run many entrypoints at once, each as the runner would (they are independent)."""
    endpoints = {"s3": seaweed.endpoint, "cloudfront": moto.endpoint, "sts": moto.endpoint}

    def one(name: str) -> ActionResult:
        workspace, inputs, env = jobs[name]
        return run_entrypoint(
            workspace, inputs, endpoints=endpoints, extra_env=env, runner_dir=root / name
        )

    with ThreadPoolExecutor(max_workers=PARALLEL_RUNS) as pool:
        return dict(zip(jobs, pool.map(one, jobs), strict=True))


@dataclass(frozen=True)
class Batch:
    results: dict[str, ActionResult]
    before: dict[str, str]
    after: dict[str, str]
    invalidations_before: int
    invalidations_after: int


@pytest.fixture(scope="module")
def offline_batch(
    shared: Ctx, seaweed: Server, moto_aws: Server, tmp_path_factory: pytest.TempPathFactory
) -> Batch:
    """Every case that must fail before any write, run in parallel against the shared bucket."""
    root = tmp_path_factory.mktemp("bad-input-batch")
    reset_bucket(seaweed, shared.bucket)
    jobs = {
        case.id: (make_workspace(root / case.id), case_inputs(case, shared), case.env)
        for case in CASES
        if case.id not in SEQUENTIAL
    }
    before = snapshot(seaweed, shared.bucket)
    invalidations = invalidation_count(moto_aws, shared.dist)
    results = run_batch(jobs, seaweed=seaweed, moto=moto_aws, root=root / "runners")
    return Batch(
        results=results,
        before=before,
        after=snapshot(seaweed, shared.bucket),
        invalidations_before=invalidations,
        invalidations_after=invalidation_count(moto_aws, shared.dist),
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_fails_cleanly_and_writes_nothing(
    case: Case,
    run_action: RunAction,
    tmp_path: Path,
    shared: Ctx,
    seaweed: Server,
    moto_aws: Server,
    request: pytest.FixtureRequest,
) -> None:
    """Non-zero exit, one annotation naming the input and fix, no traceback, nothing written."""
    if case.id in SEQUENTIAL:
        reset_bucket(seaweed, shared.bucket)
        before = snapshot(seaweed, shared.bucket)
        invalidations = invalidation_count(moto_aws, shared.dist)
        result = run_action(
            make_workspace(tmp_path), case_inputs(case, shared), extra_env=dict(case.env)
        )
        after, invalidations_after = (
            snapshot(seaweed, shared.bucket),
            invalidation_count(moto_aws, shared.dist),
        )
    else:
        batch: Batch = request.getfixturevalue("offline_batch")
        result = batch.results[case.id]
        before, after = batch.before, batch.after
        invalidations, invalidations_after = batch.invalidations_before, batch.invalidations_after
        # In the batch a write would show up for every case: this line names the culprit.
        assert "Uploading" not in result.stdout and "Deleting" not in result.stdout
    check_clean_failure(result, case.expect)
    assert after == before, f"the bucket changed\n{result.describe()}"
    assert invalidations_after == invalidations, result.describe()
    assert shared.secret not in visible(result)


def test_at_least_25_cases() -> None:
    """The table keeps covering the issue's list (at least 25 distinct cases)."""
    assert len({c.id for c in CASES}) == len(CASES) >= 25


@pytest.mark.parametrize("case_id", ["bucket-upper-underscore", "bucket-missing", "wrong-secret"])
def test_runner_debug_keeps_expected_errors_clean(
    case_id: str, run_action: RunAction, tmp_path: Path, ctx: Ctx, seaweed: Server
) -> None:
    """With RUNNER_DEBUG=1 an expected error is still one annotation and no traceback."""
    case = next(c for c in CASES if c.id == case_id)
    before = snapshot(seaweed, ctx.bucket)
    result = run_action(
        make_workspace(tmp_path), case_inputs(case, ctx), extra_env={"RUNNER_DEBUG": "1"}
    )
    check_clean_failure(result, case.expect)
    assert snapshot(seaweed, ctx.bucket) == before
    assert ctx.secret not in visible(result)


def _corrupt_sizes(method: str, path: str, status: int, body: bytes) -> bytes:
    """Make ListObjectsV2 answers unparseable as numbers: an S3 server with a bug."""
    if method == "GET" and "list-type=2" in path:
        return re.sub(rb"<Size>\d+</Size>", b"<Size>lots</Size>", body)
    return body


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "RUNNER_DEBUG"])
def test_unexpected_error_traceback_only_with_runner_debug(
    debug: bool, run_action: RunAction, tmp_path: Path, ctx: Ctx, seaweed: Server
) -> None:
    """A server answer the program cannot read: one annotation; a traceback only in debug.

    The corrupt answer reaches botocore's parser (an HTTP proxy sends every request
    through botocore; the fault proxy doubles as one), which fails on it with an error
    this program does not expect. Through s3wire the same answer is an expected error
    naming `endpoint-url` (tests/integration/test_s3store.py)."""
    before = snapshot(seaweed, ctx.bucket)
    with FaultProxy(seaweed.endpoint, response_hook=_corrupt_sizes) as proxy:
        inputs = {**good_inputs(ctx), "endpoint-url": seaweed.endpoint}
        env = {"HTTP_PROXY": proxy.url, "NO_PROXY": ""}
        if debug:
            env["RUNNER_DEBUG"] = "1"
        result = run_action(make_workspace(tmp_path), inputs, extra_env=env)
    assert result.returncode != 0, result.describe()
    errors = error_annotations(result.stdout)
    assert len(errors) == 1, result.describe()
    has_traceback = TRACEBACK in result.stdout + result.stderr
    assert has_traceback is debug, result.describe()
    if not debug:
        assert "RUNNER_DEBUG" in errors[0]
    assert snapshot(seaweed, ctx.bucket) == before
    assert ctx.secret not in visible(result)
