"""Runner I/O: workflow commands, step outputs, the job summary, secret masking.

Inside GitHub Actions (`GITHUB_ACTIONS=true`) every method speaks the runner's
workflow-command language (`::warning title=...::`, `::group::`, `::add-mask::`)
with the escaping the runner expects. Outside Actions the same calls print plain,
readable terminal lines, so the rest of the program never asks where it runs.

Secrets: `mask(value)` registers a value; every line this class prints and every
summary it writes is scrubbed of registered values (`***`), in both modes. The
CLI also calls `scrub(text)` on the text of an unexpected exception.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

SUMMARY_LIMIT = 1024 * 1024  # bytes; the runner refuses a larger step summary
MASK = "***"

_OUTPUT_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_TRUE = {"1", "true", "yes", "on"}


def escape_data(text: str) -> str:
    """Escape the data part of a workflow command (after the second `::`)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value of a workflow command (`title=...`)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _defuse(line: str) -> str:
    """Keep a plain log line from being read as a workflow command by the runner.

    The runner treats a line whose first non-blank characters are `::` as a
    command (and the log viewer formats `##[`); file names come from the
    repository, so a zero-width space is slipped in between the two characters.
    """
    stripped = line.lstrip()
    if stripped.startswith("::"):
        cut = len(line) - len(stripped) + 1
        line = line[:cut] + "\u200b" + line[cut:]
    return line.replace("##[", "#\u200b#[")


