"""Set the architecture an image's config declares: `relabel.py IMAGE ARCH` (e.g. arm64).

`docker import --platform linux/arm64` of a foreign-architecture rootfs records the host's
architecture on Docker 20.10 (Debian bookworm's docker.io), and its legacy builder then
refuses `docker build --platform linux/arm64` FROM it. This rewrites the config through
`docker save` / `docker load`: the layers are untouched (same digests), only the config's
`architecture` changes, so the image gets a new ID under the same tag.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path


def relabel(image: str, arch: str) -> str:
    """Load `image` again with `architecture: arch`; returns the new image ID."""
    with tempfile.TemporaryDirectory(prefix="s3cfd-relabel-") as tmp:
        saved = Path(tmp) / "saved.tar"
        with saved.open("wb") as out:
            subprocess.run(["docker", "save", image], stdout=out, check=True, timeout=600)
        rewritten = Path(tmp) / "loaded.tar"
        with tarfile.open(saved) as source, tarfile.open(rewritten, "w") as target:
            manifest_member = source.extractfile("manifest.json")
            assert manifest_member is not None
            manifest = json.loads(manifest_member.read())
            (entry,) = manifest
            config_member = source.extractfile(entry["Config"])
            assert config_member is not None
            config = json.loads(config_member.read())
            config["architecture"] = arch
            config.pop("variant", None)
            config_bytes = json.dumps(config, separators=(",", ":")).encode()
            config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
            entry["Config"] = config_name
            entry["RepoTags"] = [image]
            for member in source.getmembers():
                if member.name in ("manifest.json", "repositories") or member.name.endswith(
                    ".json"
                ):
                    continue
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
            for name, data in (
                (config_name, config_bytes),
                ("manifest.json", json.dumps(manifest).encode()),
            ):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                target.addfile(info, io.BytesIO(data))
        with rewritten.open("rb") as source_file:
            subprocess.run(
                ["docker", "load", "--quiet"],
                stdin=source_file,
                check=True,
                timeout=600,
                capture_output=True,
            )
    inspected = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Architecture}} {{.Id}}", image],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    if inspected[0] != arch:
        raise SystemExit(f"relabel.py: {image} still declares {inspected[0]}, not {arch}")
    return inspected[1]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: relabel.py IMAGE ARCH")
    print(relabel(sys.argv[1], sys.argv[2]))
