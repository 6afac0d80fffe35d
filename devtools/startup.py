"""Measure the start-up cost: CPU time from process start to the first S3 connection,
and the whole CPU time of a small no-change deploy.

    .venv/bin/python -m devtools.startup                  # both, 9 runs each
    .venv/bin/python -m devtools.startup --first-only     # no server needed
    .venv/bin/python -m devtools.startup --profile out.prof  # cProfile of that span
    .venv/bin/python -m devtools.startup --roots /tmp/old,.  # A/B, runs interleaved
    .venv/bin/python -m devtools.startup --breakdown      # CPU per start-up phase

"First connection": a child process runs the console script's code with a hook on
`socket.socket.connect` that prints `time.process_time()` (CPU of the whole process so
far, interpreter start included) and exits. CPU time is steadier than wall time on a
shared machine, and interleaving two checkouts (`--roots`, each a folder holding a
`deployer` package) compares them under the same load. The whole-run figure is the
child's user + system time (`getrusage`) of a no-change deploy of a `--files` site to
SeaweedFS.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devtools.servers import seaweedfs

ROOT = Path(__file__).resolve().parent.parent

# Runs in the child: stop at the first connect, report the CPU spent so far.
_HOOK = """
import os, socket, sys, time
def _first_connect(self, address):
    sys.stderr.write(f"FIRST-CONNECT {time.process_time():.6f}\\n")
    sys.stderr.flush()
    os._exit(0)
socket.socket.connect = _first_connect
"""
_RUN = "from deployer.cli import console_main\nconsole_main()\n"
_PROFILED = """
import cProfile, os, socket, sys, time
_profile = cProfile.Profile(time.process_time)  # CPU, not wall time
def _first_connect(self, address):
    _profile.disable()
    _profile.dump_stats(os.environ["STARTUP_PROFILE"])
    os._exit(0)
socket.socket.connect = _first_connect
_profile.enable()
from deployer.cli import console_main
console_main()
"""

# Runs in the child: the CLI's start path, phase by phase, CPU time after each.
_BREAKDOWN = """
import time
marks = [("interpreter start", time.process_time())]
def mark(label):
    marks.append((label, time.process_time()))
import os, sys
from pathlib import Path
import deployer.cli
from deployer.github import Runner
mark("import deployer.cli (argparse, github, interface, model)")
import pydantic
mark("import pydantic")
import deployer.settings
mark("build the settings models (deployer.settings)")
import deployer.deploy
mark("import deploy, local, plan, record, report")
import botocore.session
mark("import botocore.session (and botocore.client)")
import deployer.auth, deployer.aws, deployer.s3, deployer.cloudfront
mark("import auth, aws, s3, s3wire, cloudfront")
env = dict(os.environ)
runner = Runner(env, open(os.devnull, "w"))
args = vars(deployer.cli.build_parser().parse_args(sys.argv[1:]))
mark("parse the command line")
settings = deployer.settings.load_settings(args, env, Path.cwd())
mark("validate the settings")
session = deployer.auth.make_session(settings, env, runner.mask)
mark("make the botocore session")
client = deployer.aws.s3_client(session, settings)
mark("create the S3 client")
width = max(len(label) for label, _ in marks)
for (label, at), (_, before) in zip(marks, [(None, 0.0), *marks]):
    print(f"{label:<{width}}  {1000 * (at - before):6.1f} ms  (at {1000 * at:6.1f})")
