"""Grace period for removed fingerprinted assets (pure, no I/O).

When a build changes, its fingerprinted chunks get new names and the old ones leave
the source folder. A visitor who still has the old HTML open (or cached by a service
worker) then asks for the old chunks; deleting them in the same deploy gives that
visitor a `ChunkLoadError` and a blank page. So a removed file that this program
serves as an immutable, fingerprinted asset is kept for `keep-removed-assets`:

- Retainable: not an entry file (`headers.is_entry_file`) and served `immutable`
  by the same rule that gives the header today (`headers.headers_for`: the user's
  `cache-control` rules first, then the fingerprint heuristic). Everything else
  that left the source is deleted and invalidated as before.
- The clock: a retained key's deploy record entry carries `removed_at`, the time a
  deploy first found it gone from the source. It is kept until `removed_at +
  keep-removed-assets`; the first deploy from then on deletes it (prunes it).
  Lowering `keep-removed-assets` shortens the wait of keys already kept; `0`
  prunes them all.
- A retained key is neither uploaded nor invalidated; nor is a pruned one: a
  fingerprinted name always holds the same bytes, so CloudFront has nothing stale
  to drop (and a copy it still holds only helps a page that is still open).
- A retained key that comes back into the source (a rollback, a revert) with the
  same bytes is an unchanged file: the plan already says so, and its entry simply
  loses `removed_at`.
- `max-delete` counts prunes with the other deletions, but housekeeping never
  blocks a deploy: this run prunes at most what `max-delete` leaves after the
  ordinary deletions (oldest first); the rest stay retained, already expired, for
  the next deploys. Ordinary deletions over `max-delete` still refuse the deploy.
- Crash safety comes from when the record is written (only after a complete
  deploy): a killed run leaves the previous record, so keys it had retained keep
  their `removed_at`, keys it was about to retain get a later one from the re-run
  (kept longer, never shorter), and keys it pruned are gone from the listing and
  are dropped without an invalidation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace

from deployer.headers import headers_for, is_entry_file
from deployer.model import ObjectState, Plan, RemoteObject, Retained
from deployer.settings import Rule


def is_retainable(rel_path: str, cache_control_rules: tuple[Rule, ...]) -> bool:
    """Is this file (path relative to the source folder) served as an immutable asset?"""
    if is_entry_file(rel_path):
        return False
    cache_control = headers_for(rel_path, (), cache_control_rules).cache_control
    return "immutable" in (part.strip().lower() for part in cache_control.split(","))


def apply(
    plan: Plan,
    record: Mapping[str, ObjectState],
    *,
    prefix: str,
    keep_s: int,
    now: int,
    max_delete: int,
    retainable: Callable[[str], bool],
) -> Plan:
    """`plan` (from `plan.make_plan`, whose `deletes` are every removed key) with the
    retainable removed keys kept or pruned instead.

    `record` is the last completed deploy's record (`removed_at` on retained keys),
    `now` the deploy's start in seconds since the epoch, `retainable(rel_path)`
    `is_retainable` with the run's rules.
    """
    deletes: list[str] = []
    retained: list[Retained] = []
    expired: list[Retained] = []
    for key in plan.deletes:
        entry = record.get(key)
        since = entry.removed_at if entry is not None else None
        rel = key[len(prefix) :] if key.startswith(prefix) else key
        if since is None:
            if keep_s > 0 and retainable(rel):
                retained.append(Retained(key, now, now + keep_s))
            else:
                deletes.append(key)  # as before retention existed
            continue
        kept = Retained(key, since, since + keep_s)
        if now >= kept.expires_at or not retainable(rel):
            expired.append(kept)
        else:
            retained.append(kept)

    budget = max(0, max_delete - len(deletes))
    expired.sort(key=lambda r: (r.removed_at, r.key))
    pruned, later = expired[:budget], expired[budget:]
    retained.extend(later)

    not_invalidated = {r.key for r in retained} | {r.key for r in pruned}
    written = {u.file.key for u in plan.uploads}
    for key, entry in record.items():
        # Pruned by a run that was killed before it wrote its record: gone, not stale.
        if entry.removed_at is not None and key not in written:
            not_invalidated.add(key)
    pruned_keys = tuple(sorted(r.key for r in pruned))
    return replace(
        plan,
        deletes=tuple(sorted([*deletes, *pruned_keys])),
        invalidate_keys=tuple(k for k in plan.invalidate_keys if k not in not_invalidated),
        retained=tuple(sorted(retained, key=lambda r: r.key)),
        pruned=pruned_keys,
        pruned_later=len(later),
    )


def record_entries(
    retained: tuple[Retained, ...],
    record: Mapping[str, ObjectState],
    listing: Mapping[str, RemoteObject],
) -> Iterator[tuple[str, ObjectState]]:
    """The new record's entries of the retained keys, in key order (as `retained` is).

    What the last record knew of the object (its MD5 and headers) is kept while the
    object is still the one it described (same ETag), so a file that comes back is
    checked without a HEAD request.
    """
    for kept in retained:
        remote = listing.get(kept.key)
        if remote is None:
            continue
        entry = record.get(kept.key)
        if entry is None or entry.etag != remote.etag:
            entry = ObjectState(etag=remote.etag, md5=None, headers=None)
        yield kept.key, replace(entry, removed_at=kept.removed_at)
