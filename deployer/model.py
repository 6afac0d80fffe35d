"""Plain data shared by the pure core and the I/O shells. No behaviour, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Headers:
    """The HTTP headers we own on every object."""

    content_type: str
    cache_control: str


@dataclass(frozen=True, slots=True)
class Folder:
    """The folder a scan read, shared by its files whose name on disk is their key's (the
    usual case: the key is the prefix and the file's path in the folder): such a file's
    path is `root + key[cut:]`, so it keeps no path of its own (~110 bytes per file, a
    tenth of a no-change deploy's memory at 20,000 files)."""

    root: str  # the folder's absolute path, with a trailing separator
    cut: int  # the length of the destination prefix


@dataclass(frozen=True, slots=True)
class LocalFile:
    """One file to publish. `key` is the full S3 key (destination prefix included).

    `where` says where to read it: the `Folder` its key names, or, when its name on disk
    differs from its key (not NFC, another separator), the absolute path the walk found.
    `path` gives it as a plain `str` either way (`open()` takes one; a `pathlib.Path` per
    file cost ~350 bytes at 20,000 files).
    """

    key: str
    where: str | Folder
    size: int
    md5: str  # lower-case hex digest of the bytes
    headers: Headers

    @property
    def path(self) -> str:
        where = self.where
        return where if isinstance(where, str) else where.root + self.key[where.cut :]


@dataclass(frozen=True, slots=True)
class RemoteObject:
    """One object as listed (ListObjectsV2): ETag without quotes, lower case."""

    key: str
    size: int
    etag: str


@dataclass(frozen=True, slots=True)
class ObjectState:
    """What is known about an object's content and headers.

    Written to the deploy record after a completed deploy (keyed by S3 key), and
    read back from a HEAD request (`md5` from our `x-amz-meta-md5` metadata).
    `etag` is the ETag the object had when this state was recorded. `removed_at` is set
    only on the record entry of a retained key (see `retention.py`): when it left the
    source, in whole seconds since the Unix epoch (UTC).
    """

    etag: str
    md5: str | None
    headers: Headers | None
    removed_at: int | None = None


class Reason(StrEnum):
    """Why a file is written. Printed next to every changed file."""

    NEW = "new"
    CONTENT = "content changed"
    SIZE = "size changed"
    UNVERIFIABLE = "remote content unverifiable"
    HEADERS = "headers changed"


class Action(StrEnum):
    PUT = "put"  # send the bytes
    COPY = "copy"  # server-side copy onto itself, replacing metadata (headers only)


@dataclass(frozen=True, slots=True)
class Upload:
    file: LocalFile
    reason: Reason

    @property
    def action(self) -> Action:
        return Action.COPY if self.reason is Reason.HEADERS else Action.PUT


@dataclass(frozen=True, slots=True)
class Retained:
    """A removed fingerprinted asset kept in the bucket for pages still open."""

    key: str
    removed_at: int  # seconds since the Unix epoch, when it left the source
    expires_at: int  # the first deploy from then on deletes it (prunes it)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a deploy will do, decided purely from local files and remote state.

    `assets` go first, then `entries` (HTML and other entry files), then `deletes`.
    `invalidate_keys` are the keys whose served content differs from the last
    completed deploy (updated or deleted; brand-new keys need none). `retained` are
    removed assets kept for their grace period (not deleted, not invalidated);
    `pruned` are the `deletes` whose grace period ended (not invalidated either).
    """

    assets: tuple[Upload, ...]
    entries: tuple[Upload, ...]
    deletes: tuple[str, ...]
    unchanged: tuple[LocalFile, ...]
    invalidate_keys: tuple[str, ...]
    retained: tuple[Retained, ...] = ()
    pruned: tuple[str, ...] = ()
    pruned_later: int = 0  # expired, but left for a later deploy by `max-delete`

    @property
    def uploads(self) -> tuple[Upload, ...]:
        return self.assets + self.entries

    @property
    def is_empty(self) -> bool:
        return not (self.assets or self.entries or self.deletes or self.invalidate_keys)


@dataclass(frozen=True, slots=True)
class Distribution:
    """What a deploy needs to know of a CloudFront distribution in front of the bucket."""

    origin_prefix: str | None  # the key prefix served at `/`; None when unknown
    site_url: str = ""  # `https://` + its first alias, else its `*.cloudfront.net` domain


@dataclass(frozen=True, slots=True)
class InvalidationResult:
    distribution_id: str
    invalidation_id: str
    paths: tuple[str, ...]
    status: str  # as CloudFront reports it, e.g. "InProgress", "Completed"


@dataclass(slots=True)
class Outcome:
    """What actually happened; filled in by deploy.py, rendered by report.py."""

    plan: Plan | None = None
    dry_run: bool = False
    uploaded: list[Upload] = field(default_factory=list)  # landed PUTs and COPYs
    uploaded_bytes: int = 0
    deleted: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (key, short reason)
    invalidation_paths: tuple[str, ...] = ()
    invalidations: list[InvalidationResult] = field(default_factory=list)
    distribution_ids: tuple[str, ...] = ()  # as configured, to say why nothing was invalidated
    invalidation: str = "changed"  # the `invalidation` input
    warnings: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    site_url: str = ""  # the first distribution's alias or domain, `https://...`
    site_prefix: str = ""  # the key prefix that `site_url` serves at `/`

    @property
    def unchanged_count(self) -> int:
        return len(self.plan.unchanged) if self.plan else 0
