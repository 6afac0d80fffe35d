"""Error and warning text in the words of a local run.

Messages are written once, in the action's words: inputs by their contract names
(`bucket`), fixes as workflow YAML (`bucket: my-site-bucket`). Outside GitHub Actions
the user typed a flag or set a variable, so `for_local` rewrites each input name to what
that user actually used for it (`--bucket`, or `S3CFD_BUCKET` when it came from the
environment or `.env`) and each `name: value` fix to `--bucket my-site-bucket` or
`S3CFD_BUCKET=my-site-bucket`. Pure text in, text out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from deployer.interface import INPUTS

_FIX_RE = re.compile(r"`([a-z][a-z0-9-]*): ([^`\n]+)`")
_NAMES_INPUT_RE = re.compile(r"\bthe ((?:`[a-z][a-z0-9-]*`(?:, | and | or )?)+) inputs?\b")
_NAME_INPUT_RE = re.compile(r"(`[a-z][a-z0-9-]*`) inputs?\b")
_NAME_RE = re.compile(r"`([a-z][a-z0-9-]*)`")
_SECRET_RE = re.compile(r"(`[a-z][a-z0-9-]*`) secret\b")
_PHRASES = (
    ("Re-run the workflow", "Run it again"),
    ("re-run the workflow", "run it again"),
    ("Invalid input", "Invalid setting"),
    ("invalid inputs", "invalid settings"),
    ("re-create the secret with", "set it to"),
    (" from repository secrets", ""),
)
# Credentials locally come from the standard AWS variables more often than from ours.
_AMBIENT = {
    "aws-access-key-id": "AWS_ACCESS_KEY_ID",
    "aws-secret-access-key": "AWS_SECRET_ACCESS_KEY",
    "aws-session-token": "AWS_SESSION_TOKEN",
}


def used_names(flags: Mapping[str, str | None], env: Mapping[str, str]) -> dict[str, str]:
    """For each input, what this user calls it: the flag when given as one (or not given
    at all: a flag is the quickest fix), else the environment variable it came from."""
    names: dict[str, str] = {}
    for spec in INPUTS:
        given = bool(flags.get(spec.name))
        if not given and env.get(spec.env_var, "").strip():
            names[spec.name] = spec.env_var
        elif not given and env.get(_AMBIENT.get(spec.name, ""), "").strip():
            names[spec.name] = _AMBIENT[spec.name]
        else:
            names[spec.name] = spec.flag
    return names


def for_local(text: str, names: Mapping[str, str]) -> str:
    """`text` with input names and YAML fixes as the flags or variables in `names`."""

    def fix(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        shown = names.get(name)
        if shown is None:
            return match.group(0)
        return f"`{shown} {value}`" if shown.startswith("--") else f"`{shown}={value}`"

    def name(match: re.Match[str]) -> str:
        return f"`{names.get(match.group(1), match.group(1))}`"

    text = _FIX_RE.sub(fix, text).replace(" inputs are empty", " inputs are not set")
    text = _NAMES_INPUT_RE.sub(lambda m: m.group(1), text)
    text = _NAME_INPUT_RE.sub(lambda m: m.group(1), text)
    text = _SECRET_RE.sub(lambda m: f"{m.group(1)} value", text)
    text = _NAME_RE.sub(name, text)
    for old, new in _PHRASES:
        text = text.replace(old, new)
    return text
