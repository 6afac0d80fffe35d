"""deploy.run over in-memory fakes of Store and CDN: order, failure handling, dry-run, record."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from deployer import deploy, parts, record
from deployer.cdnstep import CDN
from deployer.deploy import Store
from deployer.errors import DeployError, MaxDeleteExceeded, RemoteError, TransferError
from deployer.listing import PAGE
from deployer.model import (
    Distribution,
    Headers,
    InvalidationResult,
    LocalFile,
    ObjectState,
    Outcome,
    Reason,
    RemoteObject,
)
from deployer.settings import RECORD_BASENAME, Settings, load_settings

# -- fakes --------------------------------------------------------------------------------


class Events:
    """One ordered log shared by the fake store and CDN."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def add(self, kind: str, key: str) -> None:
        with self.lock:
            self.items.append((kind, key))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.items]

    def keys(self, kind: str) -> list[str]:
        return [key for k, key in self.items if k == kind]

    def writes(self) -> list[tuple[str, str]]:
        return [e for e in self.items if e[0] in ("put", "copy", "delete", "record", "invalidate")]


class FakeStore:
    """A bucket in memory, as S3 behaves where that changes what a test proves.

    - Keys are honoured everywhere: `get_record(key)` answers only what was put at `key`
      (None for any other key, as S3's 404), and the record is listed at its own key.
    - `head` gives an MD5 (our `x-amz-meta-md5`) only to objects this tool wrote
      (`put_file`, `copy_headers`); an object another tool wrote (`put_raw`) has none.
    - `copy_headers` gives the object a new single-part ETag, the MD5 of its bytes, as
      S3's CopyObject does, also for a multipart (`-N`) object.
    - Failures: `fail_keys` always fail before the write; `fail_at=N` fails the N-th write
      (1-based); `lost_keys` are written and then fail ("written, answer lost": S3 acted
      but the answer never came back).
    """

    def __init__(
        self,
        events: Events,
        *,
        fail_keys: Sequence[str] = (),
        fail_at: int | None = None,
        multipart_keys: Sequence[str] = (),
    ) -> None:
        self.events = events
        self.objects: dict[str, ObjectState] = {}  # md5 = our metadata (None: not ours)
        self.sizes: dict[str, int] = {}
        self.content_md5: dict[str, str] = {}  # the real MD5 of each object's bytes
        self.records: dict[str, bytes] = {}  # deploy records' bodies, by key
        self.record_key = RECORD_BASENAME  # the key `record_body` and `record_etag` speak of
        self.record_etag: str | None = None  # listed instead of the body's MD5 when set
        self.fail_keys = set(fail_keys)
        self.fail_at = fail_at
        self.lost_keys: set[str] = set()
        self.multipart_keys = set(multipart_keys)
        self.delete_fail_keys: set[str] = set()
        self.writes = 0
        self.heads: list[str] = []
        self.prepared = 0
        self.connect_s: float | None = None  # what `link_time` says the first request took
        self.waited_s: float | None = None  # what `link_waited` says while it is awaited
        self.lock = threading.Lock()

    # helpers for tests
    @property
    def record_body(self) -> bytes | None:
        """The record's bytes at `record_key`."""
        return self.records.get(self.record_key)

    @record_body.setter
    def record_body(self, body: bytes | None) -> None:
        """The record's bytes; the bucket lists it (ETag = MD5 of the body) unless None."""
        self._store_record(self.record_key, body)

    def _store_record(self, key: str, body: bytes | None) -> None:
        if body is None:
            self.records.pop(key, None)
            self.objects.pop(key, None)
            self.sizes.pop(key, None)
            return
        self.records[key] = body
        md5 = hashlib.md5(body).hexdigest()
        self.objects[key] = ObjectState(md5, md5, None)
        self.sizes[key] = len(body)
        self.content_md5[key] = md5

    def put_raw(
        self, key: str, body: bytes, headers: Headers | None = None, *, multipart: bool = False
    ) -> None:
        """An object another tool wrote: no `md5` metadata of ours."""
        md5 = hashlib.md5(body).hexdigest()
        etag = (md5[:31] + "f-2") if multipart else md5
        self.objects[key] = ObjectState(etag=etag, md5=None, headers=headers)
        self.sizes[key] = len(body)
        self.content_md5[key] = md5

    def _write(self, kind: str, key: str) -> None:
        with self.lock:
            self.writes += 1
            number = self.writes
        if key in self.fail_keys or number == self.fail_at:
            self.events.add("fail", key)
            raise RemoteError(f"S3 kept failing PutObject on `{key}`", title="AWS request failed")

    def _answer(self, kind: str, key: str) -> None:
        """After the write took effect: lose the answer for `lost_keys`."""
        if key in self.lost_keys:
            self.events.add("lost", key)
            raise RemoteError(f"S3 stopped answering {kind} on `{key}`", title="AWS request failed")

    # Store protocol
    def list_objects(
        self, prefix: str, after: str = "", until: str | None = None
    ) -> list[RemoteObject]:
        self.events.add("list", prefix)
        return [
            RemoteObject(
                key,
                self.sizes[key],
                self.record_etag if key == self.record_key and self.record_etag else state.etag,
            )
            for key, state in sorted(self.objects.items())
            if key.startswith(prefix) and key > after and (until is None or key <= until)
        ]

    def first_page(self, prefix: str) -> tuple[list[RemoteObject], bool]:
        listed = self.list_objects(prefix)  # a "list" event: one request
        return listed[:PAGE], len(listed) <= PAGE

    def prepare(self) -> None:
        with self.lock:
            self.prepared += 1  # a connection opened ahead: not a request

    def link_time(self) -> float | None:
        return self.connect_s

    def link_waited(self) -> float | None:
        return self.waited_s

    def head(self, key: str) -> ObjectState | None:
        self.events.add("head", key)
        with self.lock:
            self.heads.append(key)
        return self.objects.get(key)

    def get_record(self, key: str) -> bytes | None:
        self.events.add("get_record", key)
        return self.records.get(key)

    def put_record(self, key: str, body: record.Encoded) -> None:
        self._write("record", key)
        self.events.add("record", key)
        self._store_record(key, body.body())
        self._answer("record", key)

    def put_file(self, file: LocalFile, lanes: parts.Lanes | None = None) -> str:
        self._write("put", file.key)
        self.events.add("put", file.key)
        etag = (file.md5[:31] + "f-3") if file.key in self.multipart_keys else file.md5
        with self.lock:
            self.objects[file.key] = ObjectState(etag, file.md5, file.headers)
            self.sizes[file.key] = file.size
            self.content_md5[file.key] = file.md5
        self._answer("put", file.key)
        return etag

    def copy_headers(self, file: LocalFile) -> str:
        self._write("copy", file.key)
        self.events.add("copy", file.key)
        with self.lock:
            etag = self.content_md5[file.key]  # a copy is a new single-part object
            self.objects[file.key] = ObjectState(etag, file.md5, file.headers)
        self._answer("copy", file.key)
        return etag

    def delete(self, keys: Sequence[str]) -> list[tuple[str, str]]:
        assert len(keys) <= 1000
        failures = []
        for key in keys:
            if key in self.delete_fail_keys:
                failures.append((key, "access denied"))
                continue
            self.events.add("delete", key)
            self.objects.pop(key, None)
            self.sizes.pop(key, None)
            self.content_md5.pop(key, None)
        for key in keys:
            self._answer("delete", key)
        return failures


