"""Requests being retried, counted by reason, so progress lines can say what is going on.

The S3 wire tells `RETRIES` before each retry (`s3wire.Wire.on_retrying`); a progress
line compares a snapshot with the one it took at its last line and says, for example,
"retried 9 requests: InternalError (HTTP 500) x7, timed out x2". One process runs one
deploy, so one tally per process is enough; tests make their own `Retries`.
"""

from __future__ import annotations

import threading
from collections import Counter


class Retries:
    """A thread-safe running count of retries by reason."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def note(self, reason: str) -> None:
        with self._lock:
            self._counts[reason] += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return self._counts.copy()


def describe(new: Counter[str]) -> str:
    """`retried 3 requests: SlowDown (HTTP 503) x2, timed out x1`, most frequent first."""
    total = sum(new.values())
    if not total:
        return ""
    reasons = ", ".join(f"{reason} x{count}" for reason, count in new.most_common(4))
    more = ", ..." if len(new) > 4 else ""
    return f"retried {total} request{'' if total == 1 else 's'}: {reasons}{more}"


RETRIES = Retries()
