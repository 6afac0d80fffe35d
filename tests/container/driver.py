"""Run the action's image exactly as the GitHub runner does, against local servers.

`tests/container/run.sh` builds the image and calls `driver.py rehearse` (the release
rehearsal: push to a loopback registry, forget the image, pin a copy of action.yml to the
pushed digest, pull it as the runner pulls a `docker://` action, then every check of
`driver.py test` against it); `measure.sh` calls `driver.py measure`. They need a Docker
engine (`DOCKER_HOST`), SeaweedFS and moto server (`devtools/servers.py`), and the repository
on `PYTHONPATH`.

The container is started the way the runner's `ContainerActionHandler` starts it:
`docker run --workdir /github/workspace --rm` with `-e NAME` for every declared
input (`INPUT_<NAME>`, hyphens kept, default when unset), `HOME`, `GITHUB_*`,
`RUNNER_*`, `CI`, `GITHUB_ACTIONS`, the values passed through the docker client's
own environment (as the runner does: they stay out of the command line), and the
`/github/{workspace,home,workflow,file_commands}` mounts, with `GITHUB_OUTPUT` and
`GITHUB_STEP_SUMMARY` under `/github/file_commands`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from deployer.interface import OUTPUTS
from devtools.action import input_env, parse_github_output
from devtools.oidc import token_endpoint
from devtools.servers import Server, create_distribution, moto_server, seaweedfs
from tests.container import release
from tests.container.startup import load, measure_startup

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REPO_ROOT = Path(__file__).resolve().parents[2]
BUCKET = "container-site"
SIZE_BUDGET_MB = 40.0
NO_CHANGE_BUDGET_S = 2.0
TRACEBACK = "Traceback (most recent call last)"
ERROR_ANNOTATION = re.compile(r"^::error(?: [^:]*)?::", re.MULTILINE)


# --------------------------------------------------------------------------- results


@dataclass
class Checks:
    """Named pass/fail checks; the closing line is `N passed, N failed`."""

    passed: int = 0
    failures: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"PASS {name}", flush=True)
        else:
            self.failures.append(name)
            print(f"FAIL {name}", flush=True)
            if detail:
                print("     " + detail.replace("\n", "\n     "), flush=True)
        return ok


@dataclass(frozen=True)
class Run:
    """What one `docker run` left behind."""

    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    seconds: float

    def text(self) -> str:
        """Everything a user could see: `::add-mask::` lines are the runner's, not shown."""
        shown = [
            line
            for line in (self.stdout + "\n" + self.stderr).splitlines()
            if not line.startswith("::add-mask::")
        ]
        return "\n".join([*shown, self.summary, *self.outputs.values()])

    def describe(self) -> str:
        return (
            f"exit {self.returncode} in {self.seconds:.2f} s\n--- stdout\n{self.stdout[-4000:]}"
            f"\n--- stderr\n{self.stderr[-4000:]}\n--- outputs\n{self.outputs}"
        )


# --------------------------------------------------------------------------- the runner