class FakeCDN:
    def __init__(self, events: Events, *, origin: str | None = "", fail: bool = False) -> None:
        self.events = events
        self.origin = origin
        self.fail = fail
        self.calls: list[tuple[str, tuple[str, ...], str]] = []
        self.waited: list[str] = []
        self.missing: set[str] = set()
        self.wait_status = "COMPLETED"
        self.wait_error = False
        self.site_url = "https://d111111abcdef8.cloudfront.net"
        self.lock = threading.Lock()  # distributions are called at once

    def distribution(self, distribution_id: str, bucket: str) -> Distribution:
        if distribution_id in self.missing:
            raise RemoteError("no such distribution; check `distribution-id`")
        return Distribution(self.origin, self.site_url)

    def invalidate(
        self, distribution_id: str, paths: Sequence[str], caller_reference: str
    ) -> InvalidationResult:
        if self.fail:
            raise RemoteError("CloudFront refused", title="Invalidation failed")
        self.events.add("invalidate", distribution_id)
        with self.lock:
            self.calls.append((distribution_id, tuple(paths), caller_reference))
            number = len(self.calls)
        return InvalidationResult(distribution_id, f"I{number}", tuple(paths), "InProgress")

    def wait(self, distribution_id: str, invalidation_id: str, timeout_s: float) -> str:
        with self.lock:
            self.waited.append(invalidation_id)
        if self.wait_error:
            raise RemoteError("Access denied: allow `cloudfront:GetInvalidation`.")
        return self.wait_status


class FakeLog:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.warnings: list[tuple[str, str | None]] = []
        self.debugs: list[str] = []

    def info(self, msg: str, /) -> None:
        self.lines.append(msg)

    def warning(self, msg: str, /, title: str | None = None) -> None:
        self.warnings.append((msg, title))

    def progress(self, msg: str, /) -> None:
        self.lines.append(msg)

    def debug(self, msg: str, /) -> None:
        self.debugs.append(msg)

    @contextmanager
    def group(self, title: str, /) -> Iterator[None]:
        self.lines.append(f"[{title}]")
        yield


# -- helpers ------------------------------------------------------------------------------

SITE = {
    "index.html": b"<h1>home</h1>",
    "about/index.html": b"<h1>about</h1>",
    "assets/app-3f2a9c1b.js": b"console.log('app')",
    "assets/style-8d7e6f5a.css": b"body{color:red}",
    "img/logo.png": b"\x89PNG....",
}


