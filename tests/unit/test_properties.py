"""Property-based tests (hypothesis) for the planner and the invalidation planner."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from deployer.invalidation import decode_path, encode_path, paths_for
from deployer.model import Headers, LocalFile, ObjectState, Plan, Reason, RemoteObject
from deployer.plan import keys_to_head, make_plan

PREFIX = "site/"
RECORD_KEY = PREFIX + ".s3-cloudfront-deploy.json"

# Names from a small alphabet (so folders and keys collide often) plus any Unicode.
_segment = st.one_of(
    st.sampled_from(["a", "b", "index.html", "img", "x y", "소개", "c#", "100%", "q?", "s*t", ""]),
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="/"),
        min_size=1,
        max_size=6,
    ),
)
keys_st = st.lists(_segment, min_size=1, max_size=4).map("/".join)
any_key = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=30)


def covers(path: str, key: str) -> bool:
    """Does the CloudFront path `path` invalidate the object served at `/` + key?"""
    target = "/" + key
    if path.endswith("*"):
        return target.startswith(decode_path(path[:-1]))
    return decode_path(path) == target


@settings(max_examples=300, deadline=None)
@given(keys=st.lists(keys_st, max_size=60), max_paths=st.integers(1, 20))
def test_every_changed_key_is_covered_within_the_limit(keys: list[str], max_paths: int) -> None:
    """Every key is covered by some path (exact or wildcard prefix) and the count fits."""
    paths = paths_for(keys, origin_path="", max_paths=max_paths)
    assert len(paths) <= max_paths
    assert (not keys) == (not paths)
    for key in keys:
        assert any(covers(p, key) for p in paths), (key, paths)


@settings(max_examples=300, deadline=None)
@given(keys=st.lists(keys_st, max_size=60), max_paths=st.integers(1, 20))
def test_paths_are_well_formed_and_never_gratuitous(keys: list[str], max_paths: int) -> None:
    """Paths start with `/`, are printable ASCII, end with the only `*`, and each one is
    there for some key (a wildcard never stands for nothing we changed)."""
    paths = paths_for(keys, origin_path="", max_paths=max_paths)
    assert list(paths) == sorted(set(paths))
    for path in paths:
        assert path.startswith("/")
        assert all(33 <= ord(ch) <= 126 for ch in path), path
        assert "*" not in path[:-1]
        plain = decode_path(path.rstrip("*"))
        assert any(("/" + k).startswith(plain) for k in keys), (path, keys)


@settings(max_examples=500, deadline=None)
@given(key=any_key)
def test_any_unicode_key_round_trips(key: str) -> None:
    """Encoding then decoding gives `/` + key back, for any Unicode key."""
    encoded = encode_path(key)
    assert decode_path(encoded) == "/" + key
    assert encoded.isascii()
    assert " " not in encoded and "?" not in encoded and "#" not in encoded


@settings(max_examples=300, deadline=None)
@given(key=any_key.filter(lambda k: "*" not in k))
def test_single_key_path_round_trips(key: str) -> None:
    """Without roll-up, the path of a key decodes to exactly `/` + key."""
    paths = paths_for([key], origin_path="", max_paths=2)
    assert "/" + key in {decode_path(p) for p in paths}


# -- the planner ----------------------------------------------------------------------

HEADER_CHOICES = [
    Headers("text/html; charset=utf-8", "no-cache"),
    Headers("text/javascript; charset=utf-8", "public, max-age=31536000, immutable"),
    Headers("image/png", "public, max-age=300"),
]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@dataclass(frozen=True)
class Truth:
    """What an object in the bucket really is."""

    data: bytes
    headers: Headers
    etag: str  # plain MD5, multipart `-N`, or an opaque (SSE-KMS-like) 32-hex value
    has_md5_meta: bool


def etag_for(data: bytes, style: int, salt: int) -> str:
    if style == 0:
        return md5(data)
    if style == 1:
        return md5(data + b"multipart" + bytes([salt % 256])) + "-2"
    return md5(b"kms" + data + bytes([salt % 256]))


_content = st.sampled_from([b"", b"a", b"b", b"ab", b"ba", b"abc"])
_headers = st.sampled_from(HEADER_CHOICES)
_rel = st.sampled_from(["index.html", "a.js", "b.js", "img/x.png", "img/y.png", "d/index.html"])


@st.composite
def worlds(
    draw: st.DrawFn,
) -> tuple[dict[str, tuple[bytes, Headers]], dict[str, Truth], dict[str, ObjectState]]:
    local = draw(st.dictionaries(_rel, st.tuples(_content, _headers), min_size=1))
    remote: dict[str, Truth] = {}
    for rel in draw(st.sets(_rel)):
        data, headers = draw(st.tuples(_content, _headers))
        style, salt = draw(st.integers(0, 2)), draw(st.integers(0, 3))
        remote[rel] = Truth(data, headers, etag_for(data, style, salt), draw(st.booleans()))
    record: dict[str, ObjectState] = {}
    for rel in draw(st.sets(_rel)):
        truth = remote.get(rel)
        if truth is not None and draw(st.booleans()):
            # An honest entry: same ETag, so it must describe the object as it is.
            record[rel] = ObjectState(truth.etag, md5(truth.data), truth.headers)
        else:
            data, headers = draw(st.tuples(_content, _headers))
            record[rel] = ObjectState("stale" + md5(data), md5(data), headers)
    return local, remote, record


def local_files(local: dict[str, tuple[bytes, Headers]]) -> list[LocalFile]:
    return [
        LocalFile(PREFIX + rel, f"/src/{rel}", len(data), md5(data), headers)
        for rel, (data, headers) in local.items()
    ]


def run_plan(
    files: list[LocalFile], remote: dict[str, Truth], record: dict[str, ObjectState]
) -> Plan:
    listing = {
        PREFIX + rel: RemoteObject(PREFIX + rel, len(t.data), t.etag) for rel, t in remote.items()
    }
    rec = {PREFIX + rel: state for rel, state in record.items()}
    wanted = keys_to_head(files, listing, rec)
    heads = {}
    for key in wanted:
        t = remote[key.removeprefix(PREFIX)]
        heads[key] = ObjectState(t.etag, md5(t.data) if t.has_md5_meta else None, t.headers)
    return make_plan(
        files,
        listing,
        rec,
        heads,
        prefix=PREFIX,
        delete_removed=True,
        keep=lambda rel: False,
        record_key=RECORD_KEY,
    )


@settings(max_examples=400, deadline=None)
@given(world=worlds())
def test_plan_never_misses_a_change(
    world: tuple[dict[str, tuple[bytes, Headers]], dict[str, Truth], dict[str, ObjectState]],
) -> None:
    """Every file whose bytes or headers differ from the bucket is written, an unchanged file
    is not when its MD5 is knowable, a header-only copy only when the bytes are the same,
    and removed keys are deleted. (An opaque 32-hex ETag without our metadata is taken as
    the MD5, so such an unchanged object may be re-sent once.)"""
    local, remote, record = world
    plan = run_plan(local_files(local), remote, record)
    reasons = {u.file.key.removeprefix(PREFIX): u.reason for u in plan.uploads}
    for rel, (data, headers) in local.items():
        truth = remote.get(rel)
        if truth is None:
            assert reasons[rel] is Reason.NEW
        elif truth.data != data:
            assert reasons.get(rel) in (Reason.SIZE, Reason.CONTENT, Reason.UNVERIFIABLE)
        elif truth.headers != headers:
            assert rel in reasons
        elif truth.has_md5_meta or truth.etag == md5(data):
            # Same bytes and headers, and a way to know it: never re-sent.
            assert rel not in reasons
        if reasons.get(rel) is Reason.HEADERS:
            assert truth is not None and truth.data == data
    assert {k.removeprefix(PREFIX) for k in plan.deletes} == set(remote) - set(local)
    updated = {PREFIX + rel for rel, r in reasons.items() if r is not Reason.NEW}
    assert updated | set(plan.deletes) <= set(plan.invalidate_keys)


@settings(max_examples=400, deadline=None)
@given(world=worlds(), multipart=st.booleans())
def test_applying_a_plan_then_planning_again_does_nothing(
    world: tuple[dict[str, tuple[bytes, Headers]], dict[str, Truth], dict[str, ObjectState]],
    multipart: bool,
) -> None:
    """After remote := local and record := local states, the next plan is empty."""
    local, remote, record = world
    files = local_files(local)
    run_plan(files, remote, record)  # the plan being applied
    applied: dict[str, Truth] = {}
    for rel, (data, headers) in local.items():
        etag = etag_for(data, 1 if multipart else 0, 0)
        applied[rel] = Truth(data, headers, etag, has_md5_meta=True)
    new_record = {rel: ObjectState(t.etag, md5(t.data), t.headers) for rel, t in applied.items()}
    again = run_plan(files, applied, new_record)
    assert again.is_empty, again
    assert len(again.unchanged) == len(local)


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(keys_st, max_size=30), max_paths=st.integers(1, 20))
def test_origin_path_is_transparent(keys: list[str], max_paths: int) -> None:
    """Keys under an origin path give the same paths as the same keys at the root."""
    under = ["app/" + k for k in keys] + ["elsewhere/" + k for k in keys]
    assert paths_for(under, origin_path="/app/", max_paths=max_paths) == paths_for(
        keys, origin_path="", max_paths=max_paths
    )


_file_name = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=12
).filter(lambda n: n not in (".", "..") and len(n.encode()) <= 255)


@settings(max_examples=150, deadline=None)
@given(names=st.lists(_file_name, min_size=1, max_size=8, unique=True))
def test_any_file_name_is_published_under_its_nfc_key_or_warned(names: list[str]) -> None:
    """On disk, every name either becomes `prefix` + its NFC form, or is excluded or warned
    about; keys are unique, NFC, and the scan never crashes."""
    import tempfile
    import unicodedata

    from deployer.local import scan

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "keep.txt").write_bytes(b"k")
        for name in names:
            (root / "d").mkdir(exist_ok=True)
            (root / "d" / name).write_bytes(name.encode())
        result = scan(root, "p/", (), (), ())
        got = [f.key for f in result.files]
        assert got == sorted(set(got))
        assert all(unicodedata.is_normalized("NFC", k) for k in got)
        assert "p/keep.txt" in got
        on_disk = {n.name for n in (root / "d").iterdir()}
        published = {k.removeprefix("p/d/") for k in got if k.startswith("p/d/")}
        assert published <= {unicodedata.normalize("NFC", n) for n in on_disk}
        missing = {unicodedata.normalize("NFC", n) for n in on_disk} - published
        # Whatever is not published was excluded by a default rule or warned about.
        assert len(missing) <= result.excluded + len(result.warnings)