class Runner:
    """The one object that writes to the log, the step outputs and the job summary.

    Thread-safe: transfer workers may log progress concurrently.
    """

    def __init__(self, env: Mapping[str, str], stdout: TextIO) -> None:
        self._env = env
        self._out = stdout
        self._lock = threading.RLock()
        self._secrets: set[str] = set()
        self._ordered_secrets: list[str] = []
        self._announced: set[str] = set()  # lines already sent as ::add-mask::
        self._depth = 0  # open groups (terminal indentation / Actions nesting)
        # Outside Actions, warnings and errors in the user's own words (`wording.for_local`).
        self.rephrase: Callable[[str], str] = lambda text: text

    # -- where we are ---------------------------------------------------------

    @property
    def in_actions(self) -> bool:
        return self._env.get("GITHUB_ACTIONS", "").strip().lower() == "true"

    @property
    def debug_enabled(self) -> bool:
        if self.in_actions:
            return self._env.get("RUNNER_DEBUG", "") == "1"
        return self._env.get("S3CFD_DEBUG", "").strip().lower() in _TRUE

    # -- secrets -------------------------------------------------------------

    def mask(self, value: str) -> None:
        """Register a secret: announce it to the runner (each line once) and scrub it."""
        if not value or not value.strip():
            return
        lines = [line for line in value.splitlines() if line.strip()]
        candidates = [value, *lines, *(line.strip() for line in lines)]
        with self._lock:
            for candidate in candidates:
                if candidate.strip() and candidate not in self._secrets:
                    self._secrets.add(candidate)
            self._ordered_secrets = sorted(self._secrets, key=len, reverse=True)
            if self.in_actions:
                for line in lines:
                    if line not in self._announced:
                        self._announced.add(line)
                        self._write_raw(f"::add-mask::{escape_data(line)}")

    def scrub(self, text: str) -> str:
        """Return `text` with every registered secret replaced by `***`."""
        for secret in self._ordered_secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    # -- log lines -------------------------------------------------------------

    def info(self, msg: str) -> None:
        self._plain(msg)

    def progress(self, msg: str) -> None:
        """A line of progress on long work (same as `info`; kept apart for callers' intent)."""
        self._plain(msg)

    def debug(self, msg: str) -> None:
        """`::debug::` in Actions (shown with step debug logging); locally only with S3CFD_DEBUG."""
        if self.in_actions:
            self._command("debug", msg)
        elif self.debug_enabled:
            self._terminal("debug", msg, None)

    def warning(self, msg: str, title: str | None = None) -> None:
        if self.in_actions:
            self._command("warning", msg, title)
        else:
            self._terminal("warning", msg, title)

    def error(self, msg: str, title: str | None = None) -> None:
        if self.in_actions:
            self._command("error", msg, title)
        else:
            self._terminal("error", msg, title)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        """Fold the lines logged inside into `::group::` (Actions) or indent them (terminal).

        The runner cannot nest groups: an inner group prints its title as a plain line.
        """
        with self._lock:
            outer = self._depth == 0
            if self.in_actions:
                if outer:
                    self._write_raw(f"::group::{escape_data(self.scrub(title))}")
                else:
                    self._plain(title)
            else:
                self._plain(title.rstrip().removesuffix(":") + ":")
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self.in_actions and outer:
                    self._write_raw("::endgroup::")

    # -- file commands ---------------------------------------------------------

    def set_outputs(self, outputs: Mapping[str, str]) -> bool:
        """Append step outputs to `GITHUB_OUTPUT` as heredocs with a random delimiter.

        Returns False (and writes nothing) when `GITHUB_OUTPUT` is not set, e.g. locally.
        """
        target = self._env.get("GITHUB_OUTPUT", "")
        if not target:
            return False
        chunks: list[str] = []
        for name, value in outputs.items():
            if not _OUTPUT_NAME_RE.match(name):
                raise ValueError(f"invalid step output name {name!r}")
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            while delimiter in value or delimiter in name:  # pragma: no cover - 2**-122
                delimiter = f"ghadelimiter_{uuid.uuid4()}"
            chunks.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
        with self._lock, Path(target).open("a", encoding="utf-8", newline="\n") as fh:
            fh.write("".join(chunks))
        return True

    def write_summary(self, markdown: str) -> bool:
        """Append Markdown to `GITHUB_STEP_SUMMARY`, scrubbed and kept under the 1 MiB limit.

        Returns False (and writes nothing) when `GITHUB_STEP_SUMMARY` is not set.
        """
        target = self._env.get("GITHUB_STEP_SUMMARY", "")
        if not target:
            return False
        path = Path(target)
        text = self.scrub(markdown)
        if not text.endswith("\n"):
            text += "\n"
        with self._lock:
            existing = path.stat().st_size if path.exists() else 0
            room = SUMMARY_LIMIT - existing
            data = text.encode("utf-8")
            if len(data) > room:
                note = b"\n\n_(summary truncated to stay under GitHub's 1 MiB limit)_\n"
                keep = max(0, room - len(note))
                data = data[:keep].decode("utf-8", errors="ignore").encode("utf-8")
                data = data + note if len(data) + len(note) <= room else data
            with path.open("ab") as fh:
                fh.write(data)
        return True

    # -- internals ---------------------------------------------------------------

    def _write_raw(self, line: str) -> None:
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def _plain(self, msg: str) -> None:
        text = self.scrub(msg)
        indent = "" if self.in_actions else "  " * self._depth
        with self._lock:
            for line in text.splitlines() or [""]:
                out = _defuse(line) if self.in_actions else line
                self._write_raw(indent + out if out else out)

    def _command(self, name: str, msg: str, title: str | None = None) -> None:
        props = f" title={escape_property(self.scrub(title))}" if title else ""
        self._write_raw(f"::{name}{props}::{escape_data(self.scrub(msg))}")

    def _terminal(self, label: str, msg: str, title: str | None) -> None:
        lines = self.scrub(self.rephrase(msg)).splitlines() or [""]
        head = (
            f"{label}: {self.scrub(self.rephrase(title))}" if title else f"{label}: {lines.pop(0)}"
        )
        indent = "  " * self._depth
        with self._lock:
            self._write_raw(indent + head)
            for line in lines:
                self._write_raw(f"{indent}  {line}" if line else "")
