"""Which CloudFront paths to invalidate for a set of changed keys (pure).

How invalidation works (README text):

- Only keys whose served content changed since the last completed deploy are
  invalidated (updated or deleted; new keys have nothing cached). No changed key,
  no invalidation request at all.
- A key maps to the path CloudFront serves it at: the distribution's origin path
  (a key prefix) is removed, keys outside it are not served by that distribution
  and are skipped. `dir/index.html` also invalidates `/dir/`, and the root
  `index.html` also `/`, because that is where visitors request them.
- Paths are URL-encoded the way CloudFront requires: non-ASCII characters (a
  Korean file name such as `소개.html` -> `/%EC%86%8C%EA%B0%9C.html`, as UTF-8 bytes)
  and the characters RFC 1738 calls unsafe (space, `"`, `#`, `%`, `<`, `>`, `[`,
  `\\`, `]`, `^`, `` ` ``, `{`, `|`, `}`, `~`) and control characters are
  percent-encoded; `?` too (it would start a query string). Nothing else is
  encoded (CloudFront would then not match the cached object), so `(`, `)`, `+`,
  `!`, `$`, `&`, `'`, `,`, `;`, `=`, `:`, `@` stay as they are. A `*` is
  CloudFront's wildcard and is only allowed at the end, so a name containing `*`
  is covered by a wildcard ending just before its first `*` (one billed path that
  also covers every spelling a browser could request).
- Each path (and each wildcard) is billed as one path beyond the first 1,000 a
  month. Above `invalidation-max-paths` (default 15) the paths are rolled up to the
  narrowest wildcards, deepest folders first, `/dir/*` replacing everything under
  `dir/`, until the count fits; `/*` is the last resort. A wildcard only ever
  replaces paths that start with it, so every changed file stays covered.
- The default of 15 keeps each deploy to at most 15 billed paths per distribution,
  so 66 deploys a month stay within the 1,000 free paths, and it equals
  CloudFront's limit of 15 wildcard paths in progress at once (a deploy that rolled
  up to 15 wildcards is accepted whenever no other wildcard invalidation is still
  running).
- The caller reference is derived from the run ID, the run attempt, the
  distribution and the path set, so a retried request of the same run is answered
  with the same invalidation instead of creating (and billing) a second one.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from urllib.parse import unquote

from deployer.interface import DEFAULT_INVALIDATION_MAX_PATHS

DEFAULT_MAX_PATHS = DEFAULT_INVALIDATION_MAX_PATHS
ALL = "/*"

# Printable ASCII that CloudFront wants percent-encoded: RFC 1738 "unsafe"
# characters, plus `?` (query string) and `*` (wildcard; only used by `encode_path`).
_UNSAFE = frozenset(' "#%<>[\\]^`{|}~?*')
_KEEP = frozenset(chr(c) for c in range(33, 127)) - _UNSAFE


def encode_path(rel: str) -> str:
    """`/` + `rel` percent-encoded for CloudFront (UTF-8 bytes, upper-case hex)."""
    if all(ch in _KEEP for ch in rel):
        return "/" + rel
    out = ["/"]
    for ch in rel:
        if ch in _KEEP or ch == "/":
            out.append(ch)
        else:
            out.extend(f"%{byte:02X}" for byte in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def decode_path(path: str) -> str:
    """Inverse of `encode_path` (a trailing wildcard `*` is kept as is)."""
    return unquote(path, encoding="utf-8", errors="surrogatepass")


def _paths_for_rel(rel: str) -> list[str]:
    star = rel.find("*")
    if star != -1:
        return [encode_path(rel[:star]) + "*"]
    paths = [encode_path(rel)]
    if rel == "index.html":
        paths.append("/")
    elif rel.endswith("/index.html"):
        paths.append(encode_path(rel[: -len("index.html")]))
    return paths


def _folder(path: str) -> str:
    """The folder an (encoded) path or wildcard lives in, with trailing `/`."""
    return path[: path.rfind("/") + 1]


def _ancestors(folder: str) -> list[str]:
    """`/a/b/` -> [`/a/b/`, `/a/`, `/`]."""
    out = [folder]
    while folder != "/":
        folder = folder[: folder[:-1].rfind("/") + 1]
        out.append(folder)
    return out


def _drop_covered(paths: set[str]) -> set[str]:
    """Remove paths that a wildcard in the set already covers."""
    prefixes = sorted(p[:-1] for p in paths if p.endswith("*"))
    if not prefixes:
        return paths
    kept: set[str] = set()
    for path in paths:
        covered = any(path != prefix + "*" and path.startswith(prefix) for prefix in prefixes)
        if not covered:
            kept.add(path)
    return kept


def roll_up(paths: Iterable[str], max_paths: int) -> tuple[str, ...]:
    """Replace groups of paths by the narrowest `/dir/*` wildcards until at most `max_paths`."""
    if max_paths < 1:
        raise ValueError("max_paths must be at least 1")
    current = _drop_covered(set(paths))
    if len(current) <= max_paths:
        return tuple(sorted(current))
    count: dict[str, int] = defaultdict(int)
    for path in current:
        for folder in _ancestors(_folder(path)):
            count[folder] += 1
    by_depth: dict[int, list[str]] = defaultdict(list)
    for folder, n in count.items():
        if n >= 2:
            by_depth[folder.count("/") - 1].append(folder)
    total = len(current)
    merged: list[str] = []
    for depth in sorted(by_depth, reverse=True):
        if total <= max_paths:
            break
        # At one depth, the folders holding most paths first (largest saving per wildcard).
        for folder in sorted(by_depth[depth], key=lambda f: (-count[f], f)):
            if total <= max_paths:
                break
            saving = count[folder] - 1
            if saving <= 0:
                continue
            total -= saving
            for parent in _ancestors(folder)[1:]:
                count[parent] -= saving
            count[folder] = 1
            merged.append(folder)
    merged_set = set(merged)
    outermost = {f for f in merged if not any(a in merged_set for a in _ancestors(f)[1:])}
    result = {
        path
        for path in current
        if not any(folder in outermost for folder in _ancestors(_folder(path)))
    }
    result.update(folder + "*" for folder in outermost)
    if len(result) > max_paths:  # cannot happen (the root merge leaves one path); be safe
        return (ALL,)
    return tuple(sorted(result))


def paths_for(keys: Iterable[str], *, origin_path: str, max_paths: int) -> tuple[str, ...]:
    """CloudFront paths covering `keys` (S3 keys), at most `max_paths`, sorted.

    `origin_path` is the key prefix the distribution serves at `/` (usually "");
    keys outside it are skipped. No keys, no paths.
    """
    base = origin_path.strip("/")
    base = base + "/" if base else ""
    paths: set[str] = set()
    for key in keys:
        if not key.startswith(base):
            continue
        paths.update(_paths_for_rel(key[len(base) :]))
    if not paths:
        return ()
    return roll_up(paths, max_paths)


def caller_reference(
    run_id: str, run_attempt: str, distribution_id: str, paths: Iterable[str]
) -> str:
    """Deterministic CallerReference: the same run, attempt, distribution and paths give
    the same value, so CloudFront treats a retried request as the same invalidation."""
    digest = hashlib.sha256()
    for part in (run_id, run_attempt, distribution_id, *sorted(paths)):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    safe_run = "".join(ch for ch in run_id if ch.isascii() and (ch.isalnum() or ch in "-_."))
    safe_attempt = "".join(ch for ch in run_attempt if ch.isascii() and ch.isalnum())
    return f"s3cfd-{safe_run[:64]}-{safe_attempt[:8]}-{digest.hexdigest()[:32]}"
