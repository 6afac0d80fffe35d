"""A small file's bytes for its upload: read whole in one go, one byte more than hashed so
a file that grew shows it (the wire then refuses the size), and a short read (a pipe, a
network file system) read on to the end."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from deployer import s3
from deployer.model import Headers, LocalFile

HEADERS = Headers("text/plain", "no-cache")


def hashed(tmp_path: Path, body: bytes) -> LocalFile:
    path = tmp_path / "f.txt"
    path.write_bytes(body)
    return LocalFile("f.txt", str(path), len(body), hashlib.md5(body).hexdigest(), HEADERS)


@pytest.mark.parametrize("body", [b"", b"x", os.urandom(70_000)], ids=["empty", "one", "70k"])
def test_the_bytes_it_was_hashed_with(tmp_path: Path, body: bytes) -> None:
    assert s3._read_bytes(hashed(tmp_path, body)) == body


def test_a_file_that_grew_or_shrank_reads_at_another_size(tmp_path: Path) -> None:
    file = hashed(tmp_path, b"0123456789")
    Path(file.path).write_bytes(b"0123456789 and more")
    assert len(s3._read_bytes(file)) == file.size + 1  # not the size hashed: refused
    Path(file.path).write_bytes(b"0123")
    assert s3._read_bytes(file) == b"0123"


def test_short_reads_are_read_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = os.urandom(10_000)
    file = hashed(tmp_path, body)
    real_read = os.read
    calls: list[int] = []

    def at_most_3000(fd: int, n: int) -> bytes:
        calls.append(n)
        return real_read(fd, min(n, 3000))

    monkeypatch.setattr(os, "read", at_most_3000)
    assert s3._read_bytes(file) == body
    assert len(calls) == 4  # 3,000 + 3,000 + 3,000 + 1,000: all it was hashed with
