"""The source folder scan: keys, excludes, symlinks, names, hashing, errors."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from pathlib import Path

import pytest

import deployer.local as local
from deployer.errors import SourceError
from deployer.local import md5_file, rel_key, scan, walk
from deployer.model import Folder
from deployer.settings import RECORD_BASENAME, Rule


def write(root: Path, rel: str, data: bytes | str = b"x") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def keys(root: Path, prefix: str = "", exclude: tuple[str, ...] = ()) -> list[str]:
    return [f.key for f in scan(root, prefix, exclude, (), ()).files]


def test_keys_are_prefix_plus_posix_path_sorted(tmp_path: Path) -> None:
    """Keys are prefix + relative POSIX path, sorted, with size, MD5 and headers."""
    write(tmp_path, "index.html", "<h1>hi</h1>")
    write(tmp_path, "assets/index-DiwrgTda.js", "console.log(1)")
    write(tmp_path, "b/c/d.txt", "d")
    result = scan(tmp_path, "site/", (), (), ())
    assert [f.key for f in result.files] == [
        "site/assets/index-DiwrgTda.js",
        "site/b/c/d.txt",
        "site/index.html",
    ]
    page = result.files[2]
    assert page.size == 11
    assert page.md5 == hashlib.md5(b"<h1>hi</h1>").hexdigest()
    assert page.path == str(tmp_path / "index.html")  # a plain str, absolute
    assert page.headers.cache_control == "no-cache"
    assert result.files[0].headers.cache_control == "public, max-age=31536000, immutable"
    assert result.warnings == ()
    assert result.excluded == 0


def test_headers_use_rules_on_relative_path(tmp_path: Path) -> None:
    """Rules match the path relative to source-dir, not the key with its prefix."""
    write(tmp_path, "a/b.bin")
    rules = (Rule(pattern="a/*.bin", value="application/x-b"),)
    (file,) = scan(tmp_path, "pre/", (), rules, ()).files
    assert file.headers.content_type == "application/x-b"


def test_default_excludes(tmp_path: Path) -> None:
    """.git, .github, .env*, .DS_Store and Thumbs.db are left out at any depth."""
    write(tmp_path, "index.html")
    for rel in [
        ".git/HEAD",
        ".git/objects/ab/cdef",
        ".github/workflows/main.yml",
        ".env",
        ".env.local",
        ".env.production",
        ".envrc",
        "sub/.env",
        "sub/.git",  # a worktree's .git file
        ".DS_Store",
        "img/.DS_Store",
        "Thumbs.db",
        "py/.env/lib/site.py",  # a virtualenv folder named .env
    ]:
        write(tmp_path, rel)
    result = scan(tmp_path, "", (), (), ())
    assert [f.key for f in result.files] == ["index.html"]
    # Folders count once (.git, .github, py/.env), files one each.
    assert result.excluded == 12


def test_dotfiles_that_are_not_defaults_are_kept(tmp_path: Path) -> None:
    """Other dotfiles and names merely starting with env are published."""
    for rel in [".htaccess", "environment.js", "a.env", ".well-known/security.txt", "..foo"]:
        write(tmp_path, rel)
    assert keys(tmp_path) == [
        "..foo",
        ".htaccess",
        ".well-known/security.txt",
        "a.env",
        "environment.js",
    ]


def test_user_exclude_patterns(tmp_path: Path) -> None:
    """User patterns: names at any depth, folders, anchored paths."""
    for rel in [
        "index.html",
        "a.map",
        "js/b.js.map",
        "drafts/x.html",
        "docs/x.pdf",
        "x/docs/y.pdf",
    ]:
        write(tmp_path, rel)
    result = scan(tmp_path, "", ("*.map", "drafts/", "/docs"), (), ())
    assert [f.key for f in result.files] == ["index.html", "x/docs/y.pdf"]
    assert result.excluded == 4


def test_record_name_at_top_is_reserved(tmp_path: Path) -> None:
    """A local file named like the deploy record is left out (it would overwrite the record)."""
    write(tmp_path, RECORD_BASENAME, "{}")
    write(tmp_path, f"sub/{RECORD_BASENAME}", "{}")
    write(tmp_path, "index.html")
    result = scan(tmp_path, "p/", (), (), ())
    assert [f.key for f in result.files] == ["p/index.html", f"p/sub/{RECORD_BASENAME}"]
    assert any("reserved" in w for w in result.warnings)


def test_zero_byte_file(tmp_path: Path) -> None:
    """An empty file is published with size 0 and the MD5 of no bytes."""
    write(tmp_path, "empty.txt", b"")
    (file,) = scan(tmp_path, "", (), (), ()).files
    assert file.size == 0
    assert file.md5 == "d41d8cd98f00b204e9800998ecf8427e"


def test_md5_streams_across_chunks(tmp_path: Path) -> None:
    """A file larger than the read chunk hashes to the same MD5 as hashlib in one go."""
    data = os.urandom(local.CHUNK_SIZE * 2 + 12345)
    path = write(tmp_path, "big.bin", data)
    assert md5_file(path) == (hashlib.md5(data).hexdigest(), len(data))


def test_many_files_hash_in_parallel_correctly(tmp_path: Path) -> None:
    """With enough files to use the thread pool, every digest matches its own file."""
    for i in range(150):
        write(tmp_path, f"d{i % 7}/f{i}.txt", f"content {i}" * (i + 1))
    files = scan(tmp_path, "", (), (), ()).files
    assert len(files) == 150
    for f in files:
        assert f.md5 == hashlib.md5(Path(f.path).read_bytes()).hexdigest()
        assert f.size == Path(f.path).stat().st_size


def test_symlinks_inside_are_followed(tmp_path: Path) -> None:
    """A link to a file or folder inside source-dir publishes under the link's path."""
    write(tmp_path, "real/a.txt", "A")
    (tmp_path / "alias.txt").symlink_to("real/a.txt")
    (tmp_path / "linked").symlink_to("real", target_is_directory=True)
    files = scan(tmp_path, "", (), (), ()).files
    assert [f.key for f in files] == ["alias.txt", "linked/a.txt", "real/a.txt"]
    assert len({f.md5 for f in files}) == 1


