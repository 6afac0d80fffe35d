"""CloudFront invalidation paths: mapping, index handling, encoding, roll-up, caller reference."""

from __future__ import annotations

import pytest

from deployer.invalidation import (
    ALL,
    caller_reference,
    decode_path,
    encode_path,
    paths_for,
    roll_up,
)


def paths(*keys: str, max_paths: int = 100, origin_path: str = "") -> tuple[str, ...]:
    return paths_for(keys, origin_path=origin_path, max_paths=max_paths)


def test_no_keys_no_paths() -> None:
    """Nothing changed: no path at all (so no invalidation request)."""
    assert paths() == ()
    assert paths_for([], origin_path="app", max_paths=1) == ()


def test_plain_keys() -> None:
    """A key maps to `/` + key."""
    assert paths("a/b.js", "c.css") == ("/a/b.js", "/c.css")


def test_root_index_also_invalidates_root() -> None:
    """The root index.html also invalidates `/`."""
    assert paths("index.html") == ("/", "/index.html")


def test_folder_index_also_invalidates_folder() -> None:
    """`dir/index.html` also invalidates `/dir/`; other html does not get a folder path."""
    assert paths("blog/post/index.html", "blog/about.html") == (
        "/blog/about.html",
        "/blog/post/",
        "/blog/post/index.html",
    )
    assert paths("blog/myindex.html") == ("/blog/myindex.html",)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("소개.html", "/%EC%86%8C%EA%B0%9C.html"),
        ("docs/my file.pdf", "/docs/my%20file.pdf"),
        ("c#.html", "/c%23.html"),
        ("100%.html", "/100%25.html"),
        ("what?.html", "/what%3F.html"),
        ("a (1).png", "/a%20(1).png"),
        ("~user/[x].html", "/%7Euser/%5Bx%5D.html"),
        ('q"<>^`{|}\\.txt', "/q%22%3C%3E%5E%60%7B%7C%7D%5C.txt"),
        ("a+b=c&d;e,f:g@h!$'.txt", "/a+b=c&d;e,f:g@h!$'.txt"),
        ("café.html", "/caf%C3%A9.html"),
        ("emoji-😀.png", "/emoji-%F0%9F%98%80.png"),
    ],
)
def test_encoding(key: str, expected: str) -> None:
    """Non-ASCII as UTF-8 percent-escapes, RFC 1738 unsafe characters and `?` encoded."""
    assert paths(key) == (expected,)
    assert decode_path(expected) == "/" + key


def test_star_in_name_becomes_wildcard_before_it() -> None:
    """A `*` can only end a path, so the name is covered by a wildcard ending before it."""
    assert paths("img/a*b.png") == ("/img/a*",)
    assert paths("x y/*.txt") == ("/x%20y/*",)
    assert encode_path("a*b") == "/a%2Ab"


def test_star_wildcard_absorbs_covered_paths() -> None:
    """A path already covered by a name wildcard is not listed twice."""
    assert paths("img/a*b.png", "img/abc.png", "img/z.png") == ("/img/a*", "/img/z.png")


def test_origin_path_mapping() -> None:
    """The origin path is removed from keys; keys outside it are skipped."""
    for origin in ("app", "/app", "/app/", "app/"):
        assert paths(
            "app/index.html", "app/a.js", "other/b.js", "apple.js", origin_path=origin
        ) == (
            "/",
            "/a.js",
            "/index.html",
        )
    assert paths("other/b.js", origin_path="app") == ()


def test_duplicates_are_merged() -> None:
    """The same key twice gives one path."""
    assert paths("a.js", "a.js") == ("/a.js",)


def test_within_limit_no_rollup() -> None:
    """At exactly max_paths nothing is rolled up."""
    keys = [f"a/{i}.js" for i in range(5)]
    assert paths(*keys, max_paths=5) == tuple(f"/a/{i}.js" for i in range(5))


def test_rollup_narrowest_first() -> None:
    """The deepest folders are rolled up first; shallow paths stay exact when they can."""
    keys = [f"a/b/c/{i}.js" for i in range(6)] + ["a/x.js", "y.js"]
    assert paths(*keys, max_paths=3) == ("/a/b/c/*", "/a/x.js", "/y.js")


def test_rollup_goes_up_when_needed() -> None:
    """If the deepest wildcards are not enough, their parents are rolled up."""
    keys = [f"a/b{j}/{i}.js" for j in range(4) for i in range(3)] + ["z.js"]
    assert paths(*keys, max_paths=2) == ("/a/*", "/z.js")


def test_rollup_last_resort_everything() -> None:
    """When only the root can hold them all, `/*` is the one path."""
    keys = [f"{i}.js" for i in range(20)]
    assert paths(*keys, max_paths=15) == (ALL,)
    assert paths("a.js", "b.js", max_paths=1) == (ALL,)


def test_rollup_index_folder_path_covered() -> None:
    """`/dir/` (from dir/index.html) is covered by `/dir/*` after roll-up."""
    keys = ["d/index.html", "d/a.js", "d/b.js", "e.js"]
    assert paths(*keys, max_paths=2) == ("/d/*", "/e.js")


def test_rollup_deterministic() -> None:
    """Shuffled input gives the same output."""
    keys = [f"{d}/{s}/{i}.js" for d in "abc" for s in "xy" for i in range(4)]
    assert paths(*keys, max_paths=4) == paths(*reversed(keys), max_paths=4)


def test_rollup_on_encoded_paths_keeps_folders() -> None:
    """Folders with spaces or Korean names roll up to their encoded wildcard."""
    keys = [f"사진 모음/{i}.jpg" for i in range(5)] + ["index.html"]
    assert paths(*keys, max_paths=3) == (
        "/",
        "/%EC%82%AC%EC%A7%84%20%EB%AA%A8%EC%9D%8C/*",
        "/index.html",
    )


def test_roll_up_rejects_zero() -> None:
    """A max below 1 is a programming error."""
    with pytest.raises(ValueError):
        roll_up(["/a"], 0)


def test_caller_reference_deterministic_and_distinct() -> None:
    """Same inputs give the same reference; any different input gives another one."""
    base = caller_reference("123", "1", "E2ABCDEF123456", ["/a", "/b"])
    assert base == caller_reference("123", "1", "E2ABCDEF123456", ["/b", "/a"])
    others = {
        caller_reference("124", "1", "E2ABCDEF123456", ["/a", "/b"]),
        caller_reference("123", "2", "E2ABCDEF123456", ["/a", "/b"]),
        caller_reference("123", "1", "E2ABCDEF999999", ["/a", "/b"]),
        caller_reference("123", "1", "E2ABCDEF123456", ["/a"]),
    }
    assert base not in others
    assert len(others) == 4
    assert base.startswith("s3cfd-123-1-")


def test_caller_reference_is_short_and_safe() -> None:
    """A long or odd run id still gives a short printable reference."""
    ref = caller_reference("local-" + "x" * 500 + " \n€", "1", "E1", ["/" + "y" * 5000])
    assert len(ref) <= 128
    assert ref.isascii()
    assert ref.isprintable()


def test_rollup_with_empty_segments() -> None:
    """Keys with `//` (empty folder names) roll up under their real parent folders."""
    keys = ["a//b.js", "a//c.js", "a/d.js", "e.js", "f.js"]
    assert paths(*keys, max_paths=3) == ("/a/*", "/e.js", "/f.js")
