"""What a runner makes a user wait for before the deploy starts: build from source vs pull.

`measure.sh startup` calls `driver.py startup`, which calls `measure_startup`. Both set-ups
start from an engine that holds neither the action image nor its base (a fresh runner),
with both pushed to a registry on loopback:

- `image: Dockerfile`: the runner pulls the base, then builds the image (`--no-cache`,
  base present), then creates and starts the container;
- a prebuilt image (`image: docker://...@sha256:...`): the runner pulls the image (base
  layers included), then creates and starts the container.

A loopback pull costs no network time: it is the decompression and unpacking a runner
pays on top of downloading the compressed size, which is reported separately (the
`config` and gzip layer sizes in the registry's manifest: what a pull downloads). Every
figure is printed with the load average at the time; the machine may be shared.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.container import release

REPO_ROOT = Path(__file__).resolve().parents[2]


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Series:
    """Repeated timings of one step, each with the load average when it ended."""

    name: str
    seconds: list[float] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)

    def add(self, *argv: str) -> float:
        """Time one docker command."""
        started = time.perf_counter()
        release.docker(*argv, timeout=1800)
        elapsed = time.perf_counter() - started
        self.seconds.append(elapsed)
        self.loads.append(load())
        print(f"  {self.name}: {elapsed:.2f} s (load {self.loads[-1]})", flush=True)
        return elapsed

    def median(self) -> float:
        return statistics.median(self.seconds)

    def describe(self) -> str:
        runs = ", ".join(f"{s:.2f}" for s in self.seconds)
        return f"median {self.median():.2f} s (runs: {runs}; load {' | '.join(self.loads)})"


def drop(*images: str) -> None:
    """Remove whichever of these tags exist (the runner starts without them)."""
    present = [image for image in images if release.exists(image)]
    if present:
        release.docker("image", "rm", *present)


def mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def measure_startup(image: str, base: str, registry: str, repeats: int) -> int:
    """Print both set-ups' waits; `image` and `base` are left in the engine afterwards."""
    print(f"image {image}, base {base}, registry {registry}, load {load()}", flush=True)
    pushed_base = release.publish(base, f"{registry}/base", "measure")
    pushed = release.publish(image, f"{registry}/s3-cloudfront-deploy", "measure")
    base_size = release.inspect(base, "Size")
    image_size = release.inspect(image, "Size")
    base_ref, image_ref = pushed_base.reference, pushed.reference

    pull_base = Series("pull the base (loopback)")
    build = Series("cold build, base present (--no-cache)")
    pull_image = Series("pull the prebuilt image (loopback)")
    create = Series("docker create")
    start = Series("docker start")
    built = f"{registry}/s3cfd-measure-built:latest"
    run_args = ("--network", "none", "--workdir", "/github/workspace")
    try:
        for number in range(1, repeats + 1):
            print(f"round {number} of {repeats}", flush=True)
            drop(image, base, built, base_ref, image_ref)
            drop(f"{pushed_base.repository}:measure", f"{pushed.repository}:measure")
            pull_base.add("pull", "--quiet", base_ref)
            build.add(
                "build", "--quiet", "--no-cache", "--network", "host",
                "--build-arg", f"BASE_IMAGE={base_ref}", "-t", built, str(REPO_ROOT),
            )  # fmt: skip
            drop(built, base_ref)
            pull_image.add("pull", "--quiet", image_ref)
            name = f"s3cfd-measure-{number}"
            create.add("create", "--name", name, *run_args, "--entrypoint", "/bin/true", image_ref)
            start.add("start", name)
            release.docker("wait", name)
            release.docker("rm", name)
            drop(image_ref)
    finally:
        # Leave the engine as it was: the base and the built image under their own tags.
        for reference, tag in ((base_ref, base), (image_ref, image)):
            if not release.exists(reference):
                release.docker("pull", "--quiet", reference)
            release.docker("tag", reference, tag)
        drop(base_ref, image_ref, built)

    from_source = pull_base.median() + build.median()
    prebuilt = pull_image.median()
    container = create.median() + start.median()
    print()
    print(f"compressed (what a pull downloads): base {mb(pushed_base.compressed)}, prebuilt")
    print(
        f"  image {mb(pushed.compressed)} (the base's layers + "
        f"{mb(pushed.compressed - pushed_base.compressed)} of its own)"
    )
    print(
        f"uncompressed: base {mb(base_size)}, image {mb(image_size)} "
        f"(+{mb(image_size - base_size)} over the base)"
    )
    for series in (pull_base, build, pull_image, create, start):
        print(f"{series.name}: {series.describe()}")
    print(
        f"image: Dockerfile -> download {mb(pushed_base.compressed)}, then "
        f"{from_source:.2f} s of pull + build, then {container:.2f} s to create and start"
    )
    print(
        f"prebuilt image    -> download {mb(pushed.compressed)}, then {prebuilt:.2f} s of "
        f"pull, then {container:.2f} s to create and start"
    )
    print(f"load average at the end: {load()}", flush=True)
    return 0
