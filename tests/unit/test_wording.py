"""What the log and the summary say: refused and failed deploys list what was not done,
advice fits the failure, plurals, dry-run verbs, first deploys, progress while waiting."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer import progress as progress_lines
from deployer.errors import DeployError, MaxDeleteExceeded, TransferError
from deployer.model import Outcome
from deployer.report import summary_markdown
from deployer.retries import Retries
from tests.unit.test_deploy import World
from tests.unit.test_report import make_plan, render, up


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_too_many_deletions_lists_them_folded_and_never_zero_files() -> None:
    """A max-delete refusal lists the objects it would delete (folded past 20 rows) and
    does not claim that "all 0 files" are up to date."""
    keys = tuple(f"old/page-{i:02}.html" for i in range(25))
    outcome = Outcome(plan=make_plan((up("new.js"),), (), keys), distribution_ids=("E1",))
    text = summary_markdown(outcome, bucket="b", prefix="", error=MaxDeleteExceeded(25, 10))
    assert "### Objects this deploy would delete (25)" in text
    assert "Refused by `max-delete`: nothing was deleted." in text
    assert "<details>\n<summary>25 objects</summary>" in text
    assert "`old/page-24.html`" in text
    assert "### Files this deploy would upload (1)" in text
    assert "all 0 files" not in text
    assert "\n\nNothing was written.\n" in text
    assert "Nothing to upload" not in text
    page = render(text)
    details = page[page.index("<details>") : page.index("</details>")]
    assert details.count("<li>") == 25


def test_too_many_deletions_in_a_real_run(world: World) -> None:
    """End to end over the fakes: the refusal's summary names the object, in the singular."""
    world.deploy()
    (world.site / "img/logo.png").unlink()
    outcome, err = world.deploy_raises(MaxDeleteExceeded, **{"max-delete": "0"})
    assert "would delete 1 object," in err.message
    text = summary_markdown(outcome, bucket="my-site", prefix="", error=err)
    assert "### Objects this deploy would delete (1)\n" in text
    assert "- `img/logo.png`" in text
    assert "Nothing to upload: all 4 files are already up to date." in text


def test_server_errors_are_not_blamed_on_the_bucket_policy() -> None:
    """After a 5xx the advice is to re-run; after a denial it is the policy; both when both."""
    server = TransferError([("app.js", "InternalError after retries")]).message
    assert server.startswith("1 file could not be written: `app.js`")
    assert "usually temporary" in server
    assert "policy" not in server and "s3:PutObject" not in server
    denied = TransferError([("app.js", "access denied"), ("b.js", "access denied")]).message
    assert denied.startswith("2 files could not be written")
    assert "s3:PutObject" in denied and "usually temporary" not in denied
    both = TransferError([("a.js", "access denied"), ("b.js", "HTTP 503 after retries")])
    assert "s3:PutObject" in both.message and "usually temporary" in both.message
    local = TransferError([("a.js", "unreadable: No such file or directory")]).message
    assert "build before deploying" in local and "policy" not in local


def test_held_back_entry_files_are_named(world: World) -> None:
    """An asset that fails: the warning and the summary name the HTML files held back."""
    world.deploy()
    (world.site / "assets/app-3f2a9c1b.js").write_bytes(b"console.log('v2')")
    (world.site / "index.html").write_bytes(b"<h1>v2</h1>")
    world.store.fail_keys = {"assets/app-3f2a9c1b.js"}
    outcome, err = world.deploy_raises(TransferError)
    held = [text for text, title in world.log.warnings if title == "Entry files held back"]
    assert held == [
        "1 HTML or entry file was not uploaded (`index.html`) because some assets failed: "
        "the live pages keep referring to assets that exist."
    ]
    text = summary_markdown(outcome, bucket="my-site", prefix="", error=err)
    assert "### Held back: not uploaded (1)" in text
    assert "- `index.html`" in text


def test_first_deploy_says_why_nothing_was_invalidated(world: World) -> None:
    """New paths were never cached: the summary says so instead of a bare "Nothing"."""
    outcome = world.deploy()
    assert outcome.invalidations == []
    text = summary_markdown(outcome, bucket="my-site", prefix="", error=None)
    assert (
        "Nothing to invalidate: every file uploaded is new here, so CloudFront has never "
        "cached it" in text
    )
    again = world.deploy()
    text = summary_markdown(again, bucket="my-site", prefix="", error=None)
    assert "Nothing changed, so nothing to invalidate." in text
    none = world.deploy(invalidation="none")
    assert "Skipped (`invalidation: none`)." in summary_markdown(
        none, bucket="my-site", prefix="", error=None
    )


