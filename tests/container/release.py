"""The release, rehearsed locally: push, forget, pin action.yml by digest, pull as the runner.

`driver.py rehearse` calls these before running the container checks against the pinned
image. The registry is Debian's docker-registry on loopback (the CNCF distribution
registry; GHCR speaks the same protocol), so the digest is a real registry manifest digest
and the sizes are those of the gzip-compressed layers a registry serves. The release
workflow pushes a multi-architecture image index instead: its digest is the index's, and
each runner pulls its own architecture's manifest through it.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

REPO_ROOT = Path(__file__).resolve().parents[2]
PIN_SCRIPT = REPO_ROOT / "scripts" / "pin_image.py"
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
)
DOCKER_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class Published:
    """An image as a registry holds it."""

    repository: str  # 127.0.0.1:PORT/name
    digest: str  # sha256:... of the manifest bytes
    manifest: bytes
    compressed: int  # config + gzip layers: what a pull downloads

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


def docker(*argv: str, timeout: float = 600) -> str:
    """Run a docker command; its stdout, or an error with its stderr."""
    proc = subprocess.run(
        ["docker", *argv], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(argv)}: exit {proc.returncode}\n{proc.stderr}")
    return proc.stdout


def inspect(image: str, field: str) -> Any:
    return json.loads(docker("image", "inspect", "--format", "{{json ." + field + "}}", image))


def exists(image: str) -> bool:
    proc = subprocess.run(
        ["docker", "image", "inspect", image], capture_output=True, timeout=60, check=False
    )
    return proc.returncode == 0


def host_arch() -> str:
    machine = platform.machine()
    return DOCKER_ARCH.get(machine, machine)


def fetch_manifest(repository: str, reference: str) -> tuple[bytes, str]:
    """The manifest bytes and the digest the registry reports for them."""
    registry, _, name = repository.partition("/")
    request = urllib.request.Request(
        f"http://{registry}/v2/{name}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.read(), answer.headers.get("Docker-Content-Digest", "")


def publish(image: str, repository: str, tag: str) -> Published:
    """`docker push` `image` as `repository:tag`; the registry's digest and sizes."""
    target = f"{repository}:{tag}"
    docker("tag", image, target)
    docker("push", target)
    manifest, digest = fetch_manifest(repository, tag)
    document = json.loads(manifest)
    compressed = document["config"]["size"] + sum(layer["size"] for layer in document["layers"])
    return Published(repository, digest, manifest, compressed)


def forget(*images: str) -> None:
    """Remove these tags (the image goes once no tag is left): the next use must pull."""
    docker("image", "rm", *images)


def pin_copy(action: Path, folder: Path, reference: str) -> Path:
    """A copy of `action` pinned to `reference` by scripts/pin_image.py, as release.yml runs it."""
    folder.mkdir(parents=True, exist_ok=True)
    pinned = folder / "action.yml"
    shutil.copyfile(action, pinned)
    subprocess.run(
        [sys.executable, str(PIN_SCRIPT), "--file", str(pinned), reference],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return pinned


@dataclass(frozen=True)
class DockerAction:
    """What the runner reads from a `using: docker` action.yml."""

    image: str  # `docker://` stripped: what the runner pulls and runs
    defaults: dict[str, str]  # every declared input and its default

    def input_env(self, inputs: dict[str, str]) -> dict[str, str]:
        """`INPUT_<NAME>` for every declared input: its value in `with:`, else the default."""
        unknown = sorted(set(inputs) - set(self.defaults))
        if unknown:
            raise KeyError(f"not declared in action.yml: {unknown}")
        values = {**self.defaults, **inputs}
        return {f"INPUT_{name.replace(' ', '_').upper()}": v for name, v in values.items()}


def read_action(path: Path) -> DockerAction:
    """The image and inputs of a prebuilt-image action; an error for any other kind."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    runs = document["runs"]
    image = str(runs.get("image", ""))
    if runs.get("using") != "docker" or not image.startswith("docker://"):
        raise ValueError(f"{path}: runs is {runs}, not a docker:// image")
    defaults = {
        name: str(spec.get("default", "")) for name, spec in (document.get("inputs") or {}).items()
    }
    return DockerAction(image=image.removeprefix("docker://"), defaults=defaults)


def diff_lines(before: Path, after: Path) -> list[tuple[str, str]]:
    """The (old, new) pairs of lines that differ; also any difference in line count."""
    old = before.read_bytes().split(b"\n")
    new = after.read_bytes().split(b"\n")
    pairs = [(a.decode(), b.decode()) for a, b in zip(old, new, strict=False) if a != b]
    if len(old) != len(new):
        pairs.append((f"{len(old)} lines", f"{len(new)} lines"))
    return pairs
