"""The planner: reasons, HEAD selection, ordering, deletions and what to invalidate."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

from deployer.model import Action, Headers, LocalFile, ObjectState, Plan, Reason, RemoteObject
from deployer.plan import index_listing, is_plain_md5, keys_to_head, make_plan, same_headers

HTML = Headers("text/html; charset=utf-8", "no-cache")
JS = Headers("text/javascript; charset=utf-8", "public, max-age=31536000, immutable")
RECORD_KEY = "site/.s3-cloudfront-deploy.json"


def md5(data: str) -> str:
    return hashlib.md5(data.encode()).hexdigest()


def lf(key: str, data: str = "x", headers: Headers = JS) -> LocalFile:
    return LocalFile(key=key, where=f"/src/{key}", size=len(data), md5=md5(data), headers=headers)


def remote(key: str, data: str = "x", etag: str | None = None) -> RemoteObject:
    return RemoteObject(key=key, size=len(data), etag=etag or md5(data))


def state(data: str, etag: str | None = None, headers: Headers | None = JS) -> ObjectState:
    return ObjectState(etag=etag or md5(data), md5=md5(data), headers=headers)


def plan(
    local: Sequence[LocalFile],
    listing: Sequence[RemoteObject] = (),
    record: Mapping[str, ObjectState] | None = None,
    heads: Mapping[str, ObjectState] | None = None,
    *,
    delete_removed: bool = True,
    keep: Callable[[str], bool] = lambda rel: False,
) -> Plan:
    return make_plan(
        local,
        index_listing(listing),
        record or {},
        heads or {},
        prefix="site/",
        delete_removed=delete_removed,
        keep=keep,
        record_key=RECORD_KEY,
    )


def reasons(p: Plan) -> dict[str, Reason]:
    return {u.file.key: u.reason for u in p.uploads}


def test_new_file_is_uploaded_and_not_invalidated() -> None:
    """A key missing from the bucket is uploaded as new and needs no invalidation."""
    p = plan([lf("site/a.js")])
    assert reasons(p) == {"site/a.js": Reason.NEW}
    assert p.invalidate_keys == ()


def test_size_change() -> None:
    """A different size is a change without needing a HEAD, and is invalidated."""
    local = [lf("site/a.js", "longer")]
    listing = index_listing([remote("site/a.js", "short")])
    assert keys_to_head(local, listing, {}) == ()
    p = plan(local, [remote("site/a.js", "short")])
    assert reasons(p) == {"site/a.js": Reason.SIZE}
    assert p.invalidate_keys == ("site/a.js",)


def test_same_size_edit_detected_by_md5() -> None:
    """A same-size edit with a plain ETag is a content change."""
    p = plan([lf("site/a.js", "abc")], [remote("site/a.js", "xyz")])
    assert reasons(p) == {"site/a.js": Reason.CONTENT}
    assert p.invalidate_keys == ("site/a.js",)


def test_unchanged_with_record_needs_no_head() -> None:
    """Same ETag in listing and record, same MD5 and headers: unchanged, no HEAD."""
    local = [lf("site/a.js", "abc")]
    listing = [remote("site/a.js", "abc")]
    record = {"site/a.js": state("abc")}
    assert keys_to_head(local, index_listing(listing), record) == ()
    p = plan(local, listing, record)
    assert p.uploads == ()
    assert [f.key for f in p.unchanged] == ["site/a.js"]
    assert p.is_empty


def test_multipart_etag_settled_by_record() -> None:
    """A multipart ETag (`-N`) with a matching record entry is not re-uploaded nor HEADed."""
    local = [lf("site/big.bin", "abc")]
    listing = [remote("site/big.bin", "abc", etag="0123456789abcdef0123456789abcdef-3")]
    record = {"site/big.bin": state("abc", etag="0123456789abcdef0123456789abcdef-3")}
    assert keys_to_head(local, index_listing(listing), record) == ()
    assert plan(local, listing, record).is_empty


def test_multipart_etag_settled_by_head_metadata() -> None:
    """Without a record entry, our md5 metadata from HEAD settles a multipart object."""
    local = [lf("site/big.bin", "abc")]
    listing = [remote("site/big.bin", "abc", etag="feed-2")]
    assert keys_to_head(local, index_listing(listing), {}) == ("site/big.bin",)
    heads = {"site/big.bin": state("abc", etag="feed-2")}
    p = plan(local, listing, {}, heads)
    assert p.uploads == ()
    assert p.invalidate_keys == ()


def test_multipart_without_metadata_is_unverifiable() -> None:
    """No record entry and no md5 metadata: the upload reason says it cannot be verified."""
    local = [lf("site/big.bin", "abc")]
    listing = [remote("site/big.bin", "abc", etag="feed-2")]
    heads = {"site/big.bin": ObjectState(etag="feed-2", md5=None, headers=JS)}
    p = plan(local, listing, {}, heads)
    assert reasons(p) == {"site/big.bin": Reason.UNVERIFIABLE}
    assert p.uploads[0].action is Action.PUT
    assert p.invalidate_keys == ("site/big.bin",)
    assert reasons(plan(local, listing)) == {"site/big.bin": Reason.UNVERIFIABLE}


def test_sse_kms_etag_is_not_mistaken_for_md5() -> None:
    """A 32-hex ETag that is not the MD5 (SSE-KMS) with matching metadata is unchanged."""
    kms_etag = "f" * 32
    local = [lf("site/a.js", "abc")]
    listing = [remote("site/a.js", "abc", etag=kms_etag)]
    assert keys_to_head(local, index_listing(listing), {}) == ("site/a.js",)
    p = plan(local, listing, {}, {"site/a.js": state("abc", etag=kms_etag)})
    assert p.uploads == ()


def test_record_entry_with_other_etag_is_ignored() -> None:
    """A record entry counts only when its ETag equals the listed one."""
    local = [lf("site/a.js", "abc")]
    listing = [remote("site/a.js", "abc", etag="aaaa-2")]
    record = {"site/a.js": state("abc", etag="bbbb-2")}
    assert keys_to_head(local, index_listing(listing), record) == ("site/a.js",)
    assert reasons(plan(local, listing, record)) == {"site/a.js": Reason.UNVERIFIABLE}


def test_record_entry_without_headers_triggers_head() -> None:
    """An entry that lacks MD5 or headers does not settle the key: HEAD it."""
    local = [lf("site/a.js", "abc"), lf("site/b.js", "abc")]
    listing = index_listing([remote("site/a.js", "abc"), remote("site/b.js", "abc")])
    record = {
        "site/a.js": state("abc", headers=None),
        "site/b.js": ObjectState(etag=md5("abc"), md5=None, headers=JS),
    }
    assert keys_to_head(local, listing, record) == ("site/a.js", "site/b.js")


def test_headers_only_change_is_a_copy() -> None:
    """Same bytes, new Cache-Control: a metadata-replacing copy, invalidated."""
    new = Headers(JS.content_type, "no-cache")
    local = [lf("site/a.js", "abc", headers=new)]
    listing = [remote("site/a.js", "abc")]
    p = plan(local, listing, {"site/a.js": state("abc", headers=JS)})
    assert reasons(p) == {"site/a.js": Reason.HEADERS}
    assert p.uploads[0].action is Action.COPY
    assert p.invalidate_keys == ("site/a.js",)


def test_headers_compared_ignoring_case_and_spaces() -> None:
    """A server that reformats `charset=UTF-8` or spaces does not cause endless copies."""
    reformatted = Headers("text/javascript;charset=UTF-8", "public,max-age=31536000, immutable")
    assert same_headers(reformatted, JS)
    assert not same_headers(None, JS)
    local = [lf("site/a.js", "abc")]
    listing = [remote("site/a.js", "abc")]
    p = plan(local, listing, {}, {"site/a.js": state("abc", headers=reformatted)})
    assert p.is_empty


def test_unknown_headers_with_same_content_is_a_copy() -> None:
    """Same bytes but no way to know the headers (plain ETag, no record, no HEAD): copy."""
    p = plan([lf("site/a.js", "abc")], [remote("site/a.js", "abc")])
    assert reasons(p) == {"site/a.js": Reason.HEADERS}


def test_assets_before_entries() -> None:
    """HTML and entry files go to `entries`, the rest to `assets`, each sorted by key."""
    local = [
        lf("site/index.html", "<p>", HTML),
        lf("site/sw.js", "sw"),
        lf("site/b.js"),
        lf("site/a.css"),
        lf("site/docs/page.html", "<p>", HTML),
    ]
    p = plan(local)
    assert [u.file.key for u in p.assets] == ["site/a.css", "site/b.js"]
    assert [u.file.key for u in p.entries] == [
        "site/docs/page.html",
        "site/index.html",
        "site/sw.js",
    ]
    assert [u.file.key for u in p.uploads] == [u.file.key for u in p.assets + p.entries]


def test_entry_detection_uses_path_without_prefix() -> None:
    """The prefix is stripped before asking whether a file is an entry file."""
    p = make_plan(
        [lf("robots.txt/x.js"), lf("robots.txt")],
        {},
        {},
        {},
        prefix="robots.txt/",
        delete_removed=True,
        keep=lambda rel: False,
        record_key="r",
    )
    assert [u.file.key for u in p.assets] == ["robots.txt/x.js"]


def test_deletes() -> None:
    """Remote keys under the prefix with no local file are deleted and invalidated."""
    listing = [remote("site/a.js"), remote("site/old.js"), remote("site/x/y.png")]
    p = plan([lf("site/a.js")], listing, {"site/a.js": state("x")})
    assert p.deletes == ("site/old.js", "site/x/y.png")
    assert set(p.invalidate_keys) == {"site/old.js", "site/x/y.png"}


def test_no_deletes_when_disabled() -> None:
    """With delete-removed off, nothing is deleted or invalidated for removed files."""
    p = plan([lf("site/a.js")], [remote("site/a.js"), remote("site/old.js")], delete_removed=False)
    assert p.deletes == ()
    assert "site/old.js" not in p.invalidate_keys


def test_record_key_is_never_deleted_or_uploaded() -> None:
    """The deploy record is neither deleted nor overwritten by a local file of that key."""
    p = plan([lf("site/a.js"), lf(RECORD_KEY)], [remote("site/a.js"), remote(RECORD_KEY)])
    assert p.deletes == ()
    assert RECORD_KEY not in reasons(p)
    assert RECORD_KEY not in p.invalidate_keys


def test_keep_protects_remote_objects() -> None:
    """`keep` (the user's exclude patterns) is asked with the relative path and protects."""
    asked: list[str] = []

    def keep(rel: str) -> bool:
        asked.append(rel)
        return rel.startswith("uploads/")

    p = plan([lf("site/a.js")], [remote("site/uploads/u.png"), remote("site/old.js")], keep=keep)
    assert p.deletes == ("site/old.js",)
    assert sorted(asked) == ["old.js", "uploads/u.png"]


def test_keys_outside_prefix_never_deleted() -> None:
    """A listing that strays outside the prefix does not cause deletions there."""
    p = plan([lf("site/a.js")], [remote("site/a.js"), remote("other/b.js"), remote("siteX")])
    assert p.deletes == ()


def test_crash_recovery_uploaded_by_killed_run() -> None:
    """Bucket already matches local, but the record (last completed deploy) differs: invalidate."""
    local = [lf("site/a.js", "new"), lf("site/b.js", "same")]
    listing = [remote("site/a.js", "new"), remote("site/b.js", "same")]
    record = {"site/a.js": state("old"), "site/b.js": state("same")}
    heads = {"site/a.js": state("new")}
    p = plan(local, listing, record, heads)
    assert p.uploads == ()
    assert p.invalidate_keys == ("site/a.js",)


def test_crash_recovery_headers_copied_by_killed_run() -> None:
    """A killed run's header-only copy keeps the ETag but changes headers: invalidate."""
    new = Headers(JS.content_type, "no-cache")
    local = [lf("site/a.js", "abc", headers=new)]
    listing = [remote("site/a.js", "abc")]
    record = {"site/a.js": state("abc", headers=JS)}
    heads = {"site/a.js": state("abc", headers=new)}
    # The record entry has the listed ETag, so it wins over the HEAD: a HEADERS copy again.
    p = plan(local, listing, record, heads)
    assert p.invalidate_keys == ("site/a.js",)


def test_crash_recovery_deleted_by_killed_run() -> None:
    """A key the record lists, gone locally and remotely, was deleted by a killed run."""
    p = plan(
        [lf("site/a.js")],
        [remote("site/a.js")],
        {"site/a.js": state("x"), "site/gone.js": state("g"), RECORD_KEY: state("r")},
    )
    assert p.deletes == ()
    assert p.invalidate_keys == ("site/gone.js",)


def test_crash_recovery_reupload_of_deleted_key() -> None:
    """A key deleted by a killed run and back locally with other content is invalidated."""
    p = plan(
        [lf("site/a.js", "v2"), lf("site/b.js", "v1")],
        [],
        {"site/a.js": state("v1"), "site/b.js": state("v1")},
    )
    assert reasons(p) == {"site/a.js": Reason.NEW, "site/b.js": Reason.NEW}
    assert p.invalidate_keys == ("site/a.js",)


def test_first_deploy_without_record_invalidates_only_changes() -> None:
    """No record at all: unchanged objects are not invalidated, changed ones are."""
    local = [lf("site/a.js", "abc"), lf("site/b.js", "new")]
    listing = [remote("site/a.js", "abc"), remote("site/b.js", "old")]
    heads = {"site/a.js": state("abc"), "site/b.js": state("old")}
    p = plan(local, listing, {}, heads)
    assert reasons(p) == {"site/b.js": Reason.CONTENT}
    assert p.invalidate_keys == ("site/b.js",)


def test_keys_to_head_selection() -> None:
    """Only same-size keys without a settling record entry are HEADed, in local order."""
    local = [
        lf("site/a.js", "aa"),
        lf("site/b.js", "bb"),
        lf("site/c.js", "cc"),
        lf("site/d.js", "dd"),
    ]
    listing = index_listing(
        [
            remote("site/a.js", "aa"),  # no record entry: HEAD
            remote("site/b.js", "bbb"),  # size differs: no HEAD
            remote("site/d.js", "dd"),  # record settles it: no HEAD
        ]
    )  # c is new: no HEAD
    assert keys_to_head(local, listing, {"site/d.js": state("dd")}) == ("site/a.js",)


def test_is_plain_md5() -> None:
    """Only 32 lower-case hex digits look like an MD5 ETag."""
    assert is_plain_md5(md5("x"))
    assert not is_plain_md5(md5("x") + "-2")
    assert not is_plain_md5(md5("x").upper())
    assert not is_plain_md5("")


def test_outputs_sorted_and_deterministic() -> None:
    """Uploads, deletes and invalidations come out sorted whatever the input order."""
    local = [lf("site/z.js", "1"), lf("site/a.js", "2"), lf("site/m.js", "3")]
    listing = [remote("site/z.js", "9"), remote("site/q.js"), remote("site/b.js")]
    p1 = plan(local, listing)
    p2 = plan(list(reversed(local)), list(reversed(listing)))
    assert p1 == p2
    assert [u.file.key for u in p1.assets] == ["site/a.js", "site/m.js", "site/z.js"]
    assert p1.deletes == ("site/b.js", "site/q.js")
    assert p1.invalidate_keys == ("site/b.js", "site/q.js", "site/z.js")


def test_index_listing_shares_the_local_files_strings() -> None:
    """Listed keys, equal ETags and sizes become the local files' own objects; values stay."""
    local = [lf("site/a.js", "aaa"), lf("site/b.js", "bbb"), lf("site/d.js", "ddd")]
    listed = [
        RemoteObject("".join(["site/", "a.js"]), 3, "".join([md5("aaa")[:16], md5("aaa")[16:]])),
        remote("site/b.js", "other"),  # other content and size
        remote("site/c.js", "ccc"),  # not local
        RemoteObject("".join(["site/", "d.js"]), 3, md5("ddd") + "-2"),  # multipart ETag
    ]
    index = index_listing(listed, local)
    assert index == {obj.key: obj for obj in listed}  # the same values
    a, b, c, d = (index[k] for k in ("site/a.js", "site/b.js", "site/c.js", "site/d.js"))
    assert a.key is local[0].key and a.etag is local[0].md5
    assert b.key is local[1].key and b.etag is listed[1].etag and b.size == 5
    assert c is listed[2]
    assert d.key is local[2].key and d.etag == md5("ddd") + "-2"


def test_index_listing_out_of_order_is_only_not_shared() -> None:
    """A listing not sorted by key still indexes every object with its own values."""
    local = [lf("a"), lf("b"), lf("c")]
    listed = [remote("c"), remote("a"), remote("b")]
    assert index_listing(listed, local) == {obj.key: obj for obj in listed}
