"""Glob patterns for `exclude`, `cache-control` and `content-type` rules.

Semantics (the ones users know from `.gitignore`), matched against the path
relative to `source-dir`, with `/` separators:

- `*` and `?` never cross `/`; `**` crosses any number of folders;
  `[abc]` is a character class.
- A pattern with no `/` matches the file name at any depth (`*.map`, `.DS_Store`).
- A pattern ending in `/` matches a folder and everything under it (`drafts/`).
- Any other pattern is anchored at the source folder (`assets/*.js`,
  `docs/**/*.pdf`); a leading `/` anchors a name too (`/index.html` is only the
  top-level one), as in `.gitignore`. A character class never matches `/`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

Matcher = Callable[[str], bool]


def _translate(body: str) -> str:
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c == "*":
            if body.startswith("**", i):
                i += 2
                if i < n and body[i] == "/":
                    out.append("(?:.*/)?")  # `**/` matches zero or more folders
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = body.find(
                "]", i + 2 if body.startswith("[!", i) or body.startswith("[^", i) else i + 1
            )
            if j == -1:
                raise ValueError("has an unclosed `[`; close the character class or escape it")
            inner = body[i + 1 : j]
            if inner.startswith("!"):
                inner = "^" + inner[1:]
            if not inner or inner == "^":
                raise ValueError("has an empty character class `[]`")
            if inner.startswith("^"):
                inner = "^/" + inner[1:]  # a negated class must not cross folders
            out.append("[" + inner.replace("\\", "\\\\") + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@lru_cache(maxsize=512)
def compile_glob(pattern: str) -> Matcher:
    """Return a predicate over relative POSIX paths; raise ValueError if malformed."""
    raw = pattern.strip()
    if not raw:
        raise ValueError("is empty")
    if raw.startswith("!"):
        raise ValueError(
            "starts with `!`: negation is not supported; list only what to match "
            "(rules are tried in order, so put a narrower rule first)"
        )
    if "\\" in raw:
        raise ValueError("contains `\\`; use `/` as the folder separator")
    folder = raw.endswith("/")
    body = raw.strip("/")
    if not body:
        raise ValueError("matches nothing (`/` alone); name a file or folder pattern")
    anchored = "/" in raw.rstrip("/")  # a slash at the start or in the middle anchors
    regex = _translate(body)
    prefix = "" if anchored else "(?:.*/)?"
    suffix = "/.*" if folder else "(?:/.*)?"
    compiled = re.compile(f"^{prefix}{regex}{suffix}$", re.DOTALL)
    return lambda path: compiled.match(path) is not None


def matches_any(path: str, patterns: tuple[str, ...]) -> bool:
    return any(compile_glob(p)(path) for p in patterns)