def test_symlinks_escaping_are_skipped_with_warning(tmp_path: Path) -> None:
    """Links that leave source-dir (file or folder, absolute or relative) are skipped."""
    site = tmp_path / "site"
    write(site, "index.html")
    write(tmp_path, "secret.txt", "s")
    write(tmp_path, "outside/x.txt", "x")
    (site / "abs.txt").symlink_to(tmp_path / "secret.txt")
    (site / "rel.txt").symlink_to("../secret.txt")
    (site / "dir").symlink_to(tmp_path / "outside", target_is_directory=True)
    (site / "root").symlink_to("/", target_is_directory=True)
    result = scan(site, "", (), (), ())
    assert [f.key for f in result.files] == ["index.html"]
    assert len(result.warnings) == 4
    assert all("outside `source-dir`" in w for w in result.warnings)


def test_symlink_to_excluded_target_is_skipped(tmp_path: Path) -> None:
    """A link cannot smuggle out an excluded file such as .env or the .git folder."""
    write(tmp_path, "index.html")
    write(tmp_path, ".env", "SECRET=1")
    write(tmp_path, ".git/config", "[core]")
    (tmp_path / "config.txt").symlink_to(".env")
    (tmp_path / "repo").symlink_to(".git", target_is_directory=True)
    result = scan(tmp_path, "", (), (), ())
    assert [f.key for f in result.files] == ["index.html"]
    assert sum("excluded" in w for w in result.warnings) == 2


def test_symlink_cycles_terminate(tmp_path: Path) -> None:
    """Links back to a parent folder and link loops are skipped, never walked forever."""
    write(tmp_path, "a/b/file.txt")
    (tmp_path / "a/b/up").symlink_to("..", target_is_directory=True)
    (tmp_path / "a/self").symlink_to(".", target_is_directory=True)
    (tmp_path / "loop1").symlink_to("loop2")
    (tmp_path / "loop2").symlink_to("loop1")
    result = scan(tmp_path, "", (), (), ())
    assert [f.key for f in result.files] == ["a/b/file.txt"]
    assert sum("cycle" in w for w in result.warnings) == 2
    assert sum("loop" in w for w in result.warnings) == 2


