"""One root error; every subclass's message says what failed, why, and the exact fix.

Only `deployer.cli` turns these into an annotation, a summary section and an exit
code. Messages must never contain a secret: build them from names, never from
credential values.
"""

from __future__ import annotations

from collections.abc import Sequence
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
        super().__init__(
            f"This deploy would delete {would_delete} objects, more than `max-delete` "
            f"({limit}). Nothing was changed. Check that `source-dir` and "
            "`destination-prefix` point where you intend; if the deletions are expected, "
            f"raise `max-delete` to at least {would_delete} (or set `delete-removed: false`)."
        )


class TransferError(DeployError):
    """Raised after the upload phase when some files could not be written."""

    title = "Some files failed to upload"

    def __init__(self, failures: Sequence[tuple[str, str]]) -> None:
        self.failures = tuple(failures)
        shown = ", ".join(f"`{key}` ({why})" for key, why in self.failures[:10])
        more = f" and {len(self.failures) - 10} more" if len(self.failures) > 10 else ""
        super().__init__(
            f"{len(self.failures)} file(s) could not be written: {shown}{more} (transient "
            "errors were retried first). "
            "Nothing was deleted. Check the bucket policy allows `s3:PutObject` on these keys "
            "and re-run the workflow; files that landed are not uploaded again."
        )