def write_site(root: Path, files: Mapping[str, bytes]) -> None:
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def make_settings(workspace: Path, **inputs: str) -> Settings:
    flags = {
        "bucket": "my-site",
        "source-dir": "site",
        "distribution-id": "E2ABCDEF123456",
        "aws-region": "us-east-1",
        **inputs,
    }
    return load_settings(
        flags, {"GITHUB_WORKSPACE": str(workspace), "GITHUB_RUN_ID": "42"}, workspace
    )


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.workspace = tmp_path
        self.site = tmp_path / "site"
        self.site.mkdir()
        write_site(self.site, SITE)
        self.events = Events()
        self.store = FakeStore(self.events)
        self.cdn = FakeCDN(self.events)
        self.log = FakeLog()

    def deploy(self, **inputs: str) -> Outcome:
        return self.deploy_with(self.store, self.cdn, **inputs)

    def deploy_with(self, store: Store, cdn: CDN, **inputs: str) -> Outcome:
        outcome = Outcome()
        self.events.items.clear()
        deploy.run(make_settings(self.workspace, **inputs), store, cdn, self.log, outcome)
        return outcome

    def deploy_raises(self, error: type[DeployError], **inputs: str) -> tuple[Outcome, DeployError]:
        outcome = Outcome()
        self.events.items.clear()
        with pytest.raises(error) as caught:
            deploy.run(
                make_settings(self.workspace, **inputs), self.store, self.cdn, self.log, outcome
            )
        return outcome, caught.value


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def index_of(events: list[tuple[str, str]], item: tuple[str, str]) -> int:
    return events.index(item)


# -- tests --------------------------------------------------------------------------------


def test_cold_deploy_uploads_everything_assets_first_and_record_last(world: World) -> None:
    """A first deploy puts every file, assets before entries, and writes the record last."""
    outcome = world.deploy()
    puts = world.events.keys("put")
    assert sorted(puts) == sorted(SITE)
    entries = {"index.html", "about/index.html"}
    last_asset = max(i for i, key in enumerate(puts) if key not in entries)
    first_entry = min(i for i, key in enumerate(puts) if key in entries)
    assert last_asset < first_entry
    assert world.events.writes()[-1] == ("record", RECORD_BASENAME)
    assert len(outcome.uploaded) == 5
    assert outcome.uploaded_bytes == sum(len(b) for b in SITE.values())
    assert outcome.invalidations == []  # new keys need no invalidation
    assert world.cdn.calls == []
    entries_in_record, warning = record.decode(world.store.record_body or b"")
    assert warning is None
    assert sorted(entries_in_record) == sorted(SITE)


def test_second_deploy_does_nothing_and_keeps_the_record(world: World) -> None:
    """Nothing changed: no write of any kind, no invalidation, the record is not rewritten."""
    world.deploy()
    outcome = world.deploy()
    assert world.events.writes() == []
    assert outcome.uploaded == []
    assert outcome.unchanged_count == 5
    assert world.store.heads == []  # plain MD5 ETags: the listing proves everything


def test_no_change_after_a_completed_deploy_does_not_get_the_record(world: World) -> None:
    """The record this run expects has the listed record's MD5: no GET, same result."""
    world.deploy()
    assert world.events.keys("get_record") == []  # first deploy: the record is not listed
    outcome = world.deploy()
    assert world.events.kinds() == ["list"]  # one LIST, no record GET, no write
    assert outcome.unchanged_count == 5
    assert outcome.warnings == []


def test_changed_files_after_a_completed_deploy_do_not_get_the_record(world: World) -> None:
    """Edited files (their listed ETag is the MD5 the record holds): still no GET."""
    world.deploy()
    (world.site / "index.html").write_bytes(b"<h1>HOME</h1>")  # same size
    (world.site / "assets/app-3f2a9c1b.js").write_bytes(b"console.log('app v2')")
    outcome = world.deploy()
    assert world.events.keys("get_record") == []
    assert sorted(u.file.key for u in outcome.uploaded) == ["assets/app-3f2a9c1b.js", "index.html"]
    assert set(world.cdn.calls[-1][1]) == {"/", "/index.html", "/assets/app-3f2a9c1b.js"}
    assert world.events.keys("record") == [RECORD_BASENAME]
    entries, _ = record.decode(world.store.record_body or b"")
    assert entries["index.html"].md5 == hashlib.md5(b"<h1>HOME</h1>").hexdigest()


def test_record_changed_behind_our_back_is_read(world: World) -> None:
    """Another record than the one expected (other content, same keys): GET, and it counts."""
    world.deploy()
    entries, _ = record.decode(world.store.record_body or b"")
    other = dict(entries)
    other["img/logo.png"] = ObjectState("0" * 32, "0" * 32, entries["img/logo.png"].headers)
    world.store.record_body = record.encode(other)
    outcome = world.deploy()
    assert world.events.keys("get_record") == [RECORD_BASENAME]
    # The record read says the last completed deploy left other bytes at that key.
    assert outcome.plan is not None
    assert outcome.plan.invalidate_keys == ("img/logo.png",)
    assert world.events.keys("record") == [RECORD_BASENAME]


def test_record_etag_that_is_not_an_md5_means_a_get(world: World) -> None:
    """A record listed with a non-MD5 ETag (SSE-KMS, multipart, odd server) is read."""
    world.deploy()
    for etag in ("0123456789abcdef0123456789abcdef-2", "not-an-md5"):
        world.store.record_etag = etag
        outcome = world.deploy()
        assert world.events.keys("get_record") == [RECORD_BASENAME]
        assert outcome.uploaded == []


