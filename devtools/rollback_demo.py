"""`make demo-rollback`: a new build, a rollback, and the grace period, on loopback servers.

1. Start SeaweedFS (S3) and moto server (CloudFront); a bucket and a distribution.
2. v1: deploy examples/site as the GitHub Action.
3. v2: the same site rebuilt: every fingerprinted asset has a new name (as a bundler
   gives when the code changes) and the pages point at the new names. v1's assets
   are kept for `keep-removed-assets` (pages still open keep working).
4. Rollback: deploy v1 again (what re-running the previous commit's job does). Only
   the pages that differ are uploaded; v2's assets are now the kept ones.
5. A week later: the deploy record's dates are moved back 7 days (the time injection
   the tests use; nothing is slept) and v1 is deployed again: v2's assets are pruned.

Each step prints the step outputs the Action set (uploaded, deleted, retained, pruned).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from deployer.headers import is_fingerprinted
from devtools.action import ActionResult, run_entrypoint
from devtools.demo import EXAMPLE_SITE, action_inputs, say
from devtools.servers import Server, create_distribution, moto_server, seaweedfs

BUCKET = "demo-rollback"
RECORD = ".s3-cloudfront-deploy.json"
_HASH = re.compile(r"-([A-Za-z0-9_]{8})\.")
COUNTS = ("uploaded-count", "deleted-count", "unchanged-count", "retained-count", "pruned-count")


def rebuild(site: Path) -> list[tuple[str, str]]:
    """v2: a new name (and a changed byte) for every fingerprinted asset, references
    updated in every text file; returns the (old, new) names."""
    renamed: list[tuple[str, str]] = []
    for path in sorted(site.rglob("*")):
        rel = path.relative_to(site).as_posix()
        match = _HASH.search(path.name)
        if not path.is_file() or match is None or not is_fingerprinted(rel):
            continue
        new_name = path.name.replace(match.group(1), "v2" + match.group(1)[2:][::-1])
        path.rename(path.with_name(new_name))
        with path.with_name(new_name).open("ab") as handle:
            handle.write(b"\n" if path.suffix in (".js", ".css") else b"\0")
        renamed.append((path.name, new_name))
    for path in site.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".js", ".css", ".webmanifest"):
            text = path.read_text(encoding="utf-8")
            for old, new in renamed:
                text = text.replace(old, new)
            path.write_text(text, encoding="utf-8")
    return renamed


def a_week_later(s3: Server) -> None:
    """Move every `removed_at` in the deploy record back seven days."""
    client = s3.client("s3")
    data = json.loads(client.get_object(Bucket=BUCKET, Key=RECORD)["Body"].read())
    week_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7 * 86400))
    for entry in data["objects"].values():
        if "removed_at" in entry:
            entry["removed_at"] = week_ago
    client.put_object(Bucket=BUCKET, Key=RECORD, Body=json.dumps(data).encode())


def report(step: str, result: ActionResult, rows: list[list[str]]) -> bool:
    if result.returncode != 0:
        print(result.describe())
        return False
    out = result.outputs
    print(out.get("changed-keys", ""))
    summary = [line for line in result.stdout.splitlines() if not line.startswith("::")]
    print(summary[-1] if summary else "")
    rows.append([step, *(out.get(name, "") for name in COUNTS), out.get("invalidation-paths", "")])
    return True


def main() -> int:
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="s3cfd-rollback-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        say("1. Starting SeaweedFS (S3) and moto server (CloudFront) on 127.0.0.1")
        s3 = stack.enter_context(seaweedfs(root / "servers"))
        aws = stack.enter_context(moto_server(root / "servers"))
        s3.client("s3").create_bucket(Bucket=BUCKET)
        distribution = create_distribution(aws, BUCKET)
        workspace = root / "workspace"
        site = workspace / "site"
        endpoints = {"s3": s3.endpoint, "cloudfront": aws.endpoint, "sts": aws.endpoint}
        inputs = action_inputs(s3, BUCKET, distribution)

        def deploy(step: str) -> bool:
            runner = root / f"runner-{len(rows)}"
            result = run_entrypoint(workspace, inputs, endpoints=endpoints, runner_dir=runner)
            return report(step, result, rows)

        say("2. v1: examples/site")
        shutil.copytree(EXAMPLE_SITE, site)
        if not deploy("v1"):
            return 1
        say("3. v2: every fingerprinted asset renamed by the rebuild")
        for old, new in rebuild(site):
            print(f"renamed {old} -> {new}")
        if not deploy("v2"):
            return 1
        say("4. Rollback to v1 (re-running the previous commit's deploy job)")
        shutil.rmtree(site)
        shutil.copytree(EXAMPLE_SITE, site)
        if not deploy("rollback to v1"):
            return 1
        say("5. A week later (the record's dates moved back 7 days): v1 deployed again")
        a_week_later(s3)
        if not deploy("v1, a week later"):
            return 1
        say("6. Stopping the servers")
    width = max(len(row[0]) for row in rows)
    print("\n" + "step".ljust(width) + "  uploaded deleted unchanged retained pruned  invalidated")
    for step, up, deleted, same, kept, pruned, paths in rows:
        print(f"{step.ljust(width)}  {up:>8} {deleted:>7} {same:>9} {kept:>8} {pruned:>6}  {paths}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
