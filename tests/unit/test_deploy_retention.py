"""deploy.run with removed fingerprinted assets: kept, pruned, rolled back (in-memory fakes).

The wall clock is injected (`deploy.run(wall_clock=...)`), so a week passes in no time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployer import cdnstep, deploy, record
from deployer.errors import TransferError
from deployer.model import Outcome
from deployer.settings import RECORD_BASENAME
from tests.unit.test_deploy import SITE, Events, FakeCDN, FakeLog, FakeStore, make_settings

DAY = 86400
T0 = 1_800_000_000  # when v2 is deployed
V1_CHUNK, V2_CHUNK = "assets/app-3f2a9c1b.js", "assets/app-7e6d5c4b.js"
V1 = dict(SITE)
V2 = {k: v for k, v in SITE.items() if k != V1_CHUNK} | {
    V2_CHUNK: b"console.log('app v2')",
    "index.html": b"<h1>home</h1><script src=/assets/app-7e6d5c4b.js></script>",
    "img/new.png": b"\x89PNG new",
}
V2.pop("img/logo.png")  # an unhashed file: deleted at once, as before


class Site:
    def __init__(self, tmp_path: Path) -> None:
        self.workspace = tmp_path
        self.root = tmp_path / "site"
        self.events = Events()
        self.store = FakeStore(self.events)
        self.cdn = FakeCDN(self.events)
        self.log = FakeLog()

    def publish(self, files: dict[str, bytes]) -> None:
        for path in sorted(self.root.rglob("*"), reverse=True):
            if path.is_file():
                path.unlink()
        for rel, body in files.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)

    def deploy(self, files: dict[str, bytes], at: float, **inputs: str) -> Outcome:
        self.publish(files)
        outcome = Outcome()
        self.events.items.clear()
        settings = make_settings(self.workspace, **inputs)
        store: deploy.Store = self.store
        cdn: cdnstep.CDN = self.cdn
        if settings.dry_run:  # as `deploy.connect` wraps them
            store, cdn = deploy.DryRunStore(store), deploy.DryRunCDN(cdn)
        deploy.run(settings, store, cdn, self.log, outcome, wall_clock=lambda: at)
        return outcome

    def recorded(self) -> dict[str, dict[str, str]]:
        body = self.store.record_body or b"{}"
        objects: dict[str, dict[str, str]] = json.loads(body)["objects"]
        return objects

    def invalidated(self) -> set[str]:
        return {path for _, paths, _ in self.cdn.calls for path in paths}


@pytest.fixture
def site(tmp_path: Path) -> Site:
    s = Site(tmp_path)
    s.deploy(V1, T0 - DAY)
    return s


def test_v2_keeps_v1_chunk_uninvalidated_and_records_when_it_left(site: Site) -> None:
    """v1 -> v2: v1's chunk stays (not deleted, not invalidated); the unhashed file goes."""
    outcome = site.deploy(V2, T0)
    assert V1_CHUNK in site.store.objects
    assert site.events.keys("delete") == ["img/logo.png"]
    assert "/assets/app-3f2a9c1b.js" not in site.invalidated()
    assert "/img/logo.png" in site.invalidated()
    assert outcome.plan is not None
    assert [(r.key, r.removed_at, r.expires_at) for r in outcome.plan.retained] == [
        (V1_CHUNK, T0, T0 + 7 * DAY)
    ]
    assert site.recorded()[V1_CHUNK]["removed_at"] == record.format_time(T0)
    assert "removed_at" not in site.recorded()[V2_CHUNK]
    assert outcome.site_url == site.cdn.site_url  # from the same lookup as the origin


def test_a_deploy_within_the_window_keeps_the_first_time(site: Site) -> None:
    """Deploys during the grace period keep counting from when the chunk left."""
    site.deploy(V2, T0)
    again = V2 | {"about/index.html": b"<h1>about v3</h1>"}
    outcome = site.deploy(again, T0 + 3 * DAY)
    assert outcome.plan is not None and outcome.plan.retained[0].removed_at == T0
    assert site.recorded()[V1_CHUNK]["removed_at"] == record.format_time(T0)
    assert V1_CHUNK in site.store.objects


def test_after_the_grace_period_exactly_the_old_chunk_is_pruned(site: Site) -> None:
    """The first deploy after T0 + 7 d deletes v1's chunk, after every upload, without an
    invalidation; nothing else is deleted and the record forgets it."""
    site.deploy(V2, T0)
    v3 = V2 | {"index.html": b"<h1>v3</h1><script src=/assets/app-7e6d5c4b.js></script>"}
    outcome = site.deploy(v3, T0 + 7 * DAY)
    assert site.events.keys("delete") == [V1_CHUNK]
    kinds = site.events.kinds()
    assert kinds.index("delete") > max(i for i, k in enumerate(kinds) if k == "put")
    assert outcome.plan is not None and outcome.plan.pruned == (V1_CHUNK,)
    assert "/assets/app-3f2a9c1b.js" not in site.invalidated()
    assert V1_CHUNK not in site.store.objects and V1_CHUNK not in site.recorded()