def test_multipart_objects_are_vouched_without_a_record_get(world: World) -> None:
    """A `-N` ETag object: its MD5 comes from the local file, and the record's MD5 agrees."""
    world.store.multipart_keys = {"img/logo.png"}
    world.deploy()
    outcome = world.deploy()
    assert world.events.kinds() == ["list"]
    assert outcome.uploaded == []


def test_incremental_order_assets_entries_deletes_invalidation_record(world: World) -> None:
    """Changed asset, changed page, a removal: asset, page, delete, invalidate, record."""
    world.deploy()
    (world.site / "assets/style-8d7e6f5a.css").write_bytes(b"body{color:blue}")
    (world.site / "index.html").write_bytes(b"<h1>home!</h1>")
    (world.site / "img/logo.png").unlink()
    outcome = world.deploy()
    writes = world.events.writes()
    assert writes == [
        ("put", "assets/style-8d7e6f5a.css"),
        ("put", "index.html"),
        ("delete", "img/logo.png"),
        ("invalidate", "E2ABCDEF123456"),
        ("record", RECORD_BASENAME),
    ]
    assert outcome.deleted == ["img/logo.png"]
    (dist, paths, ref) = world.cdn.calls[0]
    assert dist == "E2ABCDEF123456"
    assert set(paths) == {"/", "/index.html", "/assets/style-8d7e6f5a.css", "/img/logo.png"}
    assert ref.startswith("s3cfd-42-1-")
    assert outcome.invalidation_paths == paths
    assert [inv.invalidation_id for inv in outcome.invalidations] == ["I1"]


def test_same_size_edit_is_detected(world: World) -> None:
    """A same-size edit changes the MD5, so it is uploaded."""
    world.deploy()
    (world.site / "index.html").write_bytes(b"<h1>HOME</h1>")
    outcome = world.deploy()
    assert [(u.file.key, u.reason) for u in outcome.uploaded] == [("index.html", Reason.CONTENT)]


def test_upload_failure_holds_back_entries_deletes_and_record(world: World) -> None:
    """An asset that fails: no entry put, nothing deleted, no record, TransferError names it."""
    world.deploy()
    (world.site / "assets/style-8d7e6f5a.css").write_bytes(b"body{color:green}")
    (world.site / "assets/app-3f2a9c1b.js").write_bytes(b"console.log('v2')")
    (world.site / "index.html").write_bytes(b"<h1>v2</h1>")
    (world.site / "img/logo.png").unlink()
    world.store.fail_keys = {"assets/style-8d7e6f5a.css"}
    record_before = world.store.record_body
    outcome, err = world.deploy_raises(TransferError)
    assert "assets/style-8d7e6f5a.css" in str(err)
    assert outcome.failed and outcome.failed[0][0] == "assets/style-8d7e6f5a.css"
    assert world.events.keys("put") == ["assets/app-3f2a9c1b.js"]
    assert world.events.keys("delete") == []
    assert world.events.keys("record") == []
    assert world.store.record_body == record_before
    # What landed is invalidated; what did not land is not.
    assert world.cdn.calls and world.cdn.calls[0][1] == ("/assets/app-3f2a9c1b.js",)
    assert any(title == "Entry files held back" for _, title in world.log.warnings)


def test_fail_at_knob_any_write_failure_blocks_deletes(world: World) -> None:
    """Whichever write fails (the 2nd here), nothing is deleted and the error is raised."""
    world.deploy()
    for rel in ("assets/app-3f2a9c1b.js", "assets/style-8d7e6f5a.css", "index.html"):
        (world.site / rel).write_bytes(b"changed " + rel.encode())
    (world.site / "about/index.html").unlink()
    world.store.fail_at = world.store.writes + 2
    outcome, _ = world.deploy_raises(TransferError)
    assert len(outcome.failed) == 1
    assert world.events.keys("delete") == []
    assert outcome.deleted == []
    assert world.events.keys("record") == []


def test_rerun_after_failure_converges_and_invalidates_what_the_failed_run_wrote(
    world: World,
) -> None:
    """After a failed run, the next run finishes and still invalidates the earlier uploads."""
    world.deploy()
    (world.site / "assets/app-3f2a9c1b.js").write_bytes(b"v2 app")
    (world.site / "index.html").write_bytes(b"<h1>v2</h1>")
    world.store.fail_keys = {"index.html"}
    world.deploy_raises(TransferError)
    world.store.fail_keys = set()
    world.cdn.calls.clear()
    outcome = world.deploy()
    # The bucket differs from what the record describes: it must be read.
    assert world.events.keys("get_record") == [RECORD_BASENAME]
    assert [u.file.key for u in outcome.uploaded] == ["index.html"]
    paths = set(world.cdn.calls[0][1])
    assert "/assets/app-3f2a9c1b.js" in paths  # uploaded by the failed run, still stale at edge
    assert {"/", "/index.html"} <= paths


