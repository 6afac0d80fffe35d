"""Retention of removed fingerprinted assets: what is kept, when it expires, `max-delete`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import pytest

from deployer import retention
from deployer.model import Headers, LocalFile, ObjectState, Plan, Reason, RemoteObject, Retained
from deployer.plan import index_listing, make_plan
from deployer.settings import Rule

PREFIX = "site/"
RECORD_KEY = PREFIX + ".s3-cloudfront-deploy.json"
JS = Headers("text/javascript; charset=utf-8", "public, max-age=31536000, immutable")
HTML = Headers("text/html; charset=utf-8", "no-cache")
DAY = 86400
NOW = 1_800_000_000
WEEK = 7 * DAY

OLD_CHUNK = PREFIX + "assets/index-DiwrgTda.js"
NEW_CHUNK = PREFIX + "assets/index-Zx81Kq2P.js"
OLD_CSS = PREFIX + "assets/style-1a2b3c4d.css"
LOGO = PREFIX + "logo.png"  # not fingerprinted: served for 5 minutes, deleted at once
PAGE = PREFIX + "old.html"


def md5(data: str) -> str:
    return hashlib.md5(data.encode()).hexdigest()


def lf(key: str, data: str = "x", headers: Headers = JS) -> LocalFile:
    return LocalFile(key=key, where=f"/src/{key}", size=len(data), md5=md5(data), headers=headers)


def remote(key: str, data: str = "x") -> RemoteObject:
    return RemoteObject(key=key, size=len(data), etag=md5(data))


def kept_since(removed_at: int, data: str = "x") -> ObjectState:
    return ObjectState(md5(data), md5(data), JS, removed_at=removed_at)


def decide(
    local: Sequence[LocalFile],
    listed: Sequence[RemoteObject],
    record: Mapping[str, ObjectState] | None = None,
    *,
    keep_s: int = WEEK,
    now: int = NOW,
    max_delete: int = 256,
    rules: tuple[Rule, ...] = (),
    delete_removed: bool = True,
) -> Plan:
    """make_plan, then retention.apply, as deploy.py runs them."""
    record = record or {}
    base = make_plan(
        local,
        index_listing(listed),
        record,
        {},
        prefix=PREFIX,
        delete_removed=delete_removed,
        keep=lambda rel: False,
        record_key=RECORD_KEY,
    )
    return retention.apply(
        base,
        record,
        prefix=PREFIX,
        keep_s=keep_s,
        now=now,
        max_delete=max_delete,
        retainable=lambda rel: retention.is_retainable(rel, rules),
    )


# -- which keys are retainable ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("rel", "expected"),
    [
        ("assets/index-DiwrgTda.js", True),  # Vite
        ("static/js/main.8f3a2b1c.js", True),  # create-react-app
        ("_next/static/chunks/app.js", True),  # Next.js: hashed by contract
        ("assets/style-1a2b3c4d.css", True),
        ("index.html", False),  # entry files are deleted as before
        ("sw.js", False),
        ("logo.png", False),  # no hash: `max-age=300`, deleted as before
        ("js/jquery-3.6.0.min.js", False),  # a version, not a hash
    ],
)
def test_retainable_is_the_immutable_rule(rel: str, expected: bool) -> None:
    """Retained exactly when the file is served `immutable` and is not an entry file."""
    assert retention.is_retainable(rel, ()) is expected


def test_cache_control_rules_decide_too() -> None:
    """A user rule that makes a folder immutable retains it; one that takes `immutable`
    away from a hashed file deletes it at once; entry files never are retained."""
    rules = (
        Rule(pattern="fonts/*", value="public, max-age=31536000, Immutable"),
        Rule(pattern="assets/*", value="no-cache"),
        Rule(pattern="*.html", value="public, immutable"),
    )
    assert retention.is_retainable("fonts/inter.woff2", rules)
    assert not retention.is_retainable("assets/index-DiwrgTda.js", rules)
    assert not retention.is_retainable("about.html", rules)


# -- retained, not deleted, not invalidated ---------------------------------------------------


def test_removed_chunk_is_kept_from_now_and_not_invalidated() -> None:
    """A chunk that left the source is kept (until now + keep), neither deleted nor
    invalidated; a removed unhashed file and a removed page are deleted and invalidated."""
    p = decide(
        [lf(NEW_CHUNK, "v2")],
        [remote(OLD_CHUNK, "v1"), remote(LOGO), remote(PAGE)],
    )
    assert p.retained == (Retained(OLD_CHUNK, NOW, NOW + WEEK),)
    assert p.deletes == (LOGO, PAGE)
    assert p.pruned == ()
    assert p.invalidate_keys == (LOGO, PAGE)


def test_a_kept_chunk_keeps_the_time_it_left() -> None:
    """A later deploy within the window keeps it, counting from the recorded time."""
    since = NOW - 3 * DAY
    p = decide(
        [lf(NEW_CHUNK, "v2")], [remote(OLD_CHUNK, "v1")], {OLD_CHUNK: kept_since(since, "v1")}
    )
    assert p.retained == (Retained(OLD_CHUNK, since, since + WEEK),)
    assert p.deletes == () and p.invalidate_keys == ()


@pytest.mark.parametrize(("age", "pruned"), [(WEEK - 1, False), (WEEK, True), (WEEK + DAY, True)])
def test_expires_exactly_after_the_grace_period(age: int, pruned: bool) -> None:
    """The first deploy at or after removed_at + keep prunes it; a second earlier keeps it."""
    p = decide(
        [lf(NEW_CHUNK, "v2")],
        [remote(OLD_CHUNK, "v1")],
        {OLD_CHUNK: kept_since(NOW - age, "v1")},
    )
    assert (p.pruned == (OLD_CHUNK,)) is pruned
    assert (p.deletes == (OLD_CHUNK,)) is pruned
    assert (p.retained == ()) is pruned
    assert p.invalidate_keys == ()  # pruned or kept: never invalidated


def test_shorter_keep_applies_to_keys_already_kept() -> None:
    """Lowering keep-removed-assets shortens the wait of keys already kept."""
    record = {OLD_CHUNK: kept_since(NOW - 2 * DAY, "v1")}
    assert decide([], [remote(OLD_CHUNK, "v1")], record, keep_s=DAY).pruned == (OLD_CHUNK,)
    assert decide([], [remote(OLD_CHUNK, "v1")], record, keep_s=3 * DAY).pruned == ()


def test_keep_zero_is_todays_behaviour() -> None:
    """`0`: a removed chunk is deleted and invalidated like any removed file, exactly the
    plan without retention; keys kept by earlier deploys are pruned."""
    local = [lf(NEW_CHUNK, "v2")]
    listed = [remote(OLD_CHUNK, "v1"), remote(LOGO)]
    without = make_plan(
        local,
        index_listing(listed),
        {},
        {},
        prefix=PREFIX,
        delete_removed=True,
        keep=lambda rel: False,
        record_key=RECORD_KEY,
    )
    assert decide(local, listed, keep_s=0) == without
    earlier = decide(local, [*listed, remote(OLD_CSS)], {OLD_CSS: kept_since(NOW - 60)}, keep_s=0)
    assert earlier.pruned == (OLD_CSS,)
    assert earlier.deletes == (OLD_CHUNK, OLD_CSS, LOGO)
    assert earlier.invalidate_keys == (OLD_CHUNK, LOGO)


def test_delete_removed_false_keeps_everything_and_retains_nothing() -> None:
    """`delete-removed: false`: nothing is deleted, so there is nothing to retain or prune."""
    p = decide(
        [lf(NEW_CHUNK)],
        [remote(OLD_CHUNK), remote(OLD_CSS), remote(LOGO)],
        {OLD_CSS: kept_since(NOW - 30 * DAY)},
        delete_removed=False,
    )
    assert p.deletes == () and p.retained == () and p.pruned == ()


# -- coming back ---------------------------------------------------------------------------


def test_a_kept_chunk_that_comes_back_is_simply_unchanged() -> None:
    """A rollback within the window: the old chunk is in the source again with the same
    bytes: unchanged, not uploaded, not invalidated, no longer retained."""
    record = {
        OLD_CHUNK: kept_since(NOW - DAY, "v1"),
        NEW_CHUNK: ObjectState(md5("v2"), md5("v2"), JS),
    }
    p = decide(
        [lf(OLD_CHUNK, "v1")],
        [remote(OLD_CHUNK, "v1"), remote(NEW_CHUNK, "v2")],
        record,
    )
    assert [f.key for f in p.unchanged] == [OLD_CHUNK]
    assert p.uploads == ()
    assert p.retained == (Retained(NEW_CHUNK, NOW, NOW + WEEK),)  # v2's chunk is kept now
    assert p.deletes == () and p.invalidate_keys == ()


def test_a_pruned_chunk_that_comes_back_is_uploaded_as_new() -> None:
    """After the window it was deleted; if it comes back it is a new upload, not invalidated."""
    p = decide([lf(OLD_CHUNK, "v1")], [], {OLD_CHUNK: kept_since(NOW - 30 * DAY, "v1")})
    assert [(u.file.key, u.reason) for u in p.uploads] == [(OLD_CHUNK, Reason.NEW)]
    assert p.invalidate_keys == ()


def test_a_key_a_killed_run_pruned_is_not_invalidated() -> None:
    """The record still lists a key a killed run pruned; it is gone from the bucket:
    dropped quietly (a removed page gone the same way is still invalidated)."""
    record = {OLD_CHUNK: kept_since(NOW - 30 * DAY), PAGE: ObjectState(md5("p"), md5("p"), HTML)}
    p = decide([lf(NEW_CHUNK)], [], record)
    assert p.invalidate_keys == (PAGE,)
    assert p.retained == () and p.deletes == ()


# -- max-delete ------------------------------------------------------------------------------


def chunk(n: int) -> str:
    return f"{PREFIX}assets/chunk-{n:04d}abcd.js"


def test_prunes_count_against_max_delete_oldest_first() -> None:
    """Ordinary deletions first; prunes fill what max-delete leaves, oldest first; the
    rest stay retained (already expired) for the next deploys."""
    record = {chunk(n): kept_since(NOW - 30 * DAY + n) for n in range(5)}
    listed = [remote(chunk(n)) for n in range(5)] + [remote(LOGO), remote(PAGE)]
    p = decide([lf(NEW_CHUNK)], listed, record, max_delete=4)
    assert p.pruned == (chunk(0), chunk(1))
    assert p.deletes == (chunk(0), chunk(1), LOGO, PAGE)
    assert len(p.deletes) <= 4
    assert p.pruned_later == 3
    assert [r.key for r in p.retained] == [chunk(2), chunk(3), chunk(4)]
    assert all(r.expires_at <= NOW for r in p.retained)
    # The next deploy, with nothing else to delete, prunes the rest.
    later = decide([lf(NEW_CHUNK)], listed[2:5], record, max_delete=4)
    assert later.pruned == (chunk(2), chunk(3), chunk(4)) and later.pruned_later == 0


def test_ordinary_deletions_over_max_delete_prune_nothing() -> None:
    """When the ordinary deletions alone exceed max-delete (the deploy is refused), no
    prune is planned on top."""
    record = {OLD_CHUNK: kept_since(NOW - 30 * DAY)}
    p = decide([], [remote(OLD_CHUNK), remote(LOGO), remote(PAGE)], record, max_delete=1)
    assert p.pruned == () and p.pruned_later == 1
    assert p.deletes == (LOGO, PAGE)


def test_newly_kept_chunks_do_not_count_against_max_delete() -> None:
    """A rebuild that renames 1,000 chunks deletes none of them: nothing near max-delete."""
    listed = [remote(chunk(n)) for n in range(1000)]
    p = decide([lf(NEW_CHUNK)], listed, max_delete=0)
    assert p.deletes == () and len(p.retained) == 1000


# -- the record -----------------------------------------------------------------------------


def test_record_entries_keep_what_is_known_of_the_object() -> None:
    """A retained key's entry keeps the MD5 and headers while the ETag still matches (so a
    file that comes back needs no HEAD), with `removed_at` set; otherwise only the ETag."""
    kept = (Retained(OLD_CHUNK, NOW, NOW + WEEK), Retained(OLD_CSS, NOW - 5, NOW + WEEK - 5))
    record = {
        OLD_CHUNK: ObjectState(md5("v1"), md5("v1"), JS),
        OLD_CSS: ObjectState(md5("before"), md5("before"), JS, removed_at=NOW - 5),
    }
    listing = index_listing([remote(OLD_CHUNK, "v1"), remote(OLD_CSS, "rewritten")])
    assert list(retention.record_entries(kept, record, listing)) == [
        (OLD_CHUNK, ObjectState(md5("v1"), md5("v1"), JS, removed_at=NOW)),
        (OLD_CSS, ObjectState(md5("rewritten"), None, None, removed_at=NOW - 5)),
    ]