def test_rollback_within_the_window_uploads_only_the_entry_file(site: Site) -> None:
    """Back to v1 a day later: only index.html (and the unhashed logo) are uploaded; v1's
    chunk is unchanged; v2's chunk is now the retained one; only v2's unhashed image is
    deleted."""
    site.deploy(V2, T0)
    outcome = site.deploy(V1, T0 + DAY)
    assert sorted(site.events.keys("put")) == ["img/logo.png", "index.html"]
    assert site.events.keys("delete") == ["img/new.png"]
    assert outcome.plan is not None
    assert [r.key for r in outcome.plan.retained] == [V2_CHUNK]
    assert "removed_at" not in site.recorded()[V1_CHUNK]
    assert site.recorded()[V2_CHUNK]["removed_at"] == record.format_time(T0 + DAY)
    assert site.store.heads == []


def test_keep_zero_deletes_and_invalidates_at_once(site: Site) -> None:
    """`keep-removed-assets: 0` is today's behaviour: the chunk is deleted and invalidated."""
    outcome = site.deploy(V2, T0, **{"keep-removed-assets": "0"})
    assert sorted(site.events.keys("delete")) == ["assets/app-3f2a9c1b.js", "img/logo.png"]
    assert "/assets/app-3f2a9c1b.js" in site.invalidated()
    assert outcome.plan is not None and outcome.plan.retained == () and outcome.plan.pruned == ()
    assert all("removed_at" not in entry for entry in site.recorded().values())


def test_dry_run_shows_what_would_be_pruned(site: Site) -> None:
    """A dry run after the window plans the prune and deletes nothing."""
    site.deploy(V2, T0)
    outcome = site.deploy(V2, T0 + 8 * DAY, **{"dry-run": "true"})
    assert outcome.plan is not None and outcome.plan.pruned == (V1_CHUNK,)
    assert site.events.writes() == []
    assert V1_CHUNK in site.store.objects


def test_prunes_never_push_a_deploy_over_max_delete(site: Site) -> None:
    """An expired chunk waits for a deploy with room under max-delete; the deploy goes on."""
    site.deploy(V2, T0)
    v3 = {k: v for k, v in V2.items() if k != "img/new.png"}
    outcome = site.deploy(v3, T0 + 8 * DAY, **{"max-delete": "1"})
    assert site.events.keys("delete") == ["img/new.png"]
    assert outcome.plan is not None and outcome.plan.pruned_later == 1
    assert site.recorded()[V1_CHUNK]["removed_at"] == record.format_time(T0)
    site.deploy(v3, T0 + 9 * DAY, **{"max-delete": "1"})
    assert site.events.keys("delete") == [V1_CHUNK]


def test_a_failed_run_loses_no_retention_state(site: Site) -> None:
    """A run that fails part-way writes no record: the chunk kept at T0 is still dated T0,
    and nothing is pruned early by the runs that follow."""
    site.deploy(V2, T0)
    v3 = V2 | {"assets/app-0a1b2c3d.js": b"v3"}
    v3.pop(V2_CHUNK)
    site.store.fail_keys = {"assets/app-0a1b2c3d.js"}
    with pytest.raises(TransferError):
        site.deploy(v3, T0 + 2 * DAY)
    assert site.recorded()[V1_CHUNK]["removed_at"] == record.format_time(T0)
    site.store.fail_keys = set()
    site.deploy(v3, T0 + 3 * DAY)
    assert site.recorded()[V1_CHUNK]["removed_at"] == record.format_time(T0)
    assert site.recorded()[V2_CHUNK]["removed_at"] == record.format_time(T0 + 3 * DAY)
    site.deploy(v3, T0 + 7 * DAY)  # v1's week is over, v2's is not
    assert site.events.keys("delete") == [V1_CHUNK]
    assert V2_CHUNK in site.store.objects


def test_a_version_1_record_is_read_without_heads_or_uploads(site: Site) -> None:
    """The previous release's record (version 1): read with one GET, nothing HEADed or
    uploaded, then rewritten once as version 2."""
    body = site.store.record_body or b""
    site.store.record_body = body.replace(b'{"version":2,', b'{"version":1,', 1)
    site.deploy(V1, T0)
    assert site.events.kinds() == ["list", "get_record", "record"]
    assert site.store.heads == []
    assert json.loads(site.store.record_body or b"")["version"] == 2
    site.deploy(V1, T0 + 1)
    assert site.events.kinds() == ["list"]


def test_the_record_is_not_rewritten_while_nothing_changes(site: Site) -> None:
    """With a chunk retained, a no-change deploy reads the record and writes nothing."""
    site.deploy(V2, T0)
    site.deploy(V2, T0 + DAY)
    assert site.events.writes() == []
    assert RECORD_BASENAME in site.store.objects
