"""The deploy record (pure): what the bucket held after the last COMPLETED deploy.

Stored as JSON at `settings.record_key` (beside the published files, under the
prefix) and written only as the very last step of a deploy that finished
everything. It answers two questions the bucket alone cannot:

- Is an object whose ETag is not a plain MD5 (multipart `-N`, SSE-KMS, odd
  servers) still the same bytes and headers as the local file? Yes if the
  record holds the same ETag with the same MD5 and headers: no HEAD, no upload.
- Which paths changed since the last completed deploy? A run killed after some
  uploads leaves objects that look unchanged to the next run; the record still
  holds the old state, so the next run invalidates them anyway.

- Since when has a removed fingerprinted asset been kept (`retention.py`)? Its
  entry carries `removed_at`, the time it left the source: the grace period runs
  from there, across any number of deploys.

Format (version 2):
    {"version": 2, "objects": {"KEY": {"etag": "...", "md5": "...",
     "content_type": "...", "cache_control": "...",
     "removed_at": "2026-12-02T01:20:51Z"}, ...}}
`removed_at` (UTC, whole seconds) only on retained keys. Version 1 is the same
without `removed_at`; it is still read (an upgrade re-uploads and HEADs nothing)
and rewritten as version 2 by the next deploy.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from deployer.model import Headers, ObjectState

VERSION = 2
READS = (1, 2)  # versions this program reads
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_time(epoch_s: int) -> str:
    """Seconds since the epoch -> `2026-12-02T01:20:51Z` (as stored in the record)."""
    return time.strftime(_TIME_FORMAT, time.gmtime(epoch_s))


def parse_time(text: str) -> int:
    """`2026-12-02T01:20:51Z` -> seconds since the epoch; ValueError otherwise."""
    return calendar.timegm(time.strptime(text, _TIME_FORMAT))


def is_current(body: bytes) -> bool:
    """Was this record written by this version (so rewriting equal entries changes nothing)?

    Records are encoded deterministically, so this version's always begin the same way.
    """
    return body.startswith(b'{"version":%d,' % VERSION)


def encode(entries: Mapping[str, ObjectState]) -> bytes:
    """Serialise the record, keys sorted, compact, at once. A deploy writes it with
    `prepared` instead, which never holds the whole encoding."""
    return b"".join(_pieces((key, entries[key]) for key in sorted(entries)))


@dataclass(frozen=True, slots=True)
class Encoded:
    """A record ready to write, never held whole: `chunks()` encodes it again on every
    call (once to send it, again for a retry); `md5` and `size` come from a first pass.

    At 20,000 keys the encoded bytes (~210 B per key) were the largest allocation of a
    cold deploy, at its very end: its memory peak.
    """

    chunks: Callable[[], Iterator[bytes]]
    md5: str
    size: int

    def body(self) -> bytes:
        """The whole encoding at once (for clients that need bytes)."""
        return b"".join(self.chunks())


def prepared(items: Callable[[], Iterable[tuple[str, ObjectState]]]) -> Encoded:
    """`Encoded` for the entries `items()` gives as (key, state) in increasing key order,
    so a caller that has them in order need not build a dict of them first. Raises
    ValueError for keys out of order or repeated (the bytes must be deterministic)."""

    def chunks() -> Iterator[bytes]:
        return _pieces(items())

    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    for piece in chunks():
        digest.update(piece)
        size += len(piece)
    return Encoded(chunks, digest.hexdigest(), size)


def prepared_from(entries: Mapping[str, ObjectState]) -> Encoded:
    """`prepared` for a mapping of entries."""
    return prepared(lambda: ((key, entries[key]) for key in sorted(entries)))


def md5(entries: Mapping[str, ObjectState]) -> str:
    """Hex MD5 of `encode(entries)`, without holding the encoded bytes."""
    return prepared_from(entries).md5


def _pieces(items: Iterable[tuple[str, ObjectState]]) -> Iterator[bytes]:
    """The encoded record in pieces (one per entry): `encode` and `prepared` share it.

    Byte for byte what `json.dumps(..., ensure_ascii=False, separators=(",", ":"))` of
    the whole record gives (records written by earlier versions must compare equal),
    but each string is quoted on its own and each distinct headers pair once: about
    half the CPU of encoding a dict per entry.
    """
    quote: Callable[[str], str] = json.encoder.encode_basestring
    tails: dict[Headers | None, str] = {None: "}"}
    yield b'{"version":%d,"objects":{' % VERSION
    previous: str | None = None
    for key, state in items:
        if previous is not None and key <= previous:
            raise ValueError(f"record keys out of order: {key!r} after {previous!r}")
        tail = tails.get(state.headers)
        if tail is None and state.headers is not None:
            headers = state.headers
            tail = tails[headers] = (
                f',"content_type":{quote(headers.content_type)}'
                f',"cache_control":{quote(headers.cache_control)}}}'
            )
        md5 = "null" if state.md5 is None else quote(state.md5)
        if state.removed_at is not None and tail is not None:
            tail = f'{tail[:-1]},"removed_at":"{format_time(state.removed_at)}"}}'
        yield (
            f"{',' if previous is not None else ''}{quote(key)}:"
            f'{{"etag":{quote(state.etag)},"md5":{md5}{tail}'
        ).encode()
        previous = key
    yield b"}}"


def decode(body: bytes) -> tuple[dict[str, ObjectState], str | None]:
    """Parse a record. Garbage (or a newer version) gives an empty record and a warning.

    An empty record only costs HEAD requests and possibly a wider invalidation; it
    never loses data, so a bad record is a warning, never an error.
    """
    headers: dict[tuple[str, str], Headers] = {}

    def entry(item: dict[str, Any]) -> Any:
        # Each entry becomes an ObjectState as soon as it is parsed (so the whole record
        # never exists as dicts), with equal Headers shared.
        state = _state(item, headers)
        return item if state is None else state

    try:
        data: Any = json.loads(body.decode("utf-8"), object_hook=entry)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return {}, _warning(f"it is not valid JSON ({err.__class__.__name__})")
    if not isinstance(data, dict):
        return {}, _warning("it is not a JSON object")
    version = data.get("version")
    if version not in READS or isinstance(version, bool):
        return {}, _warning(f"its version is {version!r}, this program reads {READS[-1]}")
    objects = data.get("objects")
    if not isinstance(objects, dict):
        return {}, _warning("it has no `objects` map")
    entries: dict[str, ObjectState] = {}
    skipped = 0
    for key, item in objects.items():
        if isinstance(item, ObjectState):
            entries[key] = item
        else:
            skipped += 1
    if skipped:
        return entries, _warning(f"{skipped} of its entries are malformed", partial=True)
    return entries, None


def _state(item: dict[str, Any], shared: dict[tuple[str, str], Headers]) -> ObjectState | None:
    etag, md5 = item.get("etag"), item.get("md5")
    if not isinstance(etag, str) or not (md5 is None or isinstance(md5, str)):
        return None
    removed_at: int | None = None
    removed = item.get("removed_at")
    if removed is not None:
        try:
            removed_at = parse_time(removed) if isinstance(removed, str) else None
        except ValueError:
            removed_at = None
        if removed_at is None:
            return None  # malformed: the key is then kept as if removed just now
    content_type, cache_control = item.get("content_type"), item.get("cache_control")
    headers = None
    if isinstance(content_type, str) and isinstance(cache_control, str):
        pair = (content_type, cache_control)
        headers = shared.get(pair)
        if headers is None:
            headers = shared[pair] = Headers(content_type=content_type, cache_control=cache_control)
    return ObjectState(
        etag=etag.strip('"').lower(),
        md5=md5.lower() if md5 else None,
        headers=headers,
        removed_at=removed_at,
    )


def _warning(why: str, *, partial: bool = False) -> str:
    effect = "those entries are ignored" if partial else "it is ignored"
    return (
        f"The deploy record could not be read: {why}; {effect}. This run checks the "
        "objects it cannot verify with HEAD requests and writes a fresh record at the end."
    )
