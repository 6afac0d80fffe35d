"""WAN benchmark: the tools against SeaweedFS behind a delay relay (`bench/relay.py`).

    make bench-wan                                      # = .venv/bin/python bench/wan.py
    .venv/bin/python bench/wan.py --quick               # one delay (40 ms), small sites
    .venv/bin/python bench/wan.py --delays 90 --scenarios cold --https only -v

Every tool talks to the relay (one-way delay 10, 40 and 90 ms: 20, 80 and 180 ms
round trips), which talks to SeaweedFS on loopback; plain HTTP runs also pass through
the counting proxy in front of the relay (`bench/proxy.py`: requests by kind, TCP
connections, and the round trips on the critical path, `proxy.rounds`). The HTTPS
variant relays to SeaweedFS's TLS port with a CA made here with `openssl`, given to
every tool (`AWS_CA_BUNDLE` for us and aws, `SSL_CERT_FILE` for s5cmd, `RCLONE_CA_CERT`
for rclone); TLS cannot be counted by a proxy, so those runs are timed only.

Scenarios (each peer with its default settings):
- cold: 1,000 and 5,000 files of 1-20 KB into an empty bucket: ours vs s5cmd;
- unchanged / 1pct: 1,000, 5,000 and 20,000 files after a fresh checkout (every file
  touched), then with 1% of the files changed: ours vs rclone --checksum (each tool's
  bucket filled once beforehand, straight to the server, not through the relay);
- large: about 200 MB with two 80 MiB files, cold, at 40 ms: ours vs s5cmd;
- slowdown: 1,000 files, cold, 30% of writes answered `503 SlowDown` (devtools'
  fault proxy between the relay and the server), ours only: total requests against the
  minimum, and the requests-in-flight limit over the run (our debug log).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import sites  # noqa: E402
from bench.proxy import CountingProxy  # noqa: E402
from bench.relay import RelayProcess  # noqa: E402
from bench.run import Bench, Run, S3Server, ensure_bench_venv, machine_info, workdir  # noqa: E402
from devtools.faultproxy import FaultProxy, Faults  # noqa: E402
from devtools.servers import seaweedfs  # noqa: E402

DELAYS_MS = (10, 40, 90)
MARK_BEGIN = "<!-- bench-wan:begin (written by `bench/wan.py --write`) -->"
MARK_END = "<!-- bench-wan:end -->"


def make_ca(work: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it (openssl)."""
    d = work / "tls"
    d.mkdir()
    ca_key, ca, key, csr, cert = (d / n for n in ("ca.key", "ca.pem", "s.key", "s.csr", "s.pem"))
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=s3cfd bench CA", "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr))  # fmt: skip
    ssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return ca, cert, key


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


@contextlib.contextmanager
def link(
    base: Bench, host: str, port: int, delay_ms: int, scheme: str, rate_mib: float = 0.0
) -> Iterator[tuple[Bench, RelayProcess]]:
    """A `Bench` whose tools reach `host:port` through a relay of `delay_ms` one way, each
    connection capped at `rate_mib` MiB/s when given (and, over plain HTTP, the counting
    proxy in front of it)."""
    with RelayProcess(host, port, delay_ms / 1000, rate_mib * 1024 * 1024) as relay:
        server = S3Server("127.0.0.1", relay.port, base.server.access_key,
                          base.server.secret_key, scheme)  # fmt: skip
        if scheme == "http":
            with CountingProxy("127.0.0.1", relay.port) as proxy:
                yield _bench_like(base, server, proxy, all_via_proxy=True), relay
        else:
            yield _bench_like(base, server, base.proxy, all_via_proxy=False), relay


def _bench_like(
    base: Bench, server: S3Server, proxy: CountingProxy, *, all_via_proxy: bool
) -> Bench:
    bench = Bench(server, proxy, base.work, None, base.verbose, all_via_proxy)
    bench.admin = base.server
    bench.extra_env = base.extra_env
    bench.runs = base.runs  # one list for the whole run
    return bench


def tag(bench: Bench, first: int, **labels: str) -> None:
    """Label the runs from index `first` on (delay, scheme, ...)."""
    for run in bench.runs[first:]:
        run.label = run.label or ",".join(f"{k}={v}" for k, v in labels.items())


def fill(direct: Bench, tool: str, site: Path, name: str) -> str:
    """A bucket holding `site` as `tool` leaves it, filled straight to the server."""
    bucket = direct.new_bucket(f"{name}-{tool}-{int(time.time())}")
    filler = "s5cmd" if tool == "rclone" else tool  # rclone --checksum then sees equal MD5s
    first = len(direct.runs)
    direct.run("fill", filler, 0, site, bucket)
    direct.runs[first:] = []  # not a measurement
    return bucket


def cold(bench: Bench, site: Path, name: str, tools: Sequence[str], reps: int) -> None:
    for rep in range(reps):
        for tool in tools if rep % 2 == 0 else list(reversed(tools)):
            bucket = bench.new_bucket(f"{name}-{tool}-{rep}-{int(time.time() * 1000) % 10**8}")
            bench.run(name, tool, rep, site, bucket)
            bench.drop_bucket(bucket)