def test_dry_run_writes_nothing(world: World) -> None:
    """Dry-run: reads happen, no put/copy/delete/record/invalidation; the plan is reported."""
    world.deploy()
    (world.site / "index.html").write_bytes(b"<h1>dry</h1>")
    (world.site / "img/logo.png").unlink()
    before = dict(world.store.objects)
    outcome = world.deploy_with(
        deploy.DryRunStore(world.store), deploy.DryRunCDN(world.cdn), **{"dry-run": "true"}
    )
    assert world.events.writes() == []
    assert world.store.objects == before
    assert outcome.dry_run
    assert outcome.plan is not None
    assert [u.file.key for u in outcome.plan.uploads] == ["index.html"]
    assert outcome.plan.deletes == ("img/logo.png",)
    assert set(outcome.invalidation_paths) == {"/", "/index.html", "/img/logo.png"}
    assert outcome.invalidations == []


def test_max_delete_refuses_before_any_write(world: World) -> None:
    """More deletions than `max-delete`: MaxDeleteExceeded, and not a single write."""
    world.deploy()
    (world.site / "index.html").write_bytes(b"<h1>changed</h1>")
    for rel in ("img/logo.png", "about/index.html"):
        (world.site / rel).unlink()
    outcome, err = world.deploy_raises(MaxDeleteExceeded, **{"max-delete": "1"})
    assert world.events.writes() == []
    assert outcome.plan is not None and len(outcome.plan.deletes) == 2
    assert "`max-delete`" in str(err)


def test_delete_removed_false_keeps_remote_objects(world: World) -> None:
    """`delete-removed: false` never deletes."""
    world.deploy()
    (world.site / "img/logo.png").unlink()
    world.deploy(**{"delete-removed": "false"})
    assert world.events.keys("delete") == []
    assert "img/logo.png" in world.store.objects


def test_exclude_protects_remote_objects(world: World) -> None:
    """A remote object matching `exclude` is not deleted."""
    world.deploy()
    world.store.put_raw("uploads/user.jpg", b"user data")
    outcome = world.deploy(exclude="uploads/")
    assert outcome.deleted == []
    assert "uploads/user.jpg" in world.store.objects


def test_invalidation_all_and_none(world: World) -> None:
    """`all` invalidates `/*` when something changed; `none` never invalidates."""
    world.deploy()
    (world.site / "index.html").write_bytes(b"<h1>a</h1>")
    world.deploy(invalidation="all")
    assert world.cdn.calls[-1][1] == ("/*",)
    (world.site / "index.html").write_bytes(b"<h1>b</h1>")
    world.cdn.calls.clear()
    world.deploy(invalidation="none")
    assert world.cdn.calls == []
    world.deploy(invalidation="all")  # nothing changed since: no invalidation at all
    assert world.cdn.calls == []


def test_several_distributions_and_origin_path(world: World) -> None:
    """Each distribution is invalidated; paths are relative to its origin path."""
    world.deploy(**{"destination-prefix": "app"})
    (world.site / "about/index.html").write_bytes(b"<h1>about v2</h1>")
    world.cdn.origin = "app/"
    outcome = world.deploy(
        **{"destination-prefix": "app", "distribution-id": "E2ABCDEF123456,EFEDCBA654321X"}
    )
    calls = sorted(world.cdn.calls)  # created at once: in either order
    assert [c[0] for c in calls] == ["E2ABCDEF123456", "EFEDCBA654321X"]
    assert all(set(c[1]) == {"/about/", "/about/index.html"} for c in calls)
    assert calls[0][2] != calls[1][2]  # caller reference per distribution
    # Reported in the order the distributions were given.
    assert [i.distribution_id for i in outcome.invalidations] == [c[0] for c in calls]


def test_several_distributions_are_called_at_once(world: World) -> None:
    """Three distributions: each look-up, invalidation and wait waits for the other two
    (a barrier of three), so the deploy completes only if they are made at the same time."""

    class Together(FakeCDN):
        def __init__(self, events: Events) -> None:
            super().__init__(events)
            self.barrier = threading.Barrier(3, timeout=5)

        def distribution(self, distribution_id: str, bucket: str) -> Distribution:
            self.barrier.wait()
            return super().distribution(distribution_id, bucket)

        def invalidate(
            self, distribution_id: str, paths: Sequence[str], caller_reference: str
        ) -> InvalidationResult:
            self.barrier.wait()
            return super().invalidate(distribution_id, paths, caller_reference)

        def wait(self, distribution_id: str, invalidation_id: str, timeout_s: float) -> str:
            self.barrier.wait()
            return super().wait(distribution_id, invalidation_id, timeout_s)

    world.deploy()
    (world.site / "index.html").write_bytes(b"<h1>v2</h1>")
    world.cdn = Together(world.events)
    ids = "E1AAAAAAAAAAAA,E2BBBBBBBBBBBB,E3CCCCCCCCCCCC"
    outcome = world.deploy(**{"distribution-id": ids, "wait-for-invalidation": "true"})
    assert [i.distribution_id for i in outcome.invalidations] == ids.split(",")
    assert [i.status for i in outcome.invalidations] == ["COMPLETED"] * 3


def test_unknown_origin_path_warns_and_assumes_root(world: World) -> None:
    """Origin prefix unknown: a warning, and paths include the prefix."""
    world.deploy(**{"destination-prefix": "app"})
    (world.site / "index.html").write_bytes(b"<h1>v2</h1>")
    world.cdn.origin = None
    outcome = world.deploy(**{"destination-prefix": "app"})
    assert set(world.cdn.calls[0][1]) == {"/app/", "/app/index.html"}
    assert any("GetDistribution`" in w for w in outcome.warnings)


