"""report: contract outputs, the summary line, the Markdown job summary and the terminal report."""

from __future__ import annotations

import html
import json
import re

import pytest
from markdown_it import MarkdownIt

from deployer.errors import ConfigError, DeployError, InputProblem, RemoteError, TransferError
from deployer.interface import OUTPUTS
from deployer.model import (
    Headers,
    InvalidationResult,
    LocalFile,
    Outcome,
    Plan,
    Reason,
    Upload,
)
from deployer.report import (
    SUMMARY_BUDGET,
    changed_keys,
    format_bytes,
    format_duration,
    outputs,
    sections,
    summary_line,
    summary_markdown,
    terminal_report,
)

HTML = Headers("text/html; charset=utf-8", "no-cache")
JS = Headers("text/javascript; charset=utf-8", "public, max-age=31536000, immutable")


def lf(key: str, size: int = 100, headers: Headers = JS) -> LocalFile:
    return LocalFile(key=key, where=f"/src/{key}", size=size, md5="0" * 32, headers=headers)


def up(key: str, reason: Reason = Reason.NEW, size: int = 100) -> Upload:
    headers = HTML if key.endswith(".html") else JS
    return Upload(lf(key, size, headers), reason)


def make_plan(
    assets: tuple[Upload, ...] = (),
    entries: tuple[Upload, ...] = (),
    deletes: tuple[str, ...] = (),
    unchanged: int = 0,
    invalidate: tuple[str, ...] = (),
) -> Plan:
    return Plan(
        assets=assets,
        entries=entries,
        deletes=deletes,
        unchanged=tuple(lf(f"same/{i}.js") for i in range(unchanged)),
        invalidate_keys=invalidate,
    )


def deployed() -> Outcome:
    """A typical incremental deploy: 2 new assets, a changed page, a header fix, a deletion."""
    assets = (up("assets/app-1a2b3c4d.js", size=12_000), up("assets/app-9z8y7x6w.css", size=300))
    entries = (
        up("index.html", Reason.CONTENT, size=100),
        up("robots.txt", Reason.HEADERS, size=40),
    )
    plan = make_plan(assets, entries, ("old.html",), unchanged=120, invalidate=("index.html",))
    return Outcome(
        plan=plan,
        uploaded=list(assets + entries),
        uploaded_bytes=12_400,
        deleted=["old.html"],
        invalidation_paths=("/index.html", "/", "/old.html", "/robots.txt"),
        invalidations=[
            InvalidationResult(
                "E2ABCDEF123456",
                "I2J3K4L5M6N7O8",
                ("/index.html", "/", "/old.html", "/robots.txt"),
                "InProgress",
            )
        ],
        duration_s=1.84,
    )


def render(markdown: str) -> str:
    """Render like GitHub: CommonMark with tables and raw HTML blocks."""
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    return str(md.render(markdown))


# -- outputs ---------------------------------------------------------------------------------


def test_outputs_are_exactly_the_contract() -> None:
    """outputs() returns every contract output name and nothing else, as strings."""
    got = outputs(deployed())
    assert list(got) == [spec.name for spec in OUTPUTS]
    assert got == {
        "uploaded-count": "4",
        "deleted-count": "1",
        "unchanged-count": "120",
        "uploaded-bytes": "12400",
        "invalidation-id": "I2J3K4L5M6N7O8",
        "invalidation-paths": '["/index.html", "/", "/old.html", "/robots.txt"]',
        "changed-keys": json.dumps(
            [
                "assets/app-1a2b3c4d.js",
                "assets/app-9z8y7x6w.css",
                "index.html",
                "old.html",
                "robots.txt",
            ]
        ),
        "retained-count": "0",
        "pruned-count": "0",
        "site-url": "",
    }


def test_outputs_several_distributions_and_unicode() -> None:
    """IDs are comma-separated; JSON lists keep Korean names readable and parse back."""
    outcome = Outcome(
        plan=make_plan((up("docs/안내 문서.txt"),)),
        uploaded=[up("docs/안내 문서.txt")],
        invalidation_paths=("/docs/%EC%95%88*",),
        invalidations=[
            InvalidationResult("E1AAAAAAAAAA", "I1", ("/docs/%EC%95%88*",), "Completed"),
            InvalidationResult("E2BBBBBBBBBB", "I2", ("/docs/%EC%95%88*",), "InProgress"),
        ],
    )
    got = outputs(outcome)
    assert got["invalidation-id"] == "I1,I2"
    assert json.loads(got["changed-keys"]) == ["docs/안내 문서.txt"]
    assert "안내" in got["changed-keys"]
    assert json.loads(got["invalidation-paths"]) == ["/docs/%EC%95%88*"]


