"""report: kept and pruned removed assets, and links to the site, in every channel."""

from __future__ import annotations

from dataclasses import replace

from deployer.model import Outcome, Reason, Retained
from deployer.report import outputs, sections, summary_line, summary_markdown
from tests.unit.test_report import make_plan, render, up

T = 1_800_000_000  # 2027-01-15 08:00 UTC
DAY = 86400


def kept_and_pruned(*, dry: bool = False, later: int = 0) -> Outcome:
    """v2 of a site: a new chunk and page, v1's chunks kept, one older chunk pruned."""
    plan = make_plan(
        (up("assets/app-2b3c4d5e.js"),),
        (up("index.html", Reason.CONTENT), up("about/index.html", Reason.CONTENT)),
        ("assets/app-00000000.js", "old.html"),
        unchanged=10,
        invalidate=("index.html", "old.html"),
    )
    retained = (
        Retained("assets/app-1a2b3c4d.js", T, T + 7 * DAY),
        Retained("assets/vendor-9f8e7d6c.js", T - DAY, T + 6 * DAY),
    )
    plan = replace(plan, retained=retained, pruned=("assets/app-00000000.js",), pruned_later=later)
    return Outcome(
        plan=plan,
        dry_run=dry,
        uploaded=[] if dry else list(plan.uploads),
        uploaded_bytes=0 if dry else 300,
        deleted=[] if dry else ["assets/app-00000000.js", "old.html"],
        duration_s=1.0,
        site_url="https://d111111abcdef8.cloudfront.net",
    )


def test_outputs_count_kept_and_pruned_and_give_the_site() -> None:
    """retained-count, pruned-count (among deleted-count) and site-url."""
    got = outputs(kept_and_pruned())
    assert got["retained-count"] == "2"
    assert got["pruned-count"] == "1"
    assert got["deleted-count"] == "2"
    assert got["site-url"] == "https://d111111abcdef8.cloudfront.net"
    failed = kept_and_pruned()
    failed.deleted = []  # the delete phase never ran: nothing was pruned
    assert outputs(failed)["pruned-count"] == "0"


def test_summary_line_says_how_many_are_kept_until_when() -> None:
    """The one line: pruned among the deleted, kept assets with their first and last date."""
    assert summary_line(kept_and_pruned()) == (
        "Uploaded 3 files (300 B), deleted 2 (1 pruned), kept 2 removed assets until "
        "2027-01-21 08:00 to 2027-01-22 08:00 UTC, unchanged 10, nothing invalidated "
        "in 1.0 s"
    )


def test_dry_run_shows_what_would_be_pruned() -> None:
    """A dry run names what it would prune and keep."""
    outcome = kept_and_pruned(dry=True)
    line = summary_line(outcome)
    assert "would upload 3 files (300 B), delete 2 (1 pruned), keep 2 removed assets" in line
    text = summary_markdown(outcome, bucket="b", prefix="", error=None)
    assert "| Would prune (grace period over, among the deleted) | 1 |" in text
    assert "- `assets/app-00000000.js` (kept for its grace period, now over)" in text
    assert "### Removed assets that would be kept for pages still open (2)" in text
    titles = [title for title, _ in sections(outcome)]
    assert "Would keep 2 removed assets for open pages" in titles


def test_markdown_lists_kept_assets_with_dates_and_links_pages() -> None:
    """Kept assets in a table with both dates; changed and deleted pages link to the site."""
    text = summary_markdown(kept_and_pruned(), bucket="b", prefix="", error=None)
    for row in (
        "| Kept for open pages (removed assets) | 2 |",
        "| Pruned (grace period over, among the deleted) | 1 |",
        "| `assets/app-1a2b3c4d.js` | 2027-01-15 08:00 UTC | 2027-01-22 08:00 UTC |",
        "| `assets/vendor-9f8e7d6c.js` | 2027-01-14 08:00 UTC | 2027-01-21 08:00 UTC |",
        "| [`index.html`](<https://d111111abcdef8.cloudfront.net/>) | content changed |",
        "[`about/index.html`](<https://d111111abcdef8.cloudfront.net/about/>)",
        "- [`old.html`](<https://d111111abcdef8.cloudfront.net/old.html>)",
        "| `assets/app-2b3c4d5e.js` | new |",  # not a page: no link
    ):
        assert row in text, row
    page = render(text)
    assert '<a href="https://d111111abcdef8.cloudfront.net/about/"><code>about/index.html' in page
    assert page.count("<table>") == 3  # counts, changed files, kept assets


def test_expired_assets_left_by_max_delete_are_explained() -> None:
    """Expired but not pruned (max-delete): the summary says why they are still there."""
    text = summary_markdown(kept_and_pruned(later=1), bucket="b", prefix="", error=None)
    assert "would exceed `max-delete`" in text


def test_nothing_kept_nothing_said() -> None:
    """Without retention the line and the summary are as before."""
    outcome = kept_and_pruned()
    assert outcome.plan is not None
    outcome.plan = replace(outcome.plan, retained=(), pruned=())
    assert "kept" not in summary_line(outcome) and "pruned" not in summary_line(outcome)
    assert "Removed assets" not in summary_markdown(outcome, bucket="b", prefix="", error=None)
