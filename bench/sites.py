"""Generate the benchmark sites: deterministic, nested, realistic file names."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

_EXTS = (
    (".html", 10),
    (".js", 25),
    (".css", 10),
    (".png", 20),
    (".svg", 10),
    (".json", 10),
    (".woff2", 5),
    (".txt", 10),
)


def _ext(rng: random.Random) -> str:
    names = [e for e, _ in _EXTS]
    weights = [w for _, w in _EXTS]
    return rng.choices(names, weights)[0]


def _dirs(rng: random.Random, n_files: int) -> list[str]:
    """Folder paths 0-3 levels deep, about 25 files per folder."""
    dirs = ["", "assets"]
    n_dirs = max(2, n_files // 25)
    while len(dirs) < n_dirs:
        depth = rng.randint(1, 3)
        dirs.append(
            "/".join(
                f"{rng.choice(('docs', 'blog', 'app', 'img', 'lib'))}{rng.randrange(40)}"
                for _ in range(depth)
            )
        )
    return sorted(set(dirs))


def make_small_site(
    root: Path, n_files: int, *, seed: int, min_kb: int = 1, max_kb: int = 20
) -> int:
    """`n_files` files of `min_kb`-`max_kb` KB in nested folders. Returns total bytes."""
    rng = random.Random(seed)
    dirs = _dirs(rng, n_files)
    total = 0
    for i in range(n_files):
        folder = rng.choice(dirs)
        name = "index.html" if i < len(dirs) and folder == dirs[i] else f"f{i:05d}{_ext(rng)}"
        rel = f"{folder}/{name}" if folder else name
        path = root / rel
        if path.exists():
            rel = f"{folder}/f{i:05d}{_ext(rng)}" if folder else f"f{i:05d}{_ext(rng)}"
            path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        size = rng.randint(min_kb * 1024, max_kb * 1024)
        path.write_bytes(rng.randbytes(size))
        total += size
    return total


def make_large_site(
    root: Path,
    *,
    seed: int,
    large: int = 4,
    large_mb: int = 40,
    small: int = 400,
    small_kb: int = 200,
) -> int:
    """About 200 MB: `large` files of `large_mb` MB (multipart) and `small` files up to
    `small_kb` KB. Returns total bytes."""
    rng = random.Random(seed)
    total = 0
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    for i in range(large):
        size = large_mb * 1024 * 1024 + rng.randrange(1024 * 1024)
        with (media / f"video{i}.mp4").open("wb") as f:
            left = size
            while left:
                n = min(left, 4 * 1024 * 1024)
                f.write(rng.randbytes(n))
                left -= n
        total += size
    total += make_small_site(root / "site", small, seed=seed + 1, min_kb=1, max_kb=small_kb)
    return total


def files_of(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def touch_all(root: Path) -> None:
    """A fresh checkout: every modification time becomes now, content unchanged."""
    now = time.time()
    for p in files_of(root):
        os.utime(p, (now, now))


def change_fraction(root: Path, fraction: float, *, seed: int) -> list[str]:
    """Change `fraction` of the files: half keep their size (a same-size edit), half grow.
    Returns the relative paths changed."""
    rng = random.Random(seed)
    files = files_of(root)
    n = max(1, round(len(files) * fraction))
    chosen = rng.sample(files, n)
    for j, p in enumerate(chosen):
        data = bytearray(p.read_bytes())
        if j % 2 == 0:
            pos = rng.randrange(len(data))
            data[pos] = (data[pos] + 1) % 256
        else:
            data += rng.randbytes(rng.randint(1, 512))
        p.write_bytes(bytes(data))
    return sorted(p.relative_to(root).as_posix() for p in chosen)