def test_outputs_before_any_plan() -> None:
    """A failure before planning still yields every output, all empty or zero."""
    assert outputs(Outcome()) == {
        "uploaded-count": "0",
        "deleted-count": "0",
        "unchanged-count": "0",
        "uploaded-bytes": "0",
        "invalidation-id": "",
        "invalidation-paths": "[]",
        "changed-keys": "[]",
        "retained-count": "0",
        "pruned-count": "0",
        "site-url": "",
    }


def test_outputs_dry_run_come_from_the_plan() -> None:
    """In a dry run the counts are what would happen; no invalidation ID is reported."""
    plan = make_plan(
        (up("a.js", size=1000), up("b.css", Reason.HEADERS, size=50)),
        (up("index.html", Reason.CONTENT, size=10),),
        ("gone.png",),
        unchanged=3,
    )
    outcome = Outcome(
        plan=plan,
        dry_run=True,
        invalidation_paths=("/index.html", "/", "/gone.png"),
        invalidations=[InvalidationResult("E2ABCDEF123456", "DRYRUN", (), "dry-run")],
    )
    got = outputs(outcome)
    assert got["uploaded-count"] == "3"
    assert got["uploaded-bytes"] == "1010"  # the header-only copy sends no bytes
    assert got["deleted-count"] == "1"
    assert got["unchanged-count"] == "3"
    assert got["invalidation-id"] == ""
    assert json.loads(got["changed-keys"]) == ["a.js", "b.css", "gone.png", "index.html"]
    assert changed_keys(outcome) == ["a.js", "b.css", "gone.png", "index.html"]


# -- formatting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 KB"),
        (12_400, "12.4 KB"),
        (999_949, "999.9 KB"),
        (999_999, "1.0 MB"),
        (3_000_000, "3.0 MB"),
        (5 * 10**12, "5.0 TB"),
    ],
)
def test_format_bytes(n: int, text: str) -> None:
    """Decimal units with one decimal, switching unit before `1000.0`."""
    assert format_bytes(n) == text


@pytest.mark.parametrize(
    ("s", "text"),
    [(0.0, "0.0 s"), (1.84, "1.8 s"), (59.9, "59.9 s"), (59.97, "1 min 0 s"),
     (125.4, "2 min 5 s"), (3725, "1 h 2 min")],
)  # fmt: skip
def test_format_duration(s: float, text: str) -> None:
    """Seconds with one decimal under a minute, then minutes and hours."""
    assert format_duration(s) == text


# -- summary line ----------------------------------------------------------------------------


def test_summary_line_success() -> None:
    """The exact one-line summary of a normal deploy."""
    assert summary_line(deployed()) == (
        "Uploaded 4 files (12.4 KB; 1 header-only update), deleted 1, unchanged 120, "
        "invalidated 4 paths on E2ABCDEF123456 in 1.8 s"
    )


def test_summary_line_nothing_changed() -> None:
    """A no-op deploy (e.g. after a fresh checkout) says so plainly."""
    outcome = Outcome(plan=make_plan(unchanged=1), duration_s=0.42)
    assert summary_line(outcome) == (
        "Uploaded 0 files, deleted 0, unchanged 1, nothing invalidated in 0.4 s"
    )


def test_summary_line_failures_and_missing_invalidation() -> None:
    """Failed files are counted; planned paths that were not invalidated are called out."""
    outcome = Outcome(
        plan=make_plan((up("a.js"), up("b.js")), unchanged=2),
        uploaded=[up("a.js", size=2048)],
        uploaded_bytes=2048,
        failed=[("b.js", "AccessDenied")],
        invalidation_paths=("/a.js",),
        duration_s=3.0,
    )
    assert summary_line(outcome) == (
        "Uploaded 1 file (2.0 KB), 1 failed, deleted 0, unchanged 2, "
        "1 path not invalidated in 3.0 s"
    )


