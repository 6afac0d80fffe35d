"""`make demo`: the whole product on this machine, with nothing but loopback servers.

1. Start SeaweedFS (S3) and moto server (CloudFront) on 127.0.0.1.
2. Create a bucket and a CloudFront distribution in front of it.
3. Deploy a copy of examples/site with the command line tool, as a developer would.
4. Edit a page (same size) and add an image, then deploy again as the GitHub Action
   (entrypoint.py with the runner's environment): the log, the step outputs and the
   Markdown job summary show the incremental upload and the invalidation.
5. Deploy once more without changes: nothing to upload, nothing to invalidate.
6. Stop the servers.

Every deploy runs the real program in a subprocess. Nothing outside a temporary
folder is written; examples/site is not modified.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path

from devtools.action import REPO_ROOT, ActionResult, run_entrypoint
from devtools.servers import Server, create_distribution, moto_server, seaweedfs

EXAMPLE_SITE = REPO_ROOT / "examples" / "site"
BUCKET = "demo-site"
RULE = "=" * 78


def say(title: str) -> None:
    print(f"\n{RULE}\n{title}\n{RULE}", flush=True)


def indent(text: str, prefix: str = "  | ") -> str:
    return textwrap.indent(text.rstrip("\n"), prefix, lambda _line: True)


def local_env(s3: Server, aws: Server, home: Path) -> dict[str, str]:
    """A developer's shell: keys in the environment, endpoints at the local servers.

    Nothing AWS_* is inherited, so a real AWS profile on this machine is never touched.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3CFD_", "INPUT_"))}
    env.pop("GITHUB_ACTIONS", None)
    env.update(
        {
            "HOME": str(home),
            "AWS_ACCESS_KEY_ID": s3.access_key,
            "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            "AWS_REGION": s3.region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL_S3": s3.endpoint,
            "AWS_ENDPOINT_URL_CLOUDFRONT": aws.endpoint,
            "AWS_ENDPOINT_URL_STS": aws.endpoint,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def action_inputs(s3: Server, bucket: str, distribution: str) -> dict[str, str]:
    """The inputs a workflow would give the Action for this bucket and distribution."""
    return {
        "aws-access-key-id": s3.access_key,
        "aws-secret-access-key": s3.secret_key,
        "aws-region": s3.region,
        "bucket": bucket,
        "distribution-id": distribution,
        "source-dir": "site",
    }


def run_cli(args: list[str], cwd: Path, env: Mapping[str, str]) -> int:
    """Run `s3-cloudfront-deploy ARGS` (`python -m deployer`); output goes to the terminal."""
    print("$ s3-cloudfront-deploy " + " ".join(args), flush=True)
    return subprocess.run(
        [sys.executable, "-m", "deployer", *args], cwd=cwd, env=dict(env), check=False
    ).returncode


def show_action_run(result: ActionResult) -> None:
    # The runner consumes `::add-mask::` lines (they never show in the log): so do we.
    masked = [line for line in result.stdout.splitlines() if line.startswith("::add-mask::")]
    shown = [line for line in result.stdout.splitlines() if not line.startswith("::add-mask::")]
    print(f"Log (the runner hides the {len(masked)} `::add-mask::` lines that came first):")
    print(indent("\n".join(shown)))
    if result.stderr.strip():
        print(indent(result.stderr))
    print(f"\nExit code: {result.returncode}")
    print("\nStep outputs (GITHUB_OUTPUT):")
    for name, value in result.outputs.items():
        print(f"  {name} = {value}")
    print("\nJob summary (GITHUB_STEP_SUMMARY, Markdown):")
    print(indent(result.summary or "(empty)"))


def edit_site(site: Path) -> list[str]:
    """A same-size edit of one page and one new image; returns what was changed."""
    page = site / "about" / "index.html"
    html = page.read_text(encoding="utf-8")
    start = html.index(">", html.index("<body")) + 1
    for i in range(start, len(html)):
        if html[i].isascii() and html[i].isalpha():
            html = html[:i] + html[i].swapcase() + html[i + 1 :]
            break
    size = page.stat().st_size
    page.write_text(html, encoding="utf-8")
    assert page.stat().st_size == size
    image = site / "images" / "team-photo.png"
    image.write_bytes((site / "images" / "hero.png").read_bytes() + b"\x00demo")
    return [
        "about/index.html  (one letter's case changed: same size, new content)",
        "images/team-photo.png  (new)",
    ]


def check_invalidation(aws: Server, distribution: str, result: ActionResult) -> None:
    invalidation_id = result.outputs.get("invalidation-id", "")
    if not invalidation_id:
        print("No invalidation was created.")
        return
    got = aws.client("cloudfront").get_invalidation(Id=invalidation_id, DistributionId=distribution)
    batch = got["Invalidation"]
    paths = ", ".join(batch["InvalidationBatch"]["Paths"].get("Items", []))
    print(f"CloudFront (moto) has invalidation {invalidation_id}: {batch['Status']}, paths {paths}")


def main() -> int:
    if not (EXAMPLE_SITE / "index.html").is_file():
        print(f"demo: {EXAMPLE_SITE} is missing; run it from a clone of the repository")
        return 1
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="s3cfd-demo-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        say("1. Starting SeaweedFS (S3) and moto server (CloudFront) on 127.0.0.1")
        s3 = stack.enter_context(seaweedfs(root / "servers"))
        aws = stack.enter_context(moto_server(root / "servers"))
        print(f"S3 (SeaweedFS):        {s3.endpoint}   log: {s3.log_path}")
        print(f"CloudFront (moto):     {aws.endpoint}   log: {aws.log_path}")

        say("2. Creating a bucket and a CloudFront distribution in front of it")
        s3.client("s3").create_bucket(Bucket=BUCKET)
        distribution = create_distribution(aws, BUCKET)
        print(f"bucket {BUCKET}, distribution {distribution} (origin {BUCKET}.s3.amazonaws.com)")

        workspace = root / "workspace"
        site = workspace / "site"
        shutil.copytree(EXAMPLE_SITE, site)
        home = root / "home"
        home.mkdir()
        env = local_env(s3, aws, home)

        say("3. First deploy, from the command line (every file is new)")
        flags = ["--bucket", BUCKET, "--distribution-id", distribution, "--source-dir", "site"]
        if run_cli(flags, workspace, env) != 0:
            print("demo: the first deploy failed (see above)")
            return 1

        say("4. Edit a page and add an image, then deploy as the GitHub Action")
        for line in edit_site(site):
            print(f"changed: {line}")
        endpoints = {"s3": s3.endpoint, "cloudfront": aws.endpoint, "sts": aws.endpoint}
        inputs = action_inputs(s3, BUCKET, distribution)
        print("$ python entrypoint.py   (with INPUT_* and GITHUB_* set as the runner sets them)")
        result = run_entrypoint(workspace, inputs, endpoints=endpoints, runner_dir=root / "runner")
        show_action_run(result)
        if result.returncode != 0:
            print("demo: the incremental deploy failed (see above)")
            return 1
        check_invalidation(aws, distribution, result)

        say("5. Touch every file (as a fresh checkout does) and deploy again: nothing to do")
        now = time.time()
        for path in site.rglob("*"):
            os.utime(path, (now, now))
        if run_cli(flags, workspace, env) != 0:
            print("demo: the unchanged deploy failed (see above)")
            return 1

        say("6. Stopping the servers")
    print(f"\nDemo finished in {time.monotonic() - started:.1f} s. ", end="")
    print("Run it yourself: see `s3-cloudfront-deploy --help` and README.md.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