def test_dangling_symlink_is_skipped(tmp_path: Path) -> None:
    """A link to nothing is skipped with a warning."""
    write(tmp_path, "index.html")
    (tmp_path / "gone.txt").symlink_to("nowhere.txt")
    result = scan(tmp_path, "", (), (), ())
    assert [f.key for f in result.files] == ["index.html"]
    assert result.warnings == ("Skipped `gone.txt`: it is a symbolic link to nothing.",)


def test_nfd_names_become_nfc_keys(tmp_path: Path) -> None:
    """A macOS-style decomposed (NFD) name gives the composed (NFC) key."""
    nfd = unicodedata.normalize("NFD", "한글/café.html")
    write(tmp_path, nfd)
    (file,) = scan(tmp_path, "", (), (), ()).files
    assert file.key == unicodedata.normalize("NFC", "한글/café.html")
    assert file.key != nfd
    assert Path(file.path).exists()


def test_files_named_as_their_keys_share_the_folder_instead_of_a_path(tmp_path: Path) -> None:
    """A file whose name on disk is its key's keeps no path string of its own (it is the
    folder's root plus the key without the prefix); one whose name is not NFC keeps the
    path the walk found. Either way `path` opens the right file."""
    write(tmp_path, "assets/app.js", "js")
    write(tmp_path, "index.html", "home")
    nfd = unicodedata.normalize("NFD", "café.html")
    write(tmp_path, nfd, "page")
    files = {f.key: f for f in scan(tmp_path, "v2/", (), (), ()).files}
    named, renamed = files["v2/assets/app.js"], files[unicodedata.normalize("NFC", "v2/café.html")]
    assert isinstance(named.where, Folder)
    assert named.where.root == os.path.realpath(tmp_path) + os.sep
    assert named.path == os.path.join(os.path.realpath(tmp_path), "assets", "app.js")
    assert renamed.where == os.path.join(os.path.realpath(tmp_path), nfd)
    assert renamed.path == renamed.where
    assert [Path(f.path).read_text() for f in (named, renamed)] == ["js", "page"]
    assert files["v2/index.html"].where is named.where  # one Folder for the whole scan


def test_nfc_nfd_collision_keeps_nfc(tmp_path: Path) -> None:
    """Two names equal after NFC: the NFC one is published, the other warned about."""
    nfc = unicodedata.normalize("NFC", "café.txt")
    nfd = unicodedata.normalize("NFD", "café.txt")
    write(tmp_path, nfd, "decomposed")
    write(tmp_path, nfc, "composed")
    result = scan(tmp_path, "", (), (), ())
    (file,) = result.files
    assert file.key == nfc
    assert Path(file.path).read_text() == "composed"
    assert len(result.warnings) == 1
    assert "normalisation" in result.warnings[0]


def test_control_characters_are_skipped(tmp_path: Path) -> None:
    """Names with a newline, tab or DEL are skipped with a warning naming them safely."""
    write(tmp_path, "ok.txt")
    write(tmp_path, "bad\nname.txt")
    write(tmp_path, "tab\there.txt")
    write(tmp_path, "del\x7f.txt")
    result = scan(tmp_path, "", (), (), ())
    assert [f.key for f in result.files] == ["ok.txt"]
    assert len(result.warnings) == 3
    assert all("control character" in w and "\n" not in w for w in result.warnings)


def test_undecodable_names_are_skipped(tmp_path: Path) -> None:
    """A file name that is not valid UTF-8 is skipped with a warning."""
    write(tmp_path, "ok.txt")
    bad = os.fsencode(str(tmp_path)) + b"/bad\xff.txt"
    with open(bad, "wb") as handle:
        handle.write(b"x")
    result = scan(tmp_path, "", (), (), ())
    assert [f.key for f in result.files] == ["ok.txt"]
    assert any("not valid UTF-8" in w for w in result.warnings)


