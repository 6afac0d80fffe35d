"""Pin action.yml to a prebuilt image: `python3 scripts/pin_image.py IMAGE@sha256:DIGEST`.

The release workflow calls this after pushing the image, so that the release commit's
action.yml says `image: docker://IMAGE@sha256:DIGEST` and every user of that release runs
exactly the bytes that were built and attested (a tag can be moved; a digest cannot).

Only the `image:` line under `runs:` changes; every other byte of the file stays as it was
(comments, key order, quoting, line endings). The value keeps the original's quoting
style. A reference without a valid `sha256` digest, or with a tag next to the digest, is
refused with one error and the file is left untouched. Standard library only: the release
job runs it with the runner's own python3.

    python3 scripts/pin_image.py ghcr.io/octo-org/s3-cloudfront-deploy@sha256:9f86d0...
    python3 scripts/pin_image.py --file /tmp/action.yml s3-cloudfront-deploy@sha256:9f86d0...
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "action.yml"

# The image name grammar of the distribution reference spec (docker/distribution
# reference/regexp.go): an optional registry host[:port], then lower-case path components.
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?)"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_TAG = re.compile(r":[\w][\w.-]{0,127}$")
DOCKER_SCHEME = "docker://"
EXAMPLE = "ghcr.io/OWNER/REPO@sha256:<64 hex digits>"

# `runs:` at the top level, and the `image:` key one level inside it, with its value split
# into (indentation and key, value, trailing spaces and comment). The value is plain or
# quoted; a block scalar or a flow mapping would not be an image reference.
_RUNS = re.compile(r"runs:[ \t]*(?:#.*)?")
_IMAGE = re.compile(
    r"(?P<key>[ \t]+image:[ \t]*)"
    r"(?P<value>'(?:[^']|'')*'|\"(?:[^\"\\]|\\.)*\"|[^ \t#'\"][^#]*?)"
    r"(?P<tail>[ \t]*(?:#.*)?)"
)


class PinError(ValueError):
    """The reference or action.yml cannot be pinned; the message says why and what to do."""


def parse_reference(reference: str) -> str:
    """`IMAGE@sha256:DIGEST` (an optional `docker://` in front) -> the `docker://` form."""
    bare = reference.strip()
    bare = bare.removeprefix(DOCKER_SCHEME)
    name, at, digest = bare.partition("@")
    if not at or not _DIGEST.fullmatch(digest):
        raise PinError(
            f"image reference {reference!r} has no valid digest: give IMAGE@sha256:DIGEST "
            f"with the 64 lower-case hex digits the registry reported for the pushed image "
            f"(e.g. {EXAMPLE}); a tag alone can be moved to other bytes"
        )
    if _TAG.search(name.rpartition("/")[2]):
        raise PinError(
            f"image reference {reference!r} has a tag next to its digest: drop the tag "
            f"(the runner would ignore it; the digest alone names the image), e.g. {EXAMPLE}"
        )
    if not _NAME.fullmatch(name):
        raise PinError(
            f"image reference {reference!r}: {name!r} is not an image name (lower-case "
            f"path components, optionally after a registry host), e.g. {EXAMPLE}"
        )
    return f"{DOCKER_SCHEME}{name}@{digest}"


def _quoted_like(original: str, value: str) -> str:
    if original.startswith("'"):
        return f"'{value}'"
    if original.startswith('"'):
        return f'"{value}"'
    return value


def _image_line(lines: list[str]) -> int:
    """The index of the one `image:` line directly under the top-level `runs:`."""
    in_runs = False
    indent: str | None = None
    found: list[int] = []
    for number, line in enumerate(lines):
        body = line.rstrip("\r\n")
        if not body.strip() or body.lstrip().startswith("#"):
            continue
        if not body[0].isspace():
            in_runs = _RUNS.fullmatch(body) is not None
            indent = None
            continue
        if not in_runs:
            continue
        here = body[: len(body) - len(body.lstrip())]
        indent = here if indent is None else indent
        if here == indent and _IMAGE.fullmatch(body):
            found.append(number)
    if not found:
        raise PinError(
            "action.yml has no `image:` line under `runs:` (expected `runs:` then "
            "`  image: Dockerfile`): is this the action's metadata file?"
        )
    if len(found) > 1:
        raise PinError(
            f"action.yml has {len(found)} `image:` lines under `runs:` (lines "
            f"{', '.join(str(n + 1) for n in found)}); expected exactly one"
        )
    return found[0]


def pin_lines(text: str, reference: str) -> tuple[str, str, str]:
    """`text` (an action.yml) with `runs.image` set to `reference`; also the old and new line."""
    image = parse_reference(reference)
    lines = text.splitlines(keepends=True)
    number = _image_line(lines)
    line = lines[number]
    body = line.rstrip("\r\n")
    match = _IMAGE.fullmatch(body)
    assert match is not None  # _image_line matched it
    value = _quoted_like(match.group("value"), image)
    new_body = f"{match.group('key')}{value}{match.group('tail')}"
    lines[number] = new_body + line[len(body) :]
    return "".join(lines), body.strip(), new_body.strip()


def pin(text: str, reference: str) -> str:
    """`text` (an action.yml) with its `runs.image` set to `reference`, nothing else changed."""
    return pin_lines(text, reference)[0]


def pin_file(path: Path, reference: str) -> tuple[str, str]:
    """Rewrite `path` in place (atomically, mode kept); returns the old and new image lines."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PinError(f"{path} is not UTF-8 text ({error})") from error
    new, old_line, new_line = pin_lines(text, reference)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(new.encode("utf-8"))
        Path(temporary).chmod(path.stat().st_mode & 0o7777)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return old_line, new_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pin_image.py",
        description="Set action.yml's `runs.image` to a prebuilt image pinned by digest.",
    )
    parser.add_argument("reference", help=f"the pushed image by digest, e.g. {EXAMPLE}")
    parser.add_argument(
        "--file",
        type=Path,
        default=DEFAULT_FILE,
        help="the action metadata file to rewrite (default: the repository's action.yml)",
    )
    args = parser.parse_args(argv)
    try:
        old, new = pin_file(args.file, args.reference)
    except (PinError, OSError) as error:
        print(f"pin_image.py: error: {error}", file=sys.stderr)
        return 2
    print(f"{args.file}: {old} -> {new}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