def test_wait_for_invalidation_records_status(world: World) -> None:
    """With `wait-for-invalidation`, the final status is stored in the outcome."""
    world.deploy()
    (world.site / "index.html").write_bytes(b"<h1>w</h1>")
    outcome = world.deploy(**{"wait-for-invalidation": "true"})
    assert world.cdn.waited == ["I1"]
    assert outcome.invalidations[0].status == "COMPLETED"


def test_invalidation_failure_raises_after_deploy_and_keeps_record(world: World) -> None:
    """CloudFront fails: files are live, the record is not advanced, a re-run invalidates."""
    world.deploy()
    (world.site / "index.html").write_bytes(b"<h1>x</h1>")
    world.cdn.fail = True
    world.deploy_raises(RemoteError)
    assert world.events.keys("put") == ["index.html"]
    assert world.events.keys("record") == []
    world.cdn.fail = False
    world.deploy()
    assert {"/", "/index.html"} <= set(world.cdn.calls[-1][1])


def test_delete_failures_are_reported_after_invalidation(world: World) -> None:
    """Per-key delete errors: the rest is deleted, invalidation happens, the error names keys."""
    world.deploy()
    (world.site / "img/logo.png").unlink()
    (world.site / "about/index.html").unlink()
    world.store.delete_fail_keys = {"img/logo.png"}
    outcome, err = world.deploy_raises(RemoteError)
    assert outcome.deleted == ["about/index.html"]
    assert "img/logo.png" in str(err)
    assert world.events.keys("record") == []
    assert set(world.cdn.calls[-1][1]) == {"/about/", "/about/index.html"}


def test_headers_only_change_is_a_copy(world: World) -> None:
    """A new Cache-Control rule updates headers with a copy, sending no bytes."""
    world.deploy()
    outcome = world.deploy(**{"cache-control": "*.png: public, max-age=60"})
    assert world.events.keys("copy") == ["img/logo.png"]
    assert world.events.keys("put") == []
    assert outcome.uploaded_bytes == 0
    assert world.store.objects["img/logo.png"].headers == Headers("image/png", "public, max-age=60")


def test_record_stops_vouching_for_headers_before_the_first_copy(world: World) -> None:
    """Before any copy, the record is re-written with those keys' headers unknown."""
    world.deploy()
    world.events.items.clear()
    world.deploy(**{"cache-control": "*.png: public, max-age=60"})
    writes = world.events.writes()
    first_copy = index_of(writes, ("copy", "img/logo.png"))
    records = [i for i, e in enumerate(writes) if e[0] == "record"]
    assert records and records[0] < first_copy  # un-vouched before the copy
    assert records[-1] > first_copy  # and the full record again after the deploy


def test_killed_copy_then_reverted_rule_is_copied_back(world: World) -> None:
    """A run killed after the pre-copy record: the next run HEADs and restores headers."""
    world.deploy()
    world.store.fail_keys = {"img/logo.png"}  # the copy fails: as if killed right there
    with pytest.raises(DeployError):
        world.deploy(**{"cache-control": "*.png: public, max-age=60"})
    world.store.fail_keys = set()
    entries, _ = record.decode(world.store.record_body or b"")
    assert entries["img/logo.png"].headers is None
    outcome = world.deploy()
    assert world.events.keys("get_record") == [RECORD_BASENAME]  # not what a deploy writes
    assert "img/logo.png" in world.store.heads
    assert outcome.plan is not None
    assert "img/logo.png" in outcome.plan.invalidate_keys


def test_multipart_etags_are_trusted_through_the_record(world: World) -> None:
    """Objects with `-N` ETags are not re-uploaded and not HEADed when the record vouches."""
    world.store.multipart_keys = {"img/logo.png"}
    world.deploy()
    outcome = world.deploy()
    assert outcome.uploaded == []
    assert world.store.heads == []


def test_multipart_etags_without_record_use_head(world: World) -> None:
    """Without a record, objects are checked with HEAD (md5 metadata, headers), not re-uploaded."""
    world.store.multipart_keys = {"img/logo.png"}
    world.deploy()
    world.store.record_body = None
    outcome = world.deploy()
    assert "img/logo.png" in world.store.heads
    assert outcome.uploaded == []
    assert world.events.keys("record") == [RECORD_BASENAME]  # the record is written again


def test_garbage_record_is_a_warning(world: World) -> None:
    """An unreadable record is ignored with a warning and replaced at the end."""
    world.deploy()
    world.store.record_body = b"{not json"
    outcome = world.deploy()
    assert any("deploy record" in w for w in outcome.warnings)
    assert world.events.keys("record") == [RECORD_BASENAME]
    assert record.decode(world.store.record_body or b"")[1] is None