def test_fifo_is_skipped(tmp_path: Path) -> None:
    """A FIFO is not read (that would hang) but skipped with a warning."""
    write(tmp_path, "ok.txt")
    os.mkfifo(tmp_path / "pipe")
    result = scan(tmp_path, "", (), (), ())
    assert [f.key for f in result.files] == ["ok.txt"]
    assert any("not a regular file" in w for w in result.warnings)


def test_too_long_key_is_skipped(tmp_path: Path) -> None:
    """A key over 1,024 UTF-8 bytes (prefix included) is skipped with a warning."""
    write(tmp_path, "ok.txt")
    write(tmp_path, "가" * 80 + "/" + "나" * 80 + ".txt")  # 480 bytes of names
    result = scan(tmp_path, "p" * 600 + "/", (), (), ())
    assert [f.key for f in result.files] == ["p" * 600 + "/ok.txt"]
    assert any("1024 bytes" in w for w in result.warnings)


def test_empty_folder_raises(tmp_path: Path) -> None:
    """A folder with no files raises SourceError naming source-dir."""
    (tmp_path / "sub").mkdir()
    with pytest.raises(SourceError, match="`source-dir`"):
        scan(tmp_path, "", (), (), ())


def test_everything_excluded_raises(tmp_path: Path) -> None:
    """When excludes leave nothing, the error says so and names exclude."""
    write(tmp_path, ".env")
    write(tmp_path, "a.map")
    with pytest.raises(SourceError, match="2 entries were left out") as info:
        scan(tmp_path, "", ("*.map",), (), ())
    assert "`exclude`" in str(info.value)


def test_missing_folder_raises(tmp_path: Path) -> None:
    """A source-dir that does not exist raises SourceError."""
    with pytest.raises(SourceError):
        scan(tmp_path / "nope", "", (), (), ())


def test_unreadable_file_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that cannot be read is an error (skipping it would delete its remote copy)."""
    write(tmp_path, "a.txt")

    def denied(path: str, buffer: bytearray | None = None) -> tuple[str, int]:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(local, "md5_file", denied)
    with pytest.raises(SourceError, match="Permission denied"):
        scan(tmp_path, "", (), (), ())


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_unreadable_folder_raises(tmp_path: Path) -> None:
    """A folder that cannot be listed is an error naming it."""
    write(tmp_path, "a.txt")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        with pytest.raises(SourceError, match="`locked/`"):
            scan(tmp_path, "", (), (), ())
    finally:
        locked.chmod(0o755)


def test_unlistable_folder_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder whose listing fails (as without read permission) is an error naming it."""
    write(tmp_path, "a.txt")
    write(tmp_path, "locked/b.txt")
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(SourceError, match=r"`locked/`.*Permission denied"):
        scan(tmp_path, "", (), (), ())


def test_walk_lists_without_hashing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """walk() finds files without reading them, for callers that hash later."""
    write(tmp_path, "a.txt", "abc")

    def boom(*args: object, **kwargs: object) -> tuple[str, int]:
        raise AssertionError("walk must not hash")

    monkeypatch.setattr(local, "md5_file", boom)
    result = walk(tmp_path)
    assert [(f.rel, f.size) for f in result.found] == [("a.txt", 3)]


def test_rel_key() -> None:
    """rel_key strips the prefix and refuses keys outside it."""
    assert rel_key("app/a/b.js", "app/") == "a/b.js"
    assert rel_key("a/b.js", "") == "a/b.js"
    with pytest.raises(ValueError):
        rel_key("other/a.js", "app/")


def test_nfc_nfd_folder_collision_is_deterministic(tmp_path: Path) -> None:
    """Folders equal after NFC: the file under the NFC folder wins, whatever the order."""
    nfc = unicodedata.normalize("NFC", "é")
    nfd = unicodedata.normalize("NFD", "é")
    write(tmp_path, f"{nfd}/a.txt", "decomposed")
    write(tmp_path, f"{nfc}/a.txt", "composed")
    result = scan(tmp_path, "", (), (), ())
    (file,) = result.files
    assert file.key == f"{nfc}/a.txt"
    assert Path(file.path).read_text() == "composed"
    assert len(result.warnings) == 1