def test_summary_line_several_distributions() -> None:
    """Every distribution ID is named."""
    outcome = deployed()
    outcome.invalidations.append(
        InvalidationResult("E9ZZZZZZZZZZ", "I9", outcome.invalidation_paths, "InProgress")
    )
    assert "invalidated 4 paths on E2ABCDEF123456, E9ZZZZZZZZZZ in 1.8 s" in summary_line(outcome)


def test_summary_line_dry_run() -> None:
    """A dry run says nothing was written and what would happen."""
    plan = make_plan((up("a.js", size=12_400),), (), ("gone.html",), unchanged=120)
    outcome = Outcome(plan=plan, dry_run=True, invalidation_paths=("/gone.html",), duration_s=0.4)
    assert summary_line(outcome) == (
        "Dry run, nothing written: would upload 1 file (12.4 KB), delete 1, "
        "leave 120 unchanged and invalidate 1 path; planned in 0.4 s"
    )
    empty = Outcome(plan=make_plan(unchanged=5), dry_run=True, duration_s=0.1)
    assert summary_line(empty) == (
        "Dry run, nothing written: would upload 0 files, delete 0, "
        "leave 5 unchanged and invalidate nothing; planned in 0.1 s"
    )


# -- Markdown summary ------------------------------------------------------------------------


def test_summary_markdown_success_sections() -> None:
    """Title, counts table, changed files with reasons, deletion, invalidation and paths."""
    text = summary_markdown(deployed(), bucket="my-site", prefix="app/", error=None)
    assert text.startswith("## ✅ Deployed to `s3://my-site/app/`\n")
    for row in (
        "| Uploaded (new or changed content) | 3 |",
        "| Updated headers only (no bytes sent) | 1 |",
        "| Deleted | 1 |",
        "| Unchanged | 120 |",
        "| Bytes sent | 12.4 KB (12,400 B) |",
        "| Duration | 1.8 s |",
        "| `assets/app-1a2b3c4d.js` | new | 12.0 KB |",
        "| `index.html` | content changed | 100 B |",
        "| `robots.txt` | headers changed | headers only |",
        "| `E2ABCDEF123456` | `I2J3K4L5M6N7O8` | InProgress | 4 |",
        "- `old.html`",
        "- `/`",
    ):
        assert row in text, row
    assert "<details>" not in text
    assert "Failed" not in text
    page = render(text)
    assert page.count("<table>") == 3  # counts, files, invalidation


def test_summary_markdown_folds_long_lists() -> None:
    """More than 20 rows go inside <details>, and the table still renders inside it."""
    uploads = tuple(up(f"assets/chunk-{i:03}.js") for i in range(25))
    outcome = Outcome(plan=make_plan(uploads), uploaded=list(uploads), uploaded_bytes=2500)
    text = summary_markdown(outcome, bucket="b", prefix="", error=None)
    assert "<details>\n<summary>25 files</summary>\n\n| File | Reason | Size |" in text
    page = render(text)
    details = page[page.index("<details>") : page.index("</details>")]
    assert details.count("<tr>") == 26  # header + 25 rows
    assert "<code>assets/chunk-024.js</code>" in details


def test_summary_markdown_nothing_changed() -> None:
    """With nothing to do the summary says everything is up to date."""
    text = summary_markdown(Outcome(plan=make_plan(unchanged=7)), bucket="b", prefix="", error=None)
    assert "Nothing to upload: all 7 files are already up to date." in text
    assert "| Bytes sent | 0 B |" in text
    assert "Not used: no `distribution-id` was given." in text


def test_summary_markdown_failure_section() -> None:
    """On failure: failed status, the error's title and message, failed files by name,
    and `landed of planned` counts."""
    uploads = tuple(up(f"f{i}.js") for i in range(4))
    outcome = Outcome(
        plan=make_plan(uploads, (), ("x.html",), unchanged=1),
        uploaded=list(uploads[:2]),
        uploaded_bytes=200,
        failed=[("f2.js", "AccessDenied"), ("f3.js", "SlowDown <after 5 tries>")],
    )
    error = TransferError(outcome.failed)
    text = summary_markdown(outcome, bucket="b", prefix="", error=error)
    assert text.startswith("## ❌ Deploy to `s3://b/` failed\n")
    assert "### Some files failed to upload" in text
    assert "2 files could not be written: `f2.js` (AccessDenied)" in text
    assert "| `f2.js` | AccessDenied |" in text
    assert "| `f3.js` | SlowDown &lt;after 5 tries&gt; |" in text
    assert "| Uploaded (new or changed content) | 2 of 4 |" in text
    assert "| Deleted | 0 of 1 |" in text
    assert "| Failed | 2 |" in text
    assert "<after" not in render(text)