def unchanged_and_1pct(
    bench: Bench, site: Path, n: int, buckets: dict[str, str], reps: int, seed: int
) -> None:
    tools = list(buckets)
    for rep in range(reps):
        time.sleep(1.1)
        sites.touch_all(site)
        for tool in tools if rep % 2 == 0 else list(reversed(tools)):
            bench.run(f"unchanged-{n}", tool, rep, site, buckets[tool])
        time.sleep(1.1)
        sites.change_fraction(site, 0.01, seed=seed + rep)
        for tool in tools if rep % 2 == 0 else list(reversed(tools)):
            bench.run(f"1pct-{n}", tool, rep, site, buckets[tool])


def slowdown(
    base: Bench, host: str, port: int, site: Path, n: int, delay_ms: int
) -> dict[str, object]:
    """Cold deploy of `site` with 30% of writes answered 503 SlowDown: requests seen by the
    fault proxy (faults included), the minimum, and our limit's moves (debug log)."""
    faults = Faults(slowdown=0.3, seed=7)
    with FaultProxy(f"http://{host}:{port}", faults) as proxy, \
            RelayProcess("127.0.0.1", proxy.port, delay_ms / 1000) as relay:  # fmt: skip
        server = S3Server("127.0.0.1", relay.port, base.server.access_key, base.server.secret_key)
        bench = _bench_like(base, server, base.proxy, all_via_proxy=False)
        bench.extra_env = {**base.extra_env, "S3CFD_DEBUG": "1"}
        bucket = bench.new_bucket(f"slowdown-{int(time.time())}")
        proxy.reset_stats()
        run = bench.run("slowdown", "ours", 0, site, bucket, label=f"delay={delay_ms}ms")
        stats = proxy.stats
        bench.drop_bucket(bucket)
    log = base.work / "logs" / f"slowdown-ours-{run.label}-0.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    moves = re.findall(r"Requests in flight: (\d+) -> (\d+) \((\w+)", text)
    peak = re.findall(r"at most (\d+) at once, limit now (\d+)", text)
    total = sum(stats.requests.values())
    minimum = 1 + n + 1  # one LIST, one PUT per file, the record
    return {
        "seconds": round(run.seconds, 2),
        "rc": run.rc,
        "requests": total,
        "faults": stats.faults,
        "minimum": minimum,
        "ratio": round(total / minimum, 3),
        "moves": [f"{a}->{b} {why}" for a, b, why in moves],
        "peak_and_final": peak,
    }


def run_all(args: argparse.Namespace, work: Path) -> tuple[list[Run], list[dict[str, object]]]:
    ca, cert, key = make_ca(work)
    n_small, n_mid, n_big = (300, 1000, 2000) if args.quick else (1000, 5000, 20000)
    site_small, site_mid, site_big = work / "site-1k", work / "site-5k", work / "site-20k"
    sites.make_small_site(site_small, n_small, seed=11)
    sites.make_small_site(site_mid, n_mid, seed=12)
    sizes = {n_small: site_small, n_mid: site_mid}
    if "unchanged" in args.scenarios and not args.no_big:
        sites.make_small_site(site_big, n_big, seed=13)
        sizes[n_big] = site_big
    (work / "home").mkdir()
    slow: list[dict[str, object]] = []
    env = {"AWS_CA_BUNDLE": str(ca), "SSL_CERT_FILE": str(ca), "RCLONE_CA_CERT": str(ca)}
    with seaweedfs(work, tls=(cert, key)) as weed, \
            CountingProxy("127.0.0.1", 9) as dummy:  # fmt: skip
        host, port = weed.endpoint.removeprefix("http://").rsplit(":", 1)
        https_port = int(weed.extra["https"].rsplit(":", 1)[1])
        direct = Bench(S3Server(host, int(port), weed.access_key, weed.secret_key), dummy, work,
                       None, args.verbose)  # fmt: skip
        direct.extra_env = env
        schemes = {"both": ("http", "https"), "only": ("https",), "no": ("http",)}[args.https]
        buckets: dict[int, dict[str, str]] = {}
        if "unchanged" in args.scenarios:
            print(f"filling buckets (load {load()}) ...", flush=True)
            for n, site in sizes.items():
                buckets[n] = {t: fill(direct, t, site, f"f{n}") for t in ("ours", "rclone")}
        for delay in args.delays:
            for scheme in schemes:
                if scheme == "https" and delay not in args.https_delays:
                    continue
                up_port = int(port) if scheme == "http" else https_port
                print(f"delay {delay} ms one way, {scheme} (load {load()}) ...", flush=True)
                with link(direct, host, up_port, delay, scheme, args.rate) as (bench, _):
                    first = len(bench.runs)
                    if "cold" in args.scenarios:
                        for n in (n_small, n_mid):
                            cold(bench, sizes[n], f"cold-{n}", ("ours", "s5cmd"), args.reps)
                    if "unchanged" in args.scenarios:
                        for n, site in sizes.items():
                            if scheme == "https" and n == n_big:
                                continue  # skipped over HTTPS: time (see BENCHMARKS.md)
                            unchanged_and_1pct(bench, site, n, buckets[n], args.reps, seed=delay)
                    if "large" in args.scenarios and delay == 40:
                        large = work / "site-large"
                        if not large.exists():
                            if args.quick:
                                sites.make_large_site(large, seed=2, large=1, large_mb=40, small=50)
                            else:
                                sites.make_large_site(
                                    large, seed=2, large=2, large_mb=80, small=400
                                )
                        cold(bench, large, "large", ("ours", "s5cmd"), args.reps)
                    tag(bench, first, delay=f"{delay}ms", scheme=scheme, load=load())
        if "slowdown" in args.scenarios:
            print(f"slowdown (load {load()}) ...", flush=True)
            try:
                slow.append(
                    slowdown(direct, host, int(port), site_small, n_small, args.slowdown_delay)
                )
                slow[-1]["load"] = load()
            except Exception as err:  # keep the tables of everything else
                print(f"slowdown scenario failed: {err!r}", flush=True)
    return direct.runs, slow


def render(runs: list[Run], slow: list[dict[str, object]]) -> str:
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for r in runs:
        if r.scenario == "slowdown":  # its own section below, not a row against a peer
            continue
        labels = dict(p.split("=", 1) for p in r.label.split(",") if "=" in p)
        key = (labels.get("delay", "?"), labels.get("scheme", "?"), r.scenario)
        groups.setdefault(key, []).append(r)
    out: list[str] = []
    for delay in sorted({k[0] for k in groups}, key=lambda d: int(d.rstrip("ms") or 0)):
        rtt = 2 * int(delay.rstrip("ms"))
        out += [f"### One-way delay {delay} (round trip {rtt} ms)", ""]
        out += [
            "| scenario | scheme | ours s | peer | peer s | ours/peer | ours requests | "
            "ours round trips (critical path) | ours connections | peer requests | "
            "peer round trips | failed | load |",
            "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| --- | --- |",
        ]
        for (d, scheme, scenario), rs in sorted(groups.items()):
            if d != delay:
                continue
            ours = [r for r in rs if r.tool == "ours"]
            peers = [r for r in rs if r.tool != "ours"]
            peer = peers[0].tool if peers else "-"
            o = statistics.median(r.seconds for r in ours) if ours else math.nan
            p = statistics.median(r.seconds for r in peers) if peers else math.nan
            loads = sorted({r.label.split("load=")[-1] for r in rs})
            failed = sum(r.rc != 0 for r in rs)
            out.append(
                f"| {scenario} | {scheme} | {o:.2f} | {peer} | {p:.2f} | "
                f"{o / p:.2f}x | {_med(ours, 'requests')} | {_med(ours, 'rounds')} | "
                f"{_med(ours, 'connections')} | {_med(peers, 'requests')} | "
                f"{_med(peers, 'rounds')} | {failed or ''} | {'; '.join(loads)} |"
            )
        out.append("")
    for s in slow:
        out += [
            "### 30% of writes answered 503 SlowDown",
            "",
            "```",
            json.dumps(s, indent=1),
            "```",
            "",
        ]
    return "\n".join(out)


def _med(runs: list[Run], what: str) -> str:
    values = [getattr(r, what) for r in runs if r.counted or r.requests]
    if not values or not any(values):
        return "-"
    return f"{statistics.median(values):.0f}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="40 ms only, 300/1,000/2,000 files, 1 rep")
    p.add_argument("--delays", default=None, help="one-way delays in ms, e.g. 10,40,90")
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 2, quick 1)")
    p.add_argument("--scenarios", default="cold,unchanged,large,slowdown")
    p.add_argument("--https", choices=("both", "only", "no"), default="both")
    p.add_argument(
        "--https-delays", default="40,90", help="delays that also run over HTTPS (default 40,90)"
    )
    p.add_argument("--no-big", action="store_true", help="skip the 20,000-file site")
    p.add_argument("--slowdown-delay", type=int, default=10, help="one-way ms for slowdown")
    p.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="cap each relayed connection at this many MiB/s each way, as a TCP window "
        "caps a stream over a long round trip (default: no cap)",
    )
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--keep", action="store_true")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    args.delays = [int(d) for d in (args.delays or ("40" if args.quick else "10,40,90")).split(",")]
    args.reps = args.reps or (1 if args.quick else 2)
    args.https_delays = {int(d) for d in args.https_delays.split(",")}
    args.scenarios = set(args.scenarios.split(","))
    ensure_bench_venv()
    info = machine_info()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    started = time.monotonic()
    with workdir(args.keep) as work:
        runs, slow = run_all(args, work)
    table = render(runs, slow)
    print()
    print(f"WAN run: {(time.monotonic() - started) / 60:.1f} minutes, load at end {load()}")
    print(table)
    if args.json:
        args.json.write_text(
            json.dumps({"runs": [asdict(r) for r in runs], "slowdown": slow}, indent=1)
        )
    return 1 if any(r.rc != 0 for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
