"""One root error; every subclass's message says what failed, why, and the exact fix.

Only `deployer.cli` turns these into an annotation, a summary section and an exit
code. Messages must never contain a secret: build them from names, never from
credential values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class DeployError(Exception):
    """Root of every expected failure. `title` is short; `str(err)` is cause and fix."""

    title = "Deploy failed"

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        if title is not None:
            self.title = title

    @property
    def message(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class InputProblem:
    """One invalid input: which input (kebab-case contract name) and what to do."""

    input_name: str
    problem: str


class ConfigError(DeployError):
    """Raised when settings fail validation; carries every problem found at once."""

    title = "Invalid input"

    def __init__(self, problems: Sequence[InputProblem]) -> None:
        self.problems = tuple(problems)
        lines = [f"`{p.input_name}`: {p.problem}" for p in self.problems]
        super().__init__("\n".join(lines))
        if len(self.problems) == 1:
            self.title = f"Invalid input `{self.problems[0].input_name}`"
        else:
            self.title = f"{len(self.problems)} invalid inputs"


class SourceError(DeployError):
    """Raised when the source folder cannot be published (missing, empty, unreadable)."""

    title = "Source folder problem"


class CredentialsError(DeployError):
    """Raised when no usable AWS credentials could be found or obtained."""

    title = "AWS credentials problem"


class RemoteError(DeployError):
    """Raised when S3 or CloudFront refuses a request (missing bucket, access denied...)."""

    title = "AWS request failed"


class MaxDeleteExceeded(DeployError):
    """Raised before any write when the plan would delete more objects than allowed."""

    title = "Too many deletions"

    def __init__(self, would_delete: int, limit: int) -> None:
        self.would_delete = would_delete
        self.limit = limit
        objects = "object" if would_delete == 1 else "objects"
        super().__init__(
            f"This deploy would delete {would_delete} {objects}, more than `max-delete` "
            f"({limit}). Nothing was changed. Check that `source-dir` and "
            "`destination-prefix` point where you intend; if the deletions are expected, "
            f"raise `max-delete` to at least {would_delete} (or set `delete-removed: false`)."
        )


class TransferError(DeployError):
    """Raised after the upload phase when some files could not be written."""

    title = "Some files failed to upload"

    def __init__(self, failures: Sequence[tuple[str, str]]) -> None:
        self.failures = tuple(failures)
        shown = some(f"`{key}` ({why})" for key, why in self.failures)
        count = len(self.failures)
        files = "1 file" if count == 1 else f"{count} files"
        super().__init__(
            f"{files} could not be written: {shown}. Nothing was deleted. "
            + " ".join(transfer_advice(why for _, why in self.failures))
            + " Files that landed are not uploaded again."
        )


def some(items: Iterable[str], shown: int = 10) -> str:
    """The first `shown` items for a one-line message: "a, b and 3 more"."""
    listed = list(items)
    text = ", ".join(listed[:shown])
    return text + (f" and {len(listed) - shown} more" if len(listed) > shown else "")


def transfer_advice(reasons: Iterable[str]) -> list[str]:
    """One fix per kind of failure among the per-file reasons (`short` texts), in a fixed
    order: a server error is not blamed on the bucket policy, nor a denial on the network."""
    kinds = {_kind(why) for why in reasons}
    advice = {
        "denied": "Allow `s3:PutObject` on these keys in the IAM policy of the credentials, "
        "and check the bucket policy does not deny it; then re-run.",
        "server": "S3 kept failing or stopped answering even after retries (server errors, "
        "throttling or the network): this is usually temporary, so re-run; lower "
        "`concurrency` if it keeps happening.",
        "local": "A file in `source-dir` changed or vanished while the deploy ran: build "
        "before deploying, and make sure nothing writes there during the deploy; then re-run.",
        "other": "See the reason given for each file; fix it and re-run.",
    }
    return [text for kind, text in advice.items() if kind in kinds]


def _kind(why: str) -> str:
    low = why.lower()
    if "denied" in low:
        return "denied"
    if "unreadable" in low or "changed" in low:
        return "local"
    if (
        "after retries" in low
        or "could not connect" in low
        or "stopped" in low
        or "timed out" in low
    ):
        return "server"
    return "other"