def test_progress_lines_on_long_uploads(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress lines appear when the phase takes longer than the interval."""
    ticks = iter(range(0, 10_000, 3))
    outcome = Outcome()
    deploy.run(
        make_settings(world.workspace),
        world.store,
        world.cdn,
        world.log,
        outcome,
        clock=lambda: float(next(ticks)),
    )
    assert any(line.startswith("Uploading assets: ") and "%" in line for line in world.log.lines)


def test_short_reason() -> None:
    """short_reason prefers a `short` attribute, then the title, then the class name."""
    err = RemoteError("long text", title="T")
    assert deploy.short_reason(err) == "T"
    err.short = "503 after retries"  # type: ignore[attr-defined]
    assert deploy.short_reason(err) == "503 after retries"
    assert deploy.short_reason(ValueError("x")) == "ValueError"


def test_missing_distribution_fails_before_any_write(world: World) -> None:
    """A `distribution-id` that does not exist is found out before anything is written."""
    (world.site / "index.html").write_bytes(b"<h1>new</h1>")
    world.cdn.missing = {"E2ABCDEF123456"}
    _, err = world.deploy_raises(RemoteError)
    assert "`distribution-id`" in str(err)
    assert world.events.writes() == []
    world.deploy(invalidation="none")  # not looked up when it is not used
    assert world.events.keys("put")


def test_wait_problems_are_warnings_and_the_record_is_written(world: World) -> None:
    """A wait that times out or cannot check status warns; the deploy still completes."""
    world.deploy()
    (world.site / "index.html").write_bytes(b"<h1>w1</h1>")
    world.cdn.wait_status = "InProgress"
    outcome = world.deploy(**{"wait-for-invalidation": "true"})
    assert outcome.invalidations[0].status == "InProgress"
    assert any("still InProgress" in w for w in outcome.warnings)
    assert world.events.keys("record") == [RECORD_BASENAME]
    (world.site / "index.html").write_bytes(b"<h1>w2</h1>")
    world.cdn.wait_error = True
    outcome = world.deploy(**{"wait-for-invalidation": "true"})
    assert any("cloudfront:GetInvalidation" in w for w in outcome.warnings)
    assert world.events.keys("record") == [RECORD_BASENAME]


def test_progress_lines_on_long_deletes(world: World) -> None:
    """Deleting in several batches prints progress lines when batches take time."""
    world.deploy()
    for i in range(2500):
        world.store.put_raw(f"old/{i}.txt", b"x")
    ticks = iter(range(0, 100_000, 3))
    outcome = Outcome()
    deploy.run(
        make_settings(world.workspace, **{"max-delete": "5000"}),
        world.store,
        world.cdn,
        world.log,
        outcome,
        clock=lambda: float(next(ticks)),
    )
    assert len(outcome.deleted) == 2500
    assert any(line.startswith("Deleting: 1000/2500") for line in world.log.lines)
    assert any(line.startswith("Deleting: 2000/2500") for line in world.log.lines)


def test_connect_wraps_for_dry_run_and_shares_one_s3_client(world: World) -> None:
    """connect(): S3Store + lazy CloudFront; dry-run wraps both so writes do nothing."""
    import boto3

    from deployer.s3 import S3Store

    session = boto3.session.Session(
        aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="x", region_name="us-east-1"
    )
    store, cdn = deploy.connect(make_settings(world.workspace), session, world.log)
    assert isinstance(store, S3Store)
    assert store.bucket == "my-site"
    assert isinstance(cdn, deploy.LazyCDN)
    dry_store, dry_cdn = deploy.connect(
        make_settings(world.workspace, **{"dry-run": "true"}), session, world.log
    )
    assert isinstance(dry_store, deploy.DryRunStore)
    assert isinstance(dry_cdn, deploy.DryRunCDN)
    assert any("Dry run" in line for line in world.log.lines)


# -- the record's key, delete-only deploys, partial failures, S3's own behaviours ----------

PREFIXED_RECORD = "app/" + RECORD_BASENAME


def test_prefixed_record_is_read_and_written_at_its_own_key(world: World) -> None:
    """Under `destination-prefix` the record lives at `app/...json`; a rerun after a failed
    run reads it there, and so still invalidates what the failed run wrote."""
    app = {"destination-prefix": "app"}
    world.store.record_key = PREFIXED_RECORD
    world.deploy(**app)
    assert world.events.keys("record") == [PREFIXED_RECORD]
    assert RECORD_BASENAME not in world.store.objects  # nothing at the bucket root
    (world.site / "assets/app-3f2a9c1b.js").write_bytes(b"v2 app")
    (world.site / "index.html").write_bytes(b"<h1>v2</h1>")
    world.store.fail_keys = {"app/index.html"}
    world.deploy_raises(TransferError, **app)
    world.store.fail_keys = set()
    world.cdn.calls.clear()
    outcome = world.deploy(**app)
    assert world.events.keys("get_record") == [PREFIXED_RECORD]
    assert [u.file.key for u in outcome.uploaded] == ["app/index.html"]
    assert set(world.cdn.calls[0][1]) == {"/app/", "/app/index.html", "/app/assets/app-3f2a9c1b.js"}
    assert world.events.keys("record") == [PREFIXED_RECORD]


def test_delete_only_deploy_rewrites_the_record_then_the_next_run_is_silent(
    world: World,
) -> None:
    """A deploy that only deletes still writes the record; the next no-change run then
    makes one LIST and nothing else: no record GET, no invalidation."""
    world.deploy()
    (world.site / "img/logo.png").unlink()
    outcome = world.deploy()
    assert outcome.uploaded == []
    assert world.events.writes() == [
        ("delete", "img/logo.png"),
        ("invalidate", "E2ABCDEF123456"),
        ("record", RECORD_BASENAME),
    ]
    entries, _ = record.decode(world.store.record_body or b"")
    assert sorted(entries) == sorted(k for k in SITE if k != "img/logo.png")
    calls = len(world.cdn.calls)
    outcome = world.deploy()
    assert world.events.kinds() == ["list"]
    assert len(world.cdn.calls) == calls
    assert outcome.invalidations == []


def test_partial_failure_still_invalidates_what_the_record_flags(world: World) -> None:
    """A failed run invalidates keys the record says changed since the last completed
    deploy (written by an earlier failed run), not only its own landed writes."""
    world.deploy()
    (world.site / "assets/app-3f2a9c1b.js").write_bytes(b"v2 app")
    (world.site / "index.html").write_bytes(b"<h1>v2</h1>")
    world.store.fail_keys = {"index.html"}
    world.deploy_raises(TransferError)  # the new app.js landed; the record is the old one
    (world.site / "assets/style-8d7e6f5a.css").write_bytes(b"body{color:teal}")
    world.store.fail_keys = {"assets/style-8d7e6f5a.css"}
    world.cdn.calls.clear()
    outcome, _ = world.deploy_raises(TransferError)
    assert outcome.plan is not None
    assert "assets/app-3f2a9c1b.js" not in {u.file.key for u in outcome.plan.uploads}
    # app.js: flagged by the record, served stale at the edge; style.css and index.html
    # did not land (failed, held back), so they are not invalidated.
    assert [paths for _, paths, _ in world.cdn.calls] == [("/assets/app-3f2a9c1b.js",)]


def test_written_but_answer_lost_then_rerun_invalidates_without_uploading(world: World) -> None:
    """S3 stored the asset but its answer was lost: the run fails and holds the HTML
    back; the rerun finds the bytes already there (no upload) and still invalidates."""
    world.deploy()
    (world.site / "assets/app-3f2a9c1b.js").write_bytes(b"v2 app")
    (world.site / "index.html").write_bytes(b"<h1>v2</h1>")
    world.store.lost_keys = {"assets/app-3f2a9c1b.js"}
    outcome, err = world.deploy_raises(TransferError)
    assert "assets/app-3f2a9c1b.js" in str(err)
    assert world.events.keys("put") == ["assets/app-3f2a9c1b.js"]  # it did land
    assert world.events.keys("record") == []
    assert world.cdn.calls == []  # nothing is known to have landed
    world.store.lost_keys = set()
    outcome = world.deploy()
    assert [u.file.key for u in outcome.uploaded] == ["index.html"]
    assert set(world.cdn.calls[-1][1]) == {"/", "/index.html", "/assets/app-3f2a9c1b.js"}
    assert world.deploy().uploaded == [] and world.events.kinds() == ["list"]


def test_max_delete_boundary_is_inclusive(world: World) -> None:
    """Exactly `max-delete` deletions go ahead; one more is refused before any write."""
    world.deploy()
    for rel in ("img/logo.png", "about/index.html"):
        (world.site / rel).unlink()
    world.deploy_raises(MaxDeleteExceeded, **{"max-delete": "1"})
    assert world.events.writes() == []
    outcome = world.deploy(**{"max-delete": "2"})
    assert sorted(outcome.deleted) == ["about/index.html", "img/logo.png"]


def test_object_another_tool_wrote_multipart_is_uploaded_once(world: World) -> None:
    """Same bytes, but written by another tool as multipart: its HEAD carries no MD5 of
    ours, so the content cannot be verified and it is uploaded, once."""
    for key, body in SITE.items():
        world.store.put_raw(key, body, multipart=key == "img/logo.png")
    outcome = world.deploy()
    assert "img/logo.png" in world.store.heads  # no record yet: HEAD for MD5 and headers
    reasons = {u.file.key: u.reason for u in outcome.uploaded}
    assert reasons["img/logo.png"] is Reason.UNVERIFIABLE
    assert world.events.keys("put") == ["img/logo.png"]  # the others' ETags are their MD5s
    outcome = world.deploy()
    assert outcome.uploaded == []
    assert world.events.kinds() == ["list"]


def test_header_copy_of_a_multipart_object_records_its_new_etag(world: World) -> None:
    """A copy gives a multipart object a new single-part ETag; the record holds that one,
    so the next run is one LIST (no record GET, no HEAD)."""
    world.store.multipart_keys = {"img/logo.png"}
    world.deploy()
    assert world.store.objects["img/logo.png"].etag.endswith("-3")
    rule = {"cache-control": "*.png: public, max-age=60"}
    world.deploy(**rule)
    assert world.events.keys("copy") == ["img/logo.png"]
    new_etag = world.store.objects["img/logo.png"].etag
    assert new_etag == hashlib.md5(SITE["img/logo.png"]).hexdigest()
    entries, _ = record.decode(world.store.record_body or b"")
    assert entries["img/logo.png"].etag == new_etag
    world.store.heads.clear()
    outcome = world.deploy(**rule)
    assert world.events.kinds() == ["list"]
    assert outcome.uploaded == [] and world.store.heads == []
