"""The deploy record codec: round-trip, tolerance of garbage, normalisation."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deployer import record
from deployer.model import Headers, ObjectState

MD5 = "5d41402abc4b2a76b9719d911017c592"


def test_round_trip() -> None:
    """encode then decode gives the same entries and no warning."""
    entries = {
        "index.html": ObjectState(MD5, MD5, Headers("text/html; charset=utf-8", "no-cache")),
        "assets/big.bin": ObjectState(
            "0123456789abcdef0123456789abcdef-3",
            MD5,
            Headers("application/octet-stream", "max-age=300"),
        ),
        "한글/파일 (1).txt": ObjectState(MD5, None, None),
    }
    decoded, warning = record.decode(record.encode(entries))
    assert warning is None
    assert decoded == entries


def test_encoding_is_deterministic_and_versioned() -> None:
    """Keys are sorted and the version is 2, so an unchanged deploy encodes identically."""
    a = {"b": ObjectState(MD5, MD5, None), "a": ObjectState(MD5, MD5, None)}
    b = {"a": ObjectState(MD5, MD5, None), "b": ObjectState(MD5, MD5, None)}
    assert record.encode(a) == record.encode(b)
    data = json.loads(record.encode(a))
    assert data["version"] == 2
    assert record.is_current(record.encode(a))
    assert list(data["objects"]) == ["a", "b"]


def test_prepared_takes_sorted_pairs_only() -> None:
    """Pairs in key order encode like the dict; out of order or repeated keys are refused."""
    a, b = ObjectState(MD5, MD5, None), ObjectState(MD5, None, Headers("text/plain", "x"))
    assert record.prepared(lambda: [("a", a), ("b", b)]).body() == record.encode({"b": b, "a": a})
    assert record.prepared(list).body() == record.encode({})
    for wrong in ([("b", b), ("a", a)], [("a", a), ("a", a)]):
        with pytest.raises(ValueError, match="out of order"):
            record.prepared(wrong.copy)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'"text"',
        b'{"version": 3, "objects": {}}',
        b'{"version": true, "objects": {}}',
        b'{"version": 1}',
        b'{"version": 1, "objects": []}',
    ],
)
def test_garbage_is_empty_with_a_warning(body: bytes) -> None:
    """Anything unreadable decodes as an empty record plus a warning that says what happens."""
    entries, warning = record.decode(body)
    assert entries == {}
    assert warning is not None
    assert "deploy record" in warning
    assert "HEAD" in warning


def test_malformed_entries_are_skipped_with_a_warning() -> None:
    """Good entries survive; malformed ones are dropped and counted."""
    body = json.dumps(
        {
            "version": 1,
            "objects": {
                "good": {
                    "etag": MD5,
                    "md5": MD5,
                    "content_type": "text/plain",
                    "cache_control": "x",
                },
                "bad1": "nope",
                "bad2": {"md5": MD5},
                "bad3": {"etag": 5, "md5": MD5},
            },
        }
    ).encode()
    entries, warning = record.decode(body)
    assert list(entries) == ["good"]
    assert warning is not None and "3 of its entries" in warning


def test_etags_are_normalised() -> None:
    """Quoted or upper-case ETags in a hand-edited record compare like listed ones."""
    body = json.dumps(
        {
            "version": 1,
            "objects": {"k": {"etag": '"ABCDEF0123456789ABCDEF0123456789"', "md5": MD5.upper()}},
        }
    ).encode()
    entries, _ = record.decode(body)
    assert entries["k"] == ObjectState("abcdef0123456789abcdef0123456789", MD5, None)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=40),
        st.tuples(
            st.from_regex(r"[0-9a-f]{32}(-[1-9][0-9]{0,3})?", fullmatch=True),
            st.none() | st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
            st.none() | st.tuples(st.text(max_size=20), st.text(max_size=20)),
            st.none() | st.integers(min_value=0, max_value=4_102_444_800),
        ),
        max_size=20,
    )
)
def test_any_record_round_trips(
    raw: dict[str, tuple[str, str | None, tuple[str, str] | None, int | None]],
) -> None:
    """Any keys (any Unicode) and states round-trip."""
    entries = {
        key: ObjectState(etag, md5, Headers(*h) if h else None, removed_at)
        for key, (etag, md5, h, removed_at) in raw.items()
    }
    assert record.decode(record.encode(entries)) == (entries, None)
    assert record.md5(entries) == hashlib.md5(record.encode(entries)).hexdigest()
    # Byte for byte what json.dumps gives, so equal entries always encode equal.
    objects: dict[str, dict[str, str | None]] = {}
    for key in sorted(entries):
        state = entries[key]
        objects[key] = {"etag": state.etag, "md5": state.md5}
        if state.headers is not None:
            objects[key]["content_type"] = state.headers.content_type
            objects[key]["cache_control"] = state.headers.cache_control
        if state.removed_at is not None:
            objects[key]["removed_at"] = time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(state.removed_at)
            )
    reference = json.dumps(
        {"version": 2, "objects": objects}, ensure_ascii=False, separators=(",", ":")
    )
    assert record.encode(entries) == reference.encode()


def test_prepared_streams_the_same_bytes_again_on_every_call() -> None:
    """`prepared` gives encode's MD5 and size without keeping the bytes; each chunks()
    call (one per send attempt) yields the same encoding again."""
    html = Headers("text/html; charset=utf-8", "no-cache")
    entries = {
        f"docs/{n}/index.html": ObjectState(etag=f"{n:032x}", md5=None, headers=html)
        for n in range(50)
    }
    whole = record.encode(entries)
    ready = record.prepared_from(entries)
    assert ready.md5 == hashlib.md5(whole).hexdigest() == record.md5(entries)
    assert ready.size == len(whole)
    assert b"".join(ready.chunks()) == whole
    assert ready.body() == whole  # a second pass, as for a retried PUT
    assert record.prepared_from({}).body() == b'{"version":2,"objects":{}}'


def test_version_1_records_are_still_read() -> None:
    """A record the previous release wrote (version 1) gives its entries, no warning, and is
    known to be older (so the next deploy rewrites it as version 2)."""
    html = Headers("text/html; charset=utf-8", "no-cache")
    entries = {"index.html": ObjectState(MD5, MD5, html), "a.bin": ObjectState(MD5, None, None)}
    v1 = record.encode(entries).replace(b'{"version":2,', b'{"version":1,', 1)
    assert record.decode(v1) == (entries, None)
    assert not record.is_current(v1)


def test_removed_at_is_stored_as_utc_and_read_back() -> None:
    """A retained key's `removed_at` is an ISO time in UTC; a malformed one drops the entry
    (with a warning), so that key's grace period starts again rather than ending early."""
    kept = ObjectState(MD5, MD5, None, removed_at=1_764_638_451)
    body = record.encode({"assets/a-1a2b3c4d.js": kept})
    assert b'"removed_at":"2025-12-02T01:20:51Z"' in body
    assert record.decode(body) == ({"assets/a-1a2b3c4d.js": kept}, None)
    for bad in (b'"yesterday"', b"1764638451", b'"2025-13-02T01:20:51Z"'):
        broken = body.replace(b'"2025-12-02T01:20:51Z"', bad)
        entries, warning = record.decode(broken)
        assert entries == {} and warning is not None and "malformed" in warning
