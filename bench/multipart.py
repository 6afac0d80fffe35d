"""When does a multipart upload pay? One large file, `S3Store.put_file` to SeaweedFS: one
streamed PUT against parts in parallel, on loopback and through the delay relay.

    .venv/bin/python bench/multipart.py                       # 80 and 256 MiB, 0 and 40 ms
    .venv/bin/python bench/multipart.py --sizes 32,80 --delays 40 --rates 0,50 --reps 3

Each mode uploads the same random file to a fresh bucket, `--reps` times; the best and
all wall times are printed with this process's CPU (the relay and the server run in
processes of their own). `--rates` caps each relayed connection's bandwidth (MiB/s per
direction, 0 = none: the relay's default), as a TCP stream's window caps it over a long
round trip. Modes: `single` (one PUT), `parts:<MiB>` (parts of that size, `--in-flight`
of them at once: the file's own thread and helpers, as in a deploy with free slots).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from bench.relay import RelayProcess  # noqa: E402
from bench.run import workdir  # noqa: E402
from deployer import aws, parts  # noqa: E402
from deployer.model import Headers, LocalFile  # noqa: E402
from deployer.s3 import S3Store  # noqa: E402
from deployer.settings import load_settings  # noqa: E402
from devtools.servers import Server, seaweedfs  # noqa: E402

MIB = 1024 * 1024


def store(server: Server, endpoint: str, bucket: str, work: Path, **args: Any) -> S3Store:
    """A store as `deploy.connect` makes it (s3wire for PUTs and parts), at `endpoint`."""
    site = work / "ws" / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "index.html").write_text("x")  # settings refuse an empty folder
    flags = {"bucket": bucket, "source-dir": "site", "endpoint-url": endpoint}
    flags["aws-region"] = server.region
    settings = load_settings(flags, {"GITHUB_WORKSPACE": str(site.parent)}, work)
    session = boto3.session.Session(
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
    )
    client = aws.s3_client(session, settings, env={})
    return S3Store(client, bucket, credentials=session.get_credentials(), **args)


@contextlib.contextmanager
def link(server: Server, delay_ms: float, rate_mib: float) -> Iterator[str]:
    """The endpoint to use: the server itself, or a relay with that delay and cap."""
    if not delay_ms and not rate_mib:
        yield server.endpoint
        return
    host, port = server.endpoint.rsplit("/", 1)[1].rsplit(":", 1)
    with RelayProcess(host, int(port), delay_ms / 1000, rate_mib * MIB) as relay:
        yield relay.url()


def store_args(mode: str, in_flight: int) -> dict[str, int]:
    if mode == "single":
        return {"multipart_threshold": 1 << 50}
    part = int(mode.removeprefix("parts:")) * MIB
    return {"multipart_threshold": parts.MIN_PART, "part_size": part, "max_concurrency": in_flight}


def measure(args: argparse.Namespace, work: Path) -> None:
    with seaweedfs(work) as server:
        for size in args.sizes:
            path = work / f"file-{size}.bin"
            path.write_bytes(os.urandom(size * MIB))
            md5 = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
            file = LocalFile("media/big.bin", str(path), size * MIB, md5, Headers("video/mp4", ""))
            for delay in args.delays:
                for rate in args.rates:
                    with link(server, delay, rate) as endpoint:
                        for mode in args.modes:
                            walls, cpus = [], []
                            for _ in range(args.reps):
                                bucket = f"mp-{uuid.uuid4().hex[:12]}"
                                server.client("s3").create_bucket(Bucket=bucket)
                                kwargs = store_args(mode, args.in_flight)
                                target = store(server, endpoint, bucket, work, **kwargs)
                                target.prepare()  # a connection open, as in a deploy
                                wall, cpu = time.perf_counter(), time.process_time()
                                target.put_file(file)
                                walls.append(time.perf_counter() - wall)
                                cpus.append(time.process_time() - cpu)
                            print(
                                f"| {size} MiB | {delay:g} ms | {rate or '-'} | {mode} | "
                                f"{min(walls):.2f} | {' '.join(f'{w:.2f}' for w in walls)} | "
                                f"{min(cpus):.2f} |",
                                flush=True,
                            )


def numbers(text: str) -> list[float]:
    return [float(item) for item in text.split(",")]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="80,256", help="file sizes, MiB")
    parser.add_argument("--delays", default="0,40", help="one-way delays, ms (0: no relay)")
    parser.add_argument("--rates", default="0", help="per-connection caps, MiB/s (0: none)")
    parser.add_argument("--modes", default="single,parts:8,parts:16")
    parser.add_argument("--in-flight", type=int, default=parts.HELPERS + 1)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    args.sizes = [int(size) for size in numbers(args.sizes)]
    args.delays, args.rates = numbers(args.delays), numbers(args.rates)
    args.modes = args.modes.split(",")
    print("| file | one-way delay | cap MiB/s | mode | best s | all s | CPU s (best) |")
    print("| --- | --- | --- | --- | ---: | --- | ---: |")
    with workdir(keep=False) as work:
        measure(args, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