"""


def _site(root: Path, files: int) -> Path:
    rng = random.Random(7)  # noqa: S311 - test data, not a secret
    site = root / "site"
    for index in range(files):
        path = site / f"d{index % 37}" / f"e{index % 11}" / f"f{index}.{rng.choice('abc')}.js"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(100, 2000)))
    (site / "index.html").write_text("<html></html>")
    return site


def _env(endpoint: str, key: str, secret: str, root: Path = ROOT) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "S3CFD_", "INPUT_", "GITHUB_"))
    }
    env.update(
        AWS_ACCESS_KEY_ID=key,
        AWS_SECRET_ACCESS_KEY=secret,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONPATH=str(root),
        S3CFD_ENDPOINT_URL=endpoint,
        AWS_REGION="us-east-1",
    )
    return env


def _argv(bucket: str, site: Path) -> list[str]:
    return ["--bucket", bucket, "--source-dir", str(site), "--max-delete", "100000"]


def first_connect_cpu(env: dict[str, str], argv: list[str], cwd: Path) -> float:
    """CPU seconds of a fresh process up to its first `connect`."""
    code = _HOOK + f"sys.argv = {['s3-cloudfront-deploy', *argv]!r}\n" + _RUN
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    for line in done.stderr.splitlines():
        if line.startswith("FIRST-CONNECT "):
            return float(line.split()[1])
    raise RuntimeError(f"no connect seen:\n{done.stdout}\n{done.stderr}")


def whole_run_cpu(env: dict[str, str], argv: list[str], cwd: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one whole deploy in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", f"import sys\nsys.argv = {['x', *argv]!r}\n" + _RUN],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"deploy failed:\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def _summary(label: str, values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"{label}: median {statistics.median(ordered):.3f} s, min {ordered[0]:.3f}, "
        f"max {ordered[-1]:.3f} (n={len(ordered)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--first-only", action="store_true", help="no server, no whole run")
    parser.add_argument("--profile", metavar="PATH", help="cProfile the span to first connect")
    parser.add_argument("--breakdown", action="store_true", help="CPU per start-up phase")
    parser.add_argument(
        "--roots", default=str(ROOT), help="comma-separated checkouts to compare (interleaved)"
    )
    args = parser.parse_args()
    roots = [Path(part).resolve() for part in args.roots.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        site = _site(work, 10 if args.first_only else args.files)
        if args.first_only or args.profile or args.breakdown:
            env = _env("http://127.0.0.1:9", "AKIDEXAMPLE", "secret", roots[-1])
            argv = _argv("probe-bucket", site)
            if args.breakdown:
                code = f"import sys\nsys.argv = {['x', *argv]!r}\n" + _BREAKDOWN
                subprocess.run([sys.executable, "-c", code], env=env, cwd=work, check=True)
                return
            if args.profile:
                env["STARTUP_PROFILE"] = str(Path(args.profile).resolve())
                code = f"import sys\nsys.argv = {['x', *argv]!r}\n" + _PROFILED
                subprocess.run([sys.executable, "-c", code], env=env, cwd=work, check=False)
                print(f"profile written to {args.profile}")
                return
            firsts: dict[Path, list[float]] = {root: [] for root in roots}
            for _ in range(args.reps):
                for root in roots:
                    env["PYTHONPATH"] = str(root)
                    firsts[root].append(first_connect_cpu(env, argv, work))
            for root in roots:
                print(_summary(f"{root}: CPU to first connect", firsts[root]))
            return
        with seaweedfs(work) as server:
            server.client("s3").create_bucket(Bucket="startup")
            env = _env(server.endpoint, server.access_key, server.secret_key)
            argv = _argv("startup", site)
            whole_run_cpu(env, argv, work)  # the cold deploy
            first: dict[Path, list[float]] = {root: [] for root in roots}
            whole: dict[Path, list[float]] = {root: [] for root in roots}
            walls: dict[Path, list[float]] = {root: [] for root in roots}
            for _ in range(args.reps):
                for root in roots:
                    env["PYTHONPATH"] = str(root)
                    first[root].append(first_connect_cpu(env, argv, work))
                    cpu, wall = whole_run_cpu(env, argv, work)
                    whole[root].append(cpu)
                    walls[root].append(wall)
            for root in roots:
                print(f"{root}:")
                print(_summary("  CPU to first connect", first[root]))
                print(_summary(f"  CPU of a no-change deploy of {args.files} files", whole[root]))
                print(_summary("  wall time of that deploy", walls[root]))


if __name__ == "__main__":
    main()