def test_log_lines_use_the_singular_for_one(world: World) -> None:
    """ "Deleting 1 object", "1 file", "Listed 1 object": no "1 objects" anywhere."""
    (world.site / "about").rename(world.workspace / "about-gone")
    for rel in ("index.html", "assets/style-8d7e6f5a.css", "img/logo.png"):
        (world.site / rel).unlink()
    world.deploy()  # one file left: assets/app-3f2a9c1b.js
    world.store.put_raw("stale.txt", b"x")
    world.log.lines.clear()
    world.deploy()
    assert "Deleting 1 object" in world.log.lines
    assert any(line.startswith("Listed 3 objects") for line in world.log.lines)
    assert any(line.startswith("Found 1 file ") for line in world.log.lines)
    assert not any(" 1 objects" in line or " 1 files" in line for line in world.log.lines)


def test_dry_run_logs_say_would(world: World) -> None:
    """A dry run says "Would upload" and "Would delete"; never "Uploading"/"Deleting"."""
    world.deploy()
    (world.site / "assets/app-3f2a9c1b.js").write_bytes(b"console.log('v2')")
    (world.site / "img/logo.png").unlink()
    world.log.lines.clear()
    world.deploy(**{"dry-run": "true"})
    assert "Would upload assets: 1 file" in world.log.lines
    assert "Would delete 1 object" in world.log.lines
    assert not any(line.startswith(("Uploading", "Deleting")) for line in world.log.lines)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def progress(self, msg: str, /) -> None:
        self.lines.append(msg)


def test_progress_does_not_repeat_itself_while_requests_wait() -> None:
    """Two minutes of retries print a few lines that say what is going on, not ~60 copies."""
    clock, log, retries = _Clock(), _Lines(), Retries()
    progress = progress_lines.Progress(
        log,
        "Uploading assets",
        10,
        clock,
        retries=retries,
    )
    clock.now = 2.0
    progress.step(size=1000)
    assert log.lines == ["Uploading assets: 1/10 (10%), 1.0 KB"]
    for second in range(60):  # every 2 s for 120 s, nothing finishes; S3 answers 500
        clock.now += 2.0
        retries.note("InternalError (HTTP 500)")
        if second % 10 == 0:
            retries.note("timed out")
        progress.tick()
    assert len(log.lines) == 5  # the first line, then one every 30 s
    assert log.lines[1] == (
        "Uploading assets: 1/10 (10%), 1.0 KB; nothing finished for 30 s; retried 17 "
        "requests: InternalError (HTTP 500) x15, timed out x2"
    )
    assert "nothing finished for 120 s" in log.lines[-1]
    clock.now += 2.0
    progress.step(size=1000)
    assert log.lines[-1] == "Uploading assets: 2/10 (20%), 2.0 KB"


def test_progress_says_when_the_window_backs_off() -> None:
    """Throttled: the line says the requests in flight were cut, with the retries' reason."""
    clock, log, retries = _Clock(), _Lines(), Retries()
    window = [32]
    progress = progress_lines.Progress(
        log,
        "Uploading assets",
        100,
        clock,
        retries=retries,
        limit=lambda: window[0],
    )
    clock.now = 2.0
    retries.note("SlowDown (HTTP 503)")
    window[0] = 16
    progress.step()
    assert log.lines == [
        "Uploading assets: 1/100 (1%); retried 1 request: SlowDown (HTTP 503) x1; requests "
        "in flight cut from 32 to 16"
    ]
    clock.now = 4.0
    progress.step()
    assert log.lines[-1] == "Uploading assets: 2/100 (2%)"


def test_interrupted_deploy_does_not_blame_failed_files() -> None:
    """Stopped part-way with no failure: the files not sent are "Not uploaded" because the
    deploy stopped, not "held back because other files failed"."""
    plan = make_plan((up("a.js"), up("b.js")), (up("index.html"),))
    outcome = Outcome(plan=plan, uploaded=[plan.assets[0]], uploaded_bytes=100)
    err = DeployError("The deploy was interrupted.", title="Interrupted")
    text = summary_markdown(outcome, bucket="b", prefix="", error=err)
    assert "### Not uploaded (2)\n\nThe deploy stopped before these files were sent." in text
    assert "failed first" not in text
