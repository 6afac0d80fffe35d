"""Gitignore-like glob patterns used by `exclude`, `cache-control` and `content-type`."""

from __future__ import annotations

import pytest

from deployer.globs import compile_glob, matches_any


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        # No slash: the name at any depth.
        ("*.map", "a.map", True),
        ("*.map", "js/deep/a.js.map", True),
        ("*.map", "a.map.txt", False),
        (".DS_Store", "img/.DS_Store", True),
        # `*` and `?` never cross `/`.
        ("assets/*.js", "assets/a.js", True),
        ("assets/*.js", "assets/sub/a.js", False),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        # `**` crosses folders, including zero of them.
        ("docs/**/*.pdf", "docs/a.pdf", True),
        ("docs/**/*.pdf", "docs/x/y/a.pdf", True),
        ("docs/**/*.pdf", "other/docs/a.pdf", False),
        ("**/draft.html", "draft.html", True),
        ("**/draft.html", "a/b/draft.html", True),
        ("img/**", "img/a/b.png", True),
        # A pattern with a slash is anchored at the source folder.
        ("assets/*.js", "x/assets/a.js", False),
        # A leading `/` anchors too (as in .gitignore).
        ("/docs", "docs/a.pdf", True),
        ("/docs", "x/docs/a.pdf", False),
        ("/index.html", "index.html", True),
        ("/index.html", "blog/index.html", False),
        # A trailing `/` matches a folder and everything under it, not a file.
        ("drafts/", "drafts/x.html", True),
        ("drafts/", "a/drafts/x.html", True),
        ("drafts/", "drafts", False),
        # A name also matches a folder of that name and its content.
        ("node_modules", "node_modules/a/b.js", True),
        # Character classes.
        ("file[0-9].txt", "file7.txt", True),
        ("file[0-9].txt", "filex.txt", False),
        ("file[!0-9].txt", "filex.txt", True),
        ("file[!0-9].txt", "file7.txt", False),
        ("a[!x]b", "a/b", False),  # a class never matches `/`
        # Regex metacharacters are literal.
        ("a+b(1).txt", "a+b(1).txt", True),
        ("a.b", "axb", False),
        # Case sensitive, like S3 keys.
        ("*.PNG", "a.png", False),
        # Unicode names.
        ("소개/*.html", "소개/index.html", True),
    ],
)
def test_matching(pattern: str, path: str, expected: bool) -> None:
    """Each pattern matches exactly the documented paths."""
    assert compile_glob(pattern)(path) is expected


@pytest.mark.parametrize("pattern", ["", "   ", "/", "src/[abc", "a\\b", "x[]y"])
def test_malformed_patterns_raise(pattern: str) -> None:
    """Empty, root-only, unclosed-class, backslash and empty-class patterns are refused."""
    with pytest.raises(ValueError):
        compile_glob(pattern)


def test_surrounding_whitespace_is_ignored() -> None:
    """Spaces around a pattern (from YAML block scalars) do not matter."""
    assert compile_glob("  *.map  ")("a.map")


def test_matches_any() -> None:
    """matches_any is true when one of the patterns matches, false for none."""
    assert matches_any("a/b.map", ("*.txt", "*.map"))
    assert not matches_any("a/b.js", ("*.txt", "*.map"))
    assert not matches_any("a/b.js", ())