def test_summary_markdown_config_error_lists_each_problem() -> None:
    """A multi-problem error is one bullet per problem; no plan means no file sections."""
    error = ConfigError(
        [InputProblem("bucket", "is required"), InputProblem("max-delete", "`x` is not a number")]
    )
    text = summary_markdown(Outcome(), bucket="", prefix="", error=error)
    assert text.startswith("## ❌ Deploy failed\n\nNothing was written.\n")
    assert "### 2 invalid inputs" in text
    assert "| Result |" not in text and "invalidation" not in text.lower()
    assert "- `bucket`: is required\n- `max-delete`: `x` is not a number" in text
    assert "Changed files" not in text


def test_summary_markdown_dry_run() -> None:
    """A dry run is titled as such and lists what would change."""
    plan = make_plan((up("a.js"),), (), ("gone.html",), unchanged=2)
    outcome = Outcome(plan=plan, dry_run=True, invalidation_paths=("/gone.html",))
    text = summary_markdown(outcome, bucket="b", prefix="", error=None)
    assert text.startswith("## 🔎 Dry run of a deploy to `s3://b/`: nothing was written\n")
    assert "### Files that would change (1)" in text
    assert "### Objects to delete (1)" in text
    assert "| Would upload (new or changed content) | 1 |" in text
    assert "| Would delete | 1 |" in text
    assert "Would invalidate 1 path:" in text


def test_summary_markdown_warnings() -> None:
    """Warnings are listed; HTML in them is neutralised, code spans are kept."""
    outcome = deployed()
    outcome.warnings = ["Skipped `link` <outside>: points outside `source-dir`"]
    text = summary_markdown(outcome, bucket="b", prefix="", error=None)
    assert "### ⚠️ Warnings (1)" in text
    assert "- Skipped `link` &lt;outside&gt;: points outside `source-dir`" in text


HOSTILE_KEYS = [
    "a|b.html",
    "<script>alert(1)</script>.html",
    "x`y``z.txt",
    "`tick.txt",
    "  spaced  .txt",
    "line\nbreak.txt",
    "back\\slash|pipe.txt",
    "**bold** _it_ [link](http://x) #h.txt",
    "docs/안내 문서.txt",
    "&amp;.txt",
]


def test_hostile_keys_render_as_themselves() -> None:
    """Keys with |, <, backticks, newlines and Markdown render verbatim, one row each."""
    uploads = tuple(up(k) for k in HOSTILE_KEYS)
    outcome = Outcome(
        plan=make_plan(uploads, (), tuple(HOSTILE_KEYS)),
        uploaded=list(uploads),
        deleted=list(HOSTILE_KEYS),
        invalidation_paths=tuple(f"/{k}" for k in HOSTILE_KEYS),
    )
    text = summary_markdown(outcome, bucket="b", prefix="", error=None)
    page = render(text)
    assert "<script>" not in page
    codes = [html.unescape(c) for c in re.findall(r"<code>(.*?)</code>", page, flags=re.S)]
    for key in HOSTILE_KEYS:
        shown = key.replace("\n", "\\n")
        assert codes.count(shown) == 2, key  # once in the files table, once in deletions
        assert f"/{shown}" in codes, key
    table = page[page.index("<th>File</th>") :]
    table = table[: table.index("</table>")]
    rows = table.split("<tr>")[1:]  # the header row's <tr> is before the slice
    assert len(rows) == len(HOSTILE_KEYS)
    assert all(row.count("<td>") == 3 for row in rows)