@dataclass
class FakeRunner:
    """The host side of a job: the folders the runner mounts and the variables it sets."""

    image: str
    root: Path
    s3: Server
    aws: Server
    runs: int = 0
    # The action.yml the runner read (a pinned docker:// action): its inputs and defaults.
    # None: deployer.interface's, which action.yml follows (tests/unit/test_interface.py).
    action: release.DockerAction | None = None

    @property
    def workspace(self) -> Path:
        return self.root / "workspace"

    def prepare(self) -> None:
        for name in ("workspace", "home", "workflow", "file_commands"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        (self.root / "workflow" / "event.json").write_text('{"ref": "refs/heads/main"}\n')

    def run(
        self,
        inputs: Mapping[str, str],
        extra_env: Mapping[str, str] | None = None,
        *,
        override: tuple[str, ...] = (),
    ) -> Run:
        """One step: a fresh GITHUB_OUTPUT / GITHUB_STEP_SUMMARY, then `docker run`.

        `override` (measurements only): `--entrypoint` and its arguments instead of the image's.
        """
        self.runs += 1
        commands = self.root / "file_commands"
        output_name = f"set_output_{uuid.uuid4()}"
        summary_name = f"step_summary_{uuid.uuid4()}"
        (commands / output_name).write_text("")
        (commands / summary_name).write_text("")
        env: dict[str, str] = {
            "HOME": "/github/home",
            "GITHUB_JOB": "deploy",
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_SHA": "8f3b6a1c" * 5,
            "GITHUB_REPOSITORY": "octo-org/octo-site",
            "GITHUB_REPOSITORY_OWNER": "octo-org",
            "GITHUB_RUN_ID": str(7000000 + os.getpid()),
            "GITHUB_RUN_NUMBER": str(self.runs),
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_ACTOR": "octocat",
            "GITHUB_WORKFLOW": "Deploy",
            "GITHUB_HEAD_REF": "",
            "GITHUB_BASE_REF": "",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_API_URL": "https://api.github.com",
            "GITHUB_GRAPHQL_URL": "https://api.github.com/graphql",
            "GITHUB_REF_NAME": "main",
            "GITHUB_REF_TYPE": "branch",
            "GITHUB_WORKSPACE": "/github/workspace",
            "GITHUB_ACTION": "__octo-org_s3-cloudfront-deploy",
            "GITHUB_EVENT_PATH": "/github/workflow/event.json",
            "GITHUB_ACTION_REPOSITORY": "octo-org/s3-cloudfront-deploy",
            "GITHUB_ACTION_REF": "v1",
            "GITHUB_PATH": "/github/file_commands/add_path_" + str(uuid.uuid4()),
            "GITHUB_ENV": "/github/file_commands/set_env_" + str(uuid.uuid4()),
            "GITHUB_STEP_SUMMARY": "/github/file_commands/" + summary_name,
            "GITHUB_STATE": "/github/file_commands/save_state_" + str(uuid.uuid4()),
            "GITHUB_OUTPUT": "/github/file_commands/" + output_name,
            "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64",
            "RUNNER_NAME": "GitHub Actions 2",
            "RUNNER_ENVIRONMENT": "github-hosted",
            "RUNNER_TOOL_CACHE": "/opt/hostedtoolcache",
            "RUNNER_TEMP": "/home/runner/work/_temp",
            "RUNNER_WORKSPACE": "/home/runner/work/octo-site",
            "ACTIONS_RUNTIME_URL": "",
            "ACTIONS_CACHE_URL": "",
            # The step's `env:` in the user's workflow: the local servers.
            "AWS_ENDPOINT_URL_S3": self.s3.endpoint,
            "AWS_ENDPOINT_URL_CLOUDFRONT": self.aws.endpoint,
            "AWS_ENDPOINT_URL_STS": self.aws.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        env.update(self.action.input_env(dict(inputs)) if self.action else input_env(inputs))
        if extra_env:
            env.update(extra_env)
        env["CI"] = "true"
        env["GITHUB_ACTIONS"] = "true"
        argv = ["docker", "run", "--name", f"s3cfd-test-{os.getpid()}-{self.runs}"]
        argv += ["--label", "s3cfd-container-test", "--workdir", "/github/workspace", "--rm"]
        client_env = {k: v for k, v in os.environ.items() if k in ("PATH", "DOCKER_HOST")}
        for name, value in env.items():
            # The runner passes `-e NAME` and the value through the docker client's own
            # environment; a variable the client itself needs goes on the command line.
            argv += ["-e", f"{name}={value}" if name in client_env else name]
        for host, inside in (
            ("home", "/github/home"),
            ("workflow", "/github/workflow"),
            ("file_commands", "/github/file_commands"),
            ("workspace", "/github/workspace"),
        ):
            argv += ["-v", f"{self.root / host}:{inside}"]
        if override:
            argv += ["--entrypoint", override[0]]
        argv += ["--network", "host", self.image, *override[1:]]
        client_env = {**env, **client_env}
        started = time.perf_counter()
        proc = subprocess.run(
            argv, env=client_env, capture_output=True, text=True, timeout=300, check=False
        )
        seconds = time.perf_counter() - started
        return Run(
            returncode=proc.returncode,
            stdout=proc.stdout,
            stderr=proc.stderr,
            outputs=parse_github_output((commands / output_name).read_text()),
            summary=(commands / summary_name).read_text(),
            seconds=seconds,
        )


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry under `root` (itself included): type, mode, owner, size, mtime, digest."""
    entries: dict[str, tuple[object, ...]] = {}
    paths = [root, *sorted(root.rglob("*"))]
    for path in paths:
        st = path.lstat()
        digest = ""
        if stat.S_ISREG(st.st_mode):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        entries[str(path.relative_to(root))] = (
            stat.filemode(st.st_mode),
            st.st_uid,
            st.st_gid,
            st.st_size,
            st.st_mtime_ns,
            digest,
        )
    return entries


def diff_snapshots(before: Mapping[str, object], after: Mapping[str, object]) -> str:
    lines = [f"new: {k}" for k in sorted(set(after) - set(before))]
    lines += [f"gone: {k}" for k in sorted(set(before) - set(after))]
    lines += [f"changed: {k}" for k in sorted(set(before) & set(after)) if before[k] != after[k]]
    return "\n".join(lines)


# --------------------------------------------------------------------------- fixtures


SITE: dict[str, bytes] = {
    "index.html": b"<!doctype html><title>Home</title><script src=/assets/app.3f2a1b9c.js>"
    b"</script>\n",
    "about/index.html": b"<!doctype html><title>About</title>\n",
    "assets/app.3f2a1b9c.js": b"console.log('hello from the container test');\n",
    "assets/style.8d7e6f5a.css": b"body { color: #333; }\n",
    "img/logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>\n',
    "docs/caf\u00e9 menu.html": "<!doctype html><title>Caf\u00e9</title>\n".encode(),
    "robots.txt": b"User-agent: *\nAllow: /\n",
}
# In the source folder, never published (safe default excludes).
NEVER_PUBLISHED: dict[str, bytes] = {".env": b"API_TOKEN=do-not-publish\n"}


def write_files(base: Path, files: Mapping[str, bytes], mtime: float) -> None:
    for rel, body in files.items():
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        os.utime(path, (mtime, mtime))


def make_workspace(workspace: Path, site: Mapping[str, bytes]) -> None:
    """A checked-out repository with its build output in `dist/`."""
    old = time.time() - 86400
    write_files(workspace, {".git/HEAD": b"ref: refs/heads/main\n", "README.md": b"# site\n"}, old)
    write_files(workspace / "dist", {**site, **NEVER_PUBLISHED}, old)


def bucket_contents(s3: S3Client, bucket: str) -> dict[str, bytes]:
    contents: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            contents[key] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return contents


@contextmanager
def servers(tmp: Path) -> Iterator[tuple[Server, Server]]:
    with ExitStack() as stack:
        s3 = stack.enter_context(seaweedfs(tmp))
        aws = stack.enter_context(moto_server(tmp))
        s3.client("s3").create_bucket(Bucket=BUCKET)
        yield s3, aws


def base_inputs(s3: Server, distribution_id: str) -> dict[str, str]:
    return {
        "aws-access-key-id": s3.access_key,
        "aws-secret-access-key": s3.secret_key,
        "aws-region": "us-east-1",
        "bucket": BUCKET,
        "source-dir": "dist",
        "distribution-id": distribution_id,
    }


# --------------------------------------------------------------------------- docker facts


def image_size(image: str) -> int:
    size = release.inspect(image, "Size")
    assert isinstance(size, int)
    return size


IMAGE_PROBE = r"""
import importlib.util, json, pathlib, sys
import boto3, botocore
import botocore.session
session = botocore.session.get_session()
clients = []
for service in ("s3", "cloudfront", "sts"):
    session.create_client(service, region_name="us-east-1",
                          aws_access_key_id="AK", aws_secret_access_key="SK")
    clients.append(service)
def services(pkg):
    data = pathlib.Path(pkg.__file__).parent / "data"
    return sorted(p.name for p in data.iterdir() if p.is_dir())
roots = [pathlib.Path(sys.prefix) / "lib", pathlib.Path("/app")]
missing = []
for root in roots:
    for src in root.rglob("*.py"):
        if src.name == "entrypoint.py":
            continue
        tag = sys.implementation.cache_tag
        pyc = src.parent / "__pycache__" / f"{src.stem}.{tag}.pyc"
        if not pyc.exists():
            missing.append(str(src))
print(json.dumps({
    "installers": [m for m in ("pip", "setuptools", "wheel") if importlib.util.find_spec(m)],
    "botocore_services": services(botocore),
    "boto3_services": services(boto3),
    "botocore_top_files": sorted(p.name for p in
        (pathlib.Path(botocore.__file__).parent / "data").iterdir() if p.is_file()),
    "clients": clients,
    "uncompiled": missing[:20],
    "uncompiled_count": len(missing),
    "app_extra": sorted(str(p) for p in pathlib.Path("/app").rglob("*")
        if p.is_file() and p.suffix != ".pyc" and p.name != "entrypoint.py"
        and not (p.parent.name == "deployer" and p.suffix == ".py")),
}))
"""


PROBE_ARGV = ("docker", "run", "--rm", "--network", "none", "--entrypoint", "/opt/venv/bin/python")


def check_image(checks: Checks, image: str, base: str) -> None:
    config = release.inspect(image, "Config")
    assert isinstance(config, dict)
    entrypoint = config.get("Entrypoint") or []
    checks.check(
        "image: absolute ENTRYPOINT, no USER, no WORKDIR",
        bool(entrypoint)
        and all(part.startswith("/") for part in entrypoint)
        and not config.get("User")
        and not config.get("WorkingDir"),
        f"Entrypoint={entrypoint} User={config.get('User')!r} "
        f"WorkingDir={config.get('WorkingDir')!r}",
    )
    env = dict(item.split("=", 1) for item in config.get("Env") or [])
    checks.check(
        "image: PYTHONUNBUFFERED and PYTHONDONTWRITEBYTECODE set",
        env.get("PYTHONUNBUFFERED") == "1" and env.get("PYTHONDONTWRITEBYTECODE") == "1",
        str(env),
    )
    probe = subprocess.run(
        [*PROBE_ARGV, image, "-c", IMAGE_PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if not checks.check("image: probe ran", probe.returncode == 0, probe.stderr[-3000:]):
        return
    facts = json.loads(probe.stdout)
    checks.check("image: no pip, setuptools or wheel", facts["installers"] == [], str(facts))
    checks.check(
        "image: botocore data trimmed to s3, cloudfront, sts",
        facts["botocore_services"] == ["cloudfront", "s3", "sts"]
        and {"endpoints.json", "partitions.json", "_retry.json"}
        <= set(facts["botocore_top_files"]),
        str(facts["botocore_services"]) + " " + str(facts["botocore_top_files"]),
    )
    checks.check("image: boto3 data trimmed", set(facts["boto3_services"]) <= {"s3"}, str(facts))
    checks.check(
        "image: the trimmed botocore creates s3, cloudfront and sts clients",
        facts["clients"] == ["s3", "cloudfront", "sts"],
        str(facts),
    )
    checks.check(
        "image: bytecode compiled at build time",
        facts["uncompiled_count"] == 0,
        f"{facts['uncompiled_count']} without .pyc, e.g. {facts['uncompiled']}",
    )
    checks.check(
        "image: /app holds only entrypoint.py and deployer/*.py (.dockerignore)",
        facts["app_extra"] == [],
        str(facts["app_extra"]),
    )
    added_mb = (image_size(image) - image_size(base)) / 1e6
    print(f"     image adds {added_mb:.1f} MB over {base}", flush=True)
    checks.check(
        f"image: adds at most {SIZE_BUDGET_MB:.0f} MB over its base",
        added_mb <= SIZE_BUDGET_MB,
        f"{added_mb:.1f} MB",
    )


# --------------------------------------------------------------------------- the test


def run_step(
    checks: Checks,
    runner: FakeRunner,
    name: str,
    inputs: Mapping[str, str],
    extra_env: Mapping[str, str] | None = None,
) -> Run:
    """One `docker run`; checks the workspace is left exactly as it was."""
    watched = {"workspace": runner.workspace, "home": runner.root / "home"}
    watched["workflow"] = runner.root / "workflow"
    before = {label: snapshot(path) for label, path in watched.items()}
    result = runner.run(inputs, extra_env)
    after = {label: snapshot(path) for label, path in watched.items()}
    checks.check(
        f"{name}: nothing written into the workspace",
        before["workspace"] == after["workspace"],
        diff_snapshots(before["workspace"], after["workspace"]),
    )
    checks.check(
        f"{name}: nothing written into /github/home or /github/workflow",
        before["home"] == after["home"] and before["workflow"] == after["workflow"],
        diff_snapshots(before["home"], after["home"])
        + diff_snapshots(before["workflow"], after["workflow"]),
    )
    checks.check(
        f"{name}: no traceback",
        TRACEBACK not in result.stdout + result.stderr,
        result.describe(),
    )
    checks.check(
        f"{name}: the secret key appears nowhere",
        runner.s3.secret_key not in result.text(),
        "the SeaweedFS secret key was printed",
    )
    print(f"     {name}: exit {result.returncode} in {result.seconds:.2f} s", flush=True)
    return result


def expect_outputs(checks: Checks, name: str, result: Run, expected: Mapping[str, str]) -> None:
    declared = {spec.name for spec in OUTPUTS}
    got = {k: result.outputs.get(k) for k in expected}
    checks.check(
        f"{name}: outputs {dict(expected)}",
        got == dict(expected) and declared <= set(result.outputs),
        f"outputs: {result.outputs}\n{result.describe()}",
    )


def test(
    image: str,
    base: str,
    checks: Checks | None = None,
    action: release.DockerAction | None = None,
) -> int:
    checks = checks or Checks()
    check_image(checks, image, base)
    tmp = Path(tempfile.mkdtemp(prefix="s3cfd-container-"))
    try:
        with servers(tmp / "servers") as (s3, aws):
            distribution_id = create_distribution(aws, BUCKET)
            runner = FakeRunner(image=image, root=tmp / "runner", s3=s3, aws=aws, action=action)
            runner.prepare()
            make_workspace(runner.workspace, SITE)
            inputs = base_inputs(s3, distribution_id)
            client = s3.client("s3")

            first = run_step(checks, runner, "first deploy", inputs)
            checks.check("first deploy: exit 0", first.returncode == 0, first.describe())
            remote = bucket_contents(client, BUCKET)
            published = {k: v for k, v in remote.items() if not k.startswith(".")}
            checks.check(
                "first deploy: every file in the bucket with its bytes, nothing else",
                published == SITE and ".env" not in remote,
                f"remote keys: {sorted(remote)}",
            )
            head = client.head_object(Bucket=BUCKET, Key="assets/app.3f2a1b9c.js")
            checks.check(
                "first deploy: JavaScript served as text/javascript",
                head["ContentType"].startswith("text/javascript"),
                head["ContentType"],
            )
            expect_outputs(
                checks,
                "first deploy",
                first,
                {"uploaded-count": str(len(SITE)), "deleted-count": "0"},
            )
            checks.check(
                "first deploy: job summary written",
                BUCKET in first.summary,
                f"summary: {first.summary[:2000]!r}",
            )

            # The pypa/gh-action-pypi-publish smoke test: the image depends on nothing
            # from the runner's PATH.
            second = run_step(
                checks,
                runner,
                "no-change deploy (PATH=/nonexistent)",
                inputs,
                {"PATH": "/nonexistent"},
            )
            checks.check("no-change deploy: exit 0", second.returncode == 0, second.describe())
            expect_outputs(
                checks,
                "no-change deploy",
                second,
                {
                    "uploaded-count": "0",
                    "deleted-count": "0",
                    "unchanged-count": str(len(SITE)),
                    "invalidation-id": "",
                },
            )

            edited = dict(SITE)
            edited["index.html"] = SITE["index.html"].replace(b"Home", b"Hoem")  # same size
            del edited["img/logo.svg"]
            os.remove(runner.workspace / "dist" / "img" / "logo.svg")
            write_files(runner.workspace / "dist", {"index.html": edited["index.html"]}, 0)
            os.utime(runner.workspace / "dist" / "index.html")
            third = run_step(checks, runner, "edit + delete deploy", inputs)
            checks.check("edit + delete deploy: exit 0", third.returncode == 0, third.describe())
            remote = bucket_contents(client, BUCKET)
            published = {k: v for k, v in remote.items() if not k.startswith(".")}
            checks.check(
                "edit + delete deploy: bucket matches the edited site",
                published == edited,
                f"remote keys: {sorted(remote)}",
            )
            expect_outputs(
                checks, "edit + delete deploy", third, {"uploaded-count": "1", "deleted-count": "1"}
            )
            paths = json.loads(third.outputs.get("invalidation-paths") or "[]")
            checks.check(
                "edit + delete deploy: CloudFront invalidation of / and the deleted file",
                bool(third.outputs.get("invalidation-id"))
                and "/" in paths
                and "/img/logo.svg" in paths,
                f"outputs: {third.outputs}",
            )

            bad = run_step(checks, runner, "bad input", {**inputs, "max-delete": "lots"})
            checks.check(
                "bad input: fails with an ::error annotation naming the input",
                bad.returncode != 0
                and ERROR_ANNOTATION.search(bad.stdout) is not None
                and "max-delete" in bad.stdout,
                bad.describe(),
            )
            checks.check(
                "bad input: bucket untouched",
                {k: v for k, v in bucket_contents(client, BUCKET).items() if not k.startswith(".")}
                == edited,
            )

            # GitHub OIDC: token from the runner's endpoint, AssumeRoleWithWebIdentity on
            # moto's STS (the trimmed image's sts model), then S3 with the temporary keys
            # (moto's S3 this time: SeaweedFS knows only its own keys).
            oidc_bucket = "container-oidc"
            aws.client("s3").create_bucket(Bucket=oidc_bucket)
            with token_endpoint() as tokens:
                oidc_inputs = {
                    "role-to-assume": "arn:aws:iam::123456789012:role/site-deploy",
                    "aws-region": "us-east-1",
                    "bucket": oidc_bucket,
                    "source-dir": "dist",
                }
                oidc = run_step(
                    checks,
                    runner,
                    "OIDC role deploy",
                    oidc_inputs,
                    {**tokens.env(), "AWS_ENDPOINT_URL_S3": aws.endpoint},
                )
            checks.check(
                "OIDC role deploy: exit 0, token asked once for sts.amazonaws.com",
                oidc.returncode == 0 and tokens.audiences == ["sts.amazonaws.com"],
                f"audiences: {tokens.audiences}\n{oidc.describe()}",
            )
            checks.check(
                "OIDC role deploy: files published with the role's keys, token never shown",
                set(bucket_contents(aws.client("s3"), oidc_bucket)) >= set(edited)
                and tokens.jwt not in oidc.text()
                and tokens.bearer not in oidc.text(),
                oidc.describe(),
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    failed = len(checks.failures)
    if failed:
        print("failed: " + "; ".join(checks.failures), flush=True)
    print(f"{checks.passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


# --------------------------------------------------------------------------- the release


REHEARSAL_NAME = "s3-cloudfront-deploy"


def rehearse(image: str, base: str, registry: str) -> int:
    """The release as release.yml makes it, then the checks against the pinned image only.

    `image` (built from the Dockerfile) is pushed to `registry` and removed locally, so
    the checks can only pass with the image pulled by its digest.
    """
    checks = Checks()
    image_id = release.inspect(image, "Id")
    published = release.publish(image, f"{registry}/{REHEARSAL_NAME}", "rehearsal")
    checks.check(
        "release: the digest the registry reports is the SHA-256 of the manifest it serves",
        published.digest == "sha256:" + hashlib.sha256(published.manifest).hexdigest(),
        f"{published.digest} for {published.manifest[:200]!r}",
    )
    release.forget(image, f"{published.repository}:rehearsal")
    checks.check(
        "release: the built image is gone locally (nothing left to run but a pull)",
        not release.exists(image) and not release.exists(image_id),
        f"{image} ({image_id}) still present",
    )
    tmp = Path(tempfile.mkdtemp(prefix="s3cfd-release-"))
    try:
        pinned = release.pin_copy(REPO_ROOT / "action.yml", tmp, published.reference)
        changed = release.diff_lines(REPO_ROOT / "action.yml", pinned)
        checks.check(
            "release: the pinned action.yml differs only in its image line",
            changed == [("  image: Dockerfile", f"  image: docker://{published.reference}")],
            str(changed),
        )
        action = release.read_action(pinned)
        print(f"     runs.image: docker://{action.image}", flush=True)
        # The runner's "Pull down action image": `docker pull` of the reference as written.
        release.docker("pull", "--quiet", action.image)
        checks.check(
            "release: pulled by digest, the image is the one that was built and pushed",
            release.inspect(action.image, "Id") == image_id,
            f"{release.inspect(action.image, 'Id')} != {image_id}",
        )
        arch = release.inspect(action.image, "Architecture")
        checks.check(
            f"release: the image is for this host (linux/{release.host_arch()})",
            arch == release.host_arch() and release.inspect(action.image, "Os") == "linux",
            f"image architecture {arch}",
        )
        return test(action.image, base, checks, action)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- measurements


def random_site(count: int, seed: int = 7) -> dict[str, bytes]:
    """A build output of `count` files of 1-20 KB: pages, hashed assets, images."""
    rng = random.Random(seed)
    site: dict[str, bytes] = {"index.html": b"<!doctype html><title>bench</title>\n"}
    kinds = (
        "assets/chunk-{:05x}.{:08x}.js",
        "assets/style-{:05x}.{:08x}.css",
        "img/photo-{:05x}-{:08x}.webp",
        "blog/post-{:05x}-{:08x}/index.html",
    )
    for i in range(count - 1):
        rel = kinds[i % len(kinds)].format(i, rng.getrandbits(32))
        site[rel] = rng.randbytes(rng.randint(1024, 20 * 1024))
    return site


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# Runs the entrypoint as the image does, then prints to stderr how long ago the process
# started (from /proc: field 22 of /proc/self/stat against /proc/uptime, 10 ms resolution).
INSIDE_TIMER = (
    "/opt/venv/bin/python",
    "-c",
    """
import os, runpy, sys
def elapsed():
    with open("/proc/self/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
    with open("/proc/uptime") as f:
        return float(f.read().split()[0]) - start
sys.argv = ["/app/entrypoint.py"]
sys.path.insert(0, "/app")
try:
    runpy.run_path("/app/entrypoint.py", run_name="__main__")
finally:
    print(f"inside: {elapsed():.3f}", file=sys.stderr)
""",
)


def measure(image: str, base: str, files: int, repeats: int) -> int:
    print(f"image: {image}  base: {base}  cores: {os.cpu_count()}  load: {load()}", flush=True)
    build = timed(
        lambda: subprocess.run(
            [
                "docker",
                "build",
                "-q",
                "--no-cache",
                "--network",
                "host",
                "--build-arg",
                f"BASE_IMAGE={base}",
                "-t",
                image,
                str(REPO_ROOT),
            ],
            check=True,
            capture_output=True,
            timeout=900,
        )
    )
    added_mb = (image_size(image) - image_size(base)) / 1e6
    start = timed(
        lambda: subprocess.run(
            ["docker", "run", "--rm", "--network", "none", "--entrypoint", "/bin/true", image],
            check=True,
            capture_output=True,
            timeout=120,
        )
    )
    tmp = Path(tempfile.mkdtemp(prefix="s3cfd-measure-"))
    try:
        with servers(tmp / "servers") as (s3, aws):
            runner = FakeRunner(image=image, root=tmp / "runner", s3=s3, aws=aws)
            runner.prepare()
            make_workspace(runner.workspace, random_site(files))
            inputs = base_inputs(s3, create_distribution(aws, BUCKET))
            first = runner.run(inputs)
            if first.returncode != 0:
                print(first.describe(), flush=True)
                return 1
            times: list[float] = []
            inside: list[float] = []
            for _ in range(repeats):
                again = runner.run(inputs)
                if again.returncode != 0 or again.outputs.get("uploaded-count") != "0":
                    print(again.describe(), flush=True)
                    return 1
                times.append(again.seconds)
                # The same deploy timed inside the container: interpreter start to exit.
                timed_inside = runner.run(inputs, override=INSIDE_TIMER)
                found = re.search(r"^inside: ([0-9.]+)$", timed_inside.stderr, re.MULTILINE)
                if timed_inside.returncode != 0 or found is None:
                    print(timed_inside.describe(), flush=True)
                    return 1
                inside.append(float(found.group(1)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    median = statistics.median(times)
    print(f"cold build of the action image (base cached, --no-cache): {build:.1f} s", flush=True)
    print(f"image size over its base: {added_mb:.1f} MB (budget {SIZE_BUDGET_MB:.0f} MB)")
    print(f"container start+exit (/bin/true): {start:.2f} s")
    print(f"first deploy, {files} files: {first.seconds:.2f} s (docker run wall time)")
    print(
        f"no-change deploy, {files} files: median {median:.2f} s, min {min(times):.2f} s, "
        f"max {max(times):.2f} s over {repeats} runs (docker run wall time; budget "
        f"{NO_CHANGE_BUDGET_S:.0f} s)",
        flush=True,
    )
    print(
        f"  of which the program inside the container (interpreter start to exit): median "
        f"{statistics.median(inside):.2f} s, min {min(inside):.2f} s"
    )
    print(f"load average at the end: {load()} (other work on the machine slows every figure)")
    ok = added_mb <= SIZE_BUDGET_MB and median <= NO_CHANGE_BUDGET_S
    print("within budget" if ok else "OVER BUDGET", flush=True)
    return 0 if ok else 1


def example_site() -> dict[str, bytes]:
    root = REPO_ROOT / "examples" / "site"
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def no_change_example(image: str, repeats: int) -> int:
    """The deploy itself, for scale: a no-change deploy of examples/site, as the runner runs it."""
    site = example_site()
    tmp = Path(tempfile.mkdtemp(prefix="s3cfd-startup-"))
    walls: list[float] = []
    inside: list[float] = []
    try:
        with servers(tmp / "servers") as (s3, aws):
            runner = FakeRunner(image=image, root=tmp / "runner", s3=s3, aws=aws)
            runner.prepare()
            make_workspace(runner.workspace, site)
            inputs = base_inputs(s3, create_distribution(aws, BUCKET))
            first = runner.run(inputs)
            if first.returncode != 0:
                print(first.describe(), flush=True)
                return 1
            for _ in range(repeats):
                again = runner.run(inputs)
                timed_inside = runner.run(inputs, override=INSIDE_TIMER)
                found = re.search(r"^inside: ([0-9.]+)$", timed_inside.stderr, re.MULTILINE)
                if again.outputs.get("uploaded-count") != "0" or found is None:
                    print(again.describe() + "\n" + timed_inside.describe(), flush=True)
                    return 1
                walls.append(again.seconds)
                inside.append(float(found.group(1)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"no-change deploy of examples/site ({len(site)} files), docker run wall time: median "
        f"{statistics.median(walls):.2f} s over {repeats} runs (min {min(walls):.2f}); the "
        f"program inside: median {statistics.median(inside):.2f} s; load {load()}",
        flush=True,
    )
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("mode", choices=("test", "rehearse", "measure", "startup"))
    parser.add_argument("--image", required=True)
    parser.add_argument("--base", required=True)
    parser.add_argument(
        "--registry", help="rehearse, startup: the loopback registry, 127.0.0.1:PORT"
    )
    parser.add_argument("--files", type=int, default=500, help="measure: files in the site")
    parser.add_argument(
        "--repeats", type=int, default=7, help="measure: no-change runs; startup: rounds"
    )
    args = parser.parse_args(argv)
    if args.mode == "test":
        return test(args.image, args.base)
    if args.mode in ("rehearse", "startup") and not args.registry:
        parser.error(f"{args.mode} needs --registry")
    if args.mode == "rehearse":
        return rehearse(args.image, args.base, args.registry)
    if args.mode == "startup":
        failed = measure_startup(args.image, args.base, args.registry, args.repeats)
        return failed or no_change_example(args.image, args.repeats)
    return measure(args.image, args.base, args.files, args.repeats)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