def test_summary_under_one_mib_with_100k_long_keys() -> None:
    """100,000 uploads, deletions, failures, paths and warnings with long multi-byte keys
    still give a summary under 1 MiB, with `... and N more` rows."""
    n = 100_000
    long = "가나다라마바사" * 40  # 840 bytes of UTF-8
    uploads = tuple(up(f"{long}/{i:06}.js", size=1000) for i in range(n))
    deletes = tuple(f"{long}/old-{i:06}.js" for i in range(n))
    outcome = Outcome(
        plan=make_plan(uploads, (), deletes, unchanged=10),
        uploaded=list(uploads[: n // 2]),
        uploaded_bytes=1000 * n // 2,
        deleted=list(deletes),
        failed=[(u.file.key, "InternalError " + long) for u in uploads[n // 2 :]],
        invalidation_paths=tuple(f"/{long}/{i}" for i in range(n)),
        warnings=[f"warning {i} {long}" for i in range(n)],
    )
    error = RemoteError("x " * 300_000)
    text = summary_markdown(outcome, bucket="b", prefix="p/", error=error)
    size = len(text.encode("utf-8"))
    assert size <= SUMMARY_BUDGET < 1024 * 1024
    assert "_... and " in text
    assert re.search(r"\| _\.\.\. and [\d,]+ more_ \| \|\n", text)  # failed-files table
    assert "Updated headers only" in text and "| Failed | 50,000 |" in text


def test_summary_few_keys_lists_all_without_more_rows() -> None:
    """Below the limits nothing is cut."""
    text = summary_markdown(deployed(), bucket="b", prefix="", error=None)
    assert "more_" not in text


# -- terminal --------------------------------------------------------------------------------


def test_terminal_report_reads_plainly() -> None:
    """Sections with indented lines and no Markdown; nothing at all when nothing changed."""
    outcome = deployed()
    outcome.warnings = ["Skipped `.env` (never published)"]
    assert terminal_report(outcome) == (
        "Uploaded 4 files:\n"
        "  + assets/app-1a2b3c4d.js (new, 12.0 KB)\n"
        "  + assets/app-9z8y7x6w.css (new, 300 B)\n"
        "  + index.html (content changed, 100 B)\n"
        "  ~ robots.txt (headers changed, headers only)\n"
        "Deleted 1 object:\n"
        "  - old.html\n"
        "Invalidated 4 paths:\n"
        "  E2ABCDEF123456: I2J3K4L5M6N7O8 (InProgress)\n"
        "    /index.html\n"
        "    /\n"
        "    /old.html\n"
        "    /robots.txt\n"
        "1 warning:\n"
        "  Skipped `.env` (never published)\n"
    )
    assert terminal_report(Outcome(plan=make_plan(unchanged=3))) == ""


def test_terminal_report_caps_lists_and_hides_control_characters() -> None:
    """Long lists end with `... and N more`; an escape sequence in a name is shown, not run."""
    deletes = (*(f"old/{i}.js" for i in range(250)), "evil\x1b[2J.txt")
    outcome = Outcome(plan=make_plan((), (), deletes), deleted=list(deletes), failed=[("k", "x")])
    text = terminal_report(outcome, limit=10)
    assert "\x1b" not in text
    assert "  ... and 241 more\n" in text
    assert "Failed 1 file:\n  ! k: x\n" in text
    titles = [title for title, _ in sections(outcome)]
    assert titles == ["Failed 1 file", "Deleted 251 objects"]
    full = sections(outcome, limit=1000)[1][1]
    assert "- evil\\x1b[2J.txt" in full


def test_terminal_report_dry_run() -> None:
    """A dry run uses `Would ...` headings."""
    plan = make_plan((up("a.js"),), (), ("gone.html",), unchanged=2)
    outcome = Outcome(plan=plan, dry_run=True, invalidation_paths=("/gone.html",))
    text = terminal_report(outcome)
    assert "Would upload 1 file:\n  + a.js (new, 100 B)\n" in text
    assert "Would delete 1 object:\n  - gone.html\n" in text
    assert "Would invalidate 1 path:\n    /gone.html\n" in text


def test_error_yaml_fix_is_a_copyable_code_block() -> None:
    """An indented YAML fix in an error message renders as a fenced block, not bullets."""
    err = DeployError(
        "The job cannot request a GitHub OIDC token. Add to the workflow:\n"
        "    permissions:\n      id-token: write\n"
        "Then re-run."
    )
    md = summary_markdown(Outcome(), bucket="b", prefix="", error=err)
    assert "```yaml\npermissions:\n  id-token: write\n```" in md
    assert "\n\nThen re-run." in md  # a paragraph after the block, not a bullet
