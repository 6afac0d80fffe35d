"""Turn an `Outcome` into the step outputs, one summary line, the job summary and a terminal report.

Pure: no I/O. `github.Runner` writes what these functions return.

Counts come from what actually happened (`Outcome.uploaded`, `Outcome.deleted`),
except in a dry run, where nothing happens and they come from the plan (what
would happen); a dry run never reports an invalidation ID.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from deployer.errors import DeployError, MaxDeleteExceeded
from deployer.markdown import (
    bounded,
    error_body,
    escape_html,
    fold,
    md_code,
    md_text,
    more_item,
    more_row,
    table,
    visible,
    visible_lines,
)
from deployer.model import Action, Outcome, Reason, Retained, Upload
from deployer.site import page_url

SUMMARY_BUDGET = 1_000_000  # bytes; GitHub's step summary limit is 1 MiB (1,048,576)
TERMINAL_ROWS = 200  # at most this many rows per list in the terminal report

# Byte budgets per section of the Markdown summary; their sum stays well under the limit.
_ERROR_BYTES = 64_000
_FAILED_BYTES = 120_000
_CHANGED_BYTES = 400_000
_DELETED_BYTES = 150_000
_PATHS_BYTES = 120_000
_WARNINGS_BYTES = 60_000
_RETAINED_BYTES = 100_000


@dataclass(frozen=True, slots=True)
class _Stats:
    uploads: tuple[Upload, ...]  # landed (or, in a dry run, planned) PUTs and COPYs
    deleted: tuple[str, ...]
    bytes_sent: int
    paths: tuple[str, ...]
    planned_uploads: int
    planned_deletes: int

    @property
    def puts(self) -> int:
        return sum(1 for u in self.uploads if u.action is Action.PUT)

    @property
    def copies(self) -> int:
        return sum(1 for u in self.uploads if u.action is Action.COPY)


def _stats(outcome: Outcome) -> _Stats:
    plan = outcome.plan
    planned_uploads = len(plan.uploads) if plan else 0
    planned_deletes = len(plan.deletes) if plan else 0
    paths = outcome.invalidation_paths
    if not paths and not outcome.dry_run:
        paths = tuple(dict.fromkeys(p for inv in outcome.invalidations for p in inv.paths))
    if outcome.dry_run:
        uploads = plan.uploads if plan else ()
        return _Stats(
            uploads=uploads,
            deleted=plan.deletes if plan else (),
            bytes_sent=sum(u.file.size for u in uploads if u.action is Action.PUT),
            paths=paths,
            planned_uploads=planned_uploads,
            planned_deletes=planned_deletes,
        )
    return _Stats(
        uploads=tuple(outcome.uploaded),
        deleted=tuple(outcome.deleted),
        bytes_sent=outcome.uploaded_bytes,
        paths=paths,
        planned_uploads=planned_uploads,
        planned_deletes=planned_deletes,
    )


# -- outputs -------------------------------------------------------------------------------


def changed_keys(outcome: Outcome) -> list[str]:
    """The S3 keys written or deleted (in a dry run: that would be), sorted, no duplicates."""
    st = _stats(outcome)
    return sorted({u.file.key for u in st.uploads} | set(st.deleted))


def outputs(outcome: Outcome) -> dict[str, str]:
    """The step outputs of the contract (`interface.OUTPUTS`), as strings."""
    st = _stats(outcome)
    ids = [] if outcome.dry_run else [inv.invalidation_id for inv in outcome.invalidations]
    return {
        "uploaded-count": str(len(st.uploads)),
        "deleted-count": str(len(st.deleted)),
        "unchanged-count": str(outcome.unchanged_count),
        "uploaded-bytes": str(st.bytes_sent),
        "invalidation-id": ",".join(ids),
        "invalidation-paths": json.dumps(list(st.paths), ensure_ascii=False),
        "changed-keys": json.dumps(changed_keys(outcome), ensure_ascii=False),
        "retained-count": str(len(outcome.plan.retained) if outcome.plan else 0),
        "pruned-count": str(len(pruned_keys(outcome))),
        "site-url": outcome.site_url,
    }


def pruned_keys(outcome: Outcome) -> tuple[str, ...]:
    """Retained assets deleted after their grace period (in a dry run: that would be)."""
    plan = outcome.plan
    if plan is None or not plan.pruned:
        return ()
    if outcome.dry_run:
        return plan.pruned
    deleted = set(outcome.deleted)
    return tuple(key for key in plan.pruned if key in deleted)


# -- small formatters --------------------------------------------------------------------


def format_bytes(n: int) -> str:
    """Decimal units, one decimal: `512 B`, `12.4 KB`, `3.0 MB`."""
    if n < 1000:
        return f"{n} B"
    value = float(n)
    units = ("KB", "MB", "GB", "TB")
    for unit in units:
        value /= 1000
        if round(value, 1) < 1000 or unit == units[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def format_time(epoch_s: int) -> str:
    """`2026-12-09 01:20 UTC` (to the minute, in UTC like the runner's logs)."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch_s))


def _until(retained: Sequence[Retained]) -> str:
    """`until 2026-12-09 01:20 UTC`, or `until 2026-12-08 09:00 to 2026-12-09 01:20 UTC`
    (the first and the last date) when they differ."""
    first = format_time(min(r.expires_at for r in retained))
    last = format_time(max(r.expires_at for r in retained))
    if first == last:
        return f"until {last}"
    return f"until {first.removesuffix(' UTC')} to {last}"


def format_duration(seconds: float) -> str:
    """`0.4 s`, `59.9 s`, `2 min 5 s`, `1 h 2 min`."""
    if seconds < 59.95:
        return f"{max(seconds, 0.0):.1f} s"
    total = round(seconds)
    minutes, sec = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 file`, `2 files` (or `many` when the plural is irregular)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


# -- the one summary line ------------------------------------------------------------------


def summary_line(outcome: Outcome) -> str:
    """One line that says what happened, e.g. (each on one line):

    `Uploaded 3 files (12.4 KB), deleted 1, unchanged 120,
    invalidated 4 paths on E2ABCDEF123456 in 1.8 s`

    `Uploaded 4 files (12.4 KB; 1 header-only update), 2 failed, deleted 0, unchanged 120,
    nothing invalidated in 3.0 s`

    `Dry run, nothing written: would upload 3 files (12.4 KB), delete 1,
    leave 120 unchanged and invalidate 4 paths; planned in 0.4 s`
    """
    st = _stats(outcome)
    files = plural(len(st.uploads), "file")
    detail: list[str] = []
    if st.uploads:
        detail.append(format_bytes(st.bytes_sent))
    if st.copies:
        detail.append(plural(st.copies, "header-only update"))
    if detail:
        files += " (" + "; ".join(detail) + ")"
    took = format_duration(outcome.duration_s)
    unchanged = outcome.unchanged_count
    pruned = len(pruned_keys(outcome))
    deleted = f"{len(st.deleted)}" + (f" ({pruned} pruned)" if pruned else "")
    retained = outcome.plan.retained if outcome.plan else ()
    kept = f"{plural(len(retained), 'removed asset')} {_until(retained)}" if retained else ""
    if outcome.dry_run:
        inv = f"invalidate {plural(len(st.paths), 'path')}" if st.paths else "invalidate nothing"
        keep = f"keep {kept}, " if kept else ""
        return (
            f"Dry run, nothing written: would upload {files}, delete {deleted}, {keep}"
            f"leave {unchanged} unchanged and {inv}; planned in {took}"
        )
    parts = [f"Uploaded {files}"]
    if outcome.failed:
        parts.append(f"{len(outcome.failed)} failed")
    parts.append(f"deleted {deleted}")
    if kept:
        parts.append(f"kept {kept}")
    parts.append(f"unchanged {unchanged}")
    if outcome.invalidations:
        ids = ", ".join(inv.distribution_id for inv in outcome.invalidations)
        parts.append(f"invalidated {plural(len(st.paths), 'path')} on {ids}")
    elif st.paths:
        parts.append(f"{plural(len(st.paths), 'path')} not invalidated")
    else:
        parts.append("nothing invalidated")
    return ", ".join(parts) + f" in {took}"


def summary_markdown(
    outcome: Outcome, *, bucket: str, prefix: str, error: DeployError | None
) -> str:
    """The job summary: status, counts, changes with reasons, deletions, invalidation,
    warnings, and the error on failure. Always under 1 MiB, whatever the number of keys."""
    st = _stats(outcome)
    failed = error is not None or bool(outcome.failed)
    dry = outcome.dry_run
    target = md_code(f"s3://{bucket}/{prefix}")
    if failed and not bucket:
        title = "## ❌ Deploy failed"
    elif failed:
        title = f"## ❌ Deploy to {target} failed"
    elif dry:
        title = f"## 🔎 Dry run of a deploy to {target}: nothing was written"
    else:
        title = f"## ✅ Deployed to {target}"
    wrote = outcome.uploaded or outcome.deleted or outcome.invalidations
    planned = outcome.plan is not None and (not failed or dry or wrote)
    line = summary_line(outcome) if planned else "Nothing was written."
    md: list[str] = [title, "", md_text(line), ""]
    if outcome.site_url:
        md += [f"Site: [{escape_html(outcome.site_url)}](<{outcome.site_url}>)", ""]

    if error is not None:
        md += [f"### {md_text(error.title)}", ""]
        message = error.message
        if len(message.encode("utf-8")) > _ERROR_BYTES:
            message = message.encode("utf-8")[:_ERROR_BYTES].decode("utf-8", "ignore") + " ..."
        md += error_body(message)
        md.append("")
    if outcome.failed:
        failures = sorted(outcome.failed)
        body = table(
            "| File | Why it failed |",
            bounded(
                failures,
                lambda f: f"| {md_code(f[0], in_table=True)} | {md_text(f[1], in_table=True)} |",
                max_bytes=_FAILED_BYTES,
                more=more_row(2),
            ),
        )
        md += [f"#### Failed files ({len(failures):,})", ""]
        md += fold(f"{len(failures):,} failed files", body, len(failures))
        md.append("")

    if outcome.plan is not None:  # nothing to count when it failed before planning
        if error is not None or outcome.failed:  # set apart from the error's own tables
            md += ["### What was done", ""]
        md += _counts_table(outcome, st, failed=failed)
        md.append("")
        md += _changes(outcome, st)
        md += _not_done(outcome, error)
        md += _deletions(outcome, st, dry=dry)
        md += _retained(outcome)
        if not failed or wrote:  # a deploy that wrote nothing has nothing to invalidate
            md += _invalidation(outcome, st)
    if outcome.warnings:
        md += [f"### ⚠️ Warnings ({len(outcome.warnings):,})", ""]
        md += bounded(
            outcome.warnings,
            lambda w: f"- {md_text(w)}",
            max_bytes=_WARNINGS_BYTES,
            more=more_item,
        )
        md.append("")

    text = "\n".join(md).rstrip("\n") + "\n"
    data = text.encode("utf-8")
    if len(data) > SUMMARY_BUDGET:  # cannot happen with the budgets above; belt and braces
        cut = data[: SUMMARY_BUDGET - 200].decode("utf-8", "ignore")
        text = cut + "\n\n_(summary truncated to stay under GitHub's 1 MiB limit)_\n"
    return text


def _counts_table(outcome: Outcome, st: _Stats, *, failed: bool) -> list[str]:
    def of(done: int, planned: int) -> str:
        return (
            f"{done:,} of {planned:,}"
            if failed and outcome.plan and done != planned
            else f"{done:,}"
        )

    planned = outcome.plan.uploads if outcome.plan else ()
    planned_puts = sum(1 for u in planned if u.action is Action.PUT)
    planned_copies = len(planned) - planned_puts
    labels: tuple[str, str, str] = (
        ("Would upload (new or changed content)", "Would update headers only", "Would delete")
        if outcome.dry_run
        else (
            "Uploaded (new or changed content)",
            "Updated headers only (no bytes sent)",
            "Deleted",
        )
    )
    rows = [
        f"| {labels[0]} | {of(st.puts, planned_puts)} |",
        f"| {labels[1]} | {of(st.copies, planned_copies)} |",
        f"| {labels[2]} | {of(len(st.deleted), st.planned_deletes)} |",
        f"| Unchanged | {outcome.unchanged_count:,} |",
    ]
    retained = outcome.plan.retained if outcome.plan else ()
    if retained:
        verb = "Would keep" if outcome.dry_run else "Kept"
        rows.append(f"| {verb} for open pages (removed assets) | {len(retained):,} |")
    if pruned := pruned_keys(outcome):
        verb = "Would prune" if outcome.dry_run else "Pruned"
        rows.append(f"| {verb} (grace period over, among the deleted) | {len(pruned):,} |")
    if outcome.failed:
        rows.append(f"| Failed | {len(outcome.failed):,} |")
    sent = "Bytes to send" if outcome.dry_run else "Bytes sent"
    exact = f" ({st.bytes_sent:,} B)" if st.bytes_sent >= 1000 else ""
    rows.append(f"| {sent} | {format_bytes(st.bytes_sent)}{exact} |")
    rows.append(f"| Duration | {format_duration(outcome.duration_s)} |")
    return table("| Result | Value |", rows)


def _changes(outcome: Outcome, st: _Stats) -> list[str]:
    if not st.uploads:
        total = outcome.unchanged_count
        if outcome.plan is not None and not outcome.plan.uploads and total:
            everything = "the file is" if total == 1 else f"all {total:,} files are"
            return [f"Nothing to upload: {everything} already up to date.", ""]
        return []
    uploads = sorted(st.uploads, key=lambda u: u.file.key)

    def row(u: Upload) -> str:
        size = "headers only" if u.action is Action.COPY else format_bytes(u.file.size)
        return f"| {_linked(outcome, u.file.key, in_table=True)} | {u.reason.value} | {size} |"

    body = table(
        "| File | Reason | Size |",
        bounded(uploads, row, max_bytes=_CHANGED_BYTES, more=more_row(3)),
    )
    head = "Files that would change" if outcome.dry_run else "Changed files"
    md = [f"### {head} ({len(uploads):,})", ""]
    md += fold(f"{len(uploads):,} files", body, len(uploads))
    return [*md, ""]


def _linked(outcome: Outcome, key: str, *, in_table: bool = False) -> str:
    """The key as code, linked to the page on the site when it is one."""
    code = md_code(key, in_table=in_table)
    url = page_url(outcome.site_url, outcome.site_prefix, key)
    return f"[{code}](<{url}>)" if url else code


def _deletions(outcome: Outcome, st: _Stats, *, dry: bool) -> list[str]:
    if not st.deleted:
        return []
    keys = sorted(st.deleted)
    pruned = set(pruned_keys(outcome))

    def item(key: str) -> str:
        why = " (kept for its grace period, now over)" if key in pruned else ""
        return f"- {_linked(outcome, key)}{why}"

    body = bounded(keys, item, max_bytes=_DELETED_BYTES, more=more_item)
    head = "Objects to delete" if dry else "Deleted objects"
    md = [f"### {head} ({len(keys):,})", ""]
    md += fold(f"{len(keys):,} objects", body, len(keys))
    return [*md, ""]


def _not_done(outcome: Outcome, error: DeployError | None) -> list[str]:
    """After a failure: the planned uploads that were not attempted (held back) and the
    planned deletions that were not done, folded, so the summary says what is still to do."""
    plan = outcome.plan
    if plan is None or outcome.dry_run or (error is None and not outcome.failed):
        return []
    tried = {u.file.key for u in outcome.uploaded} | {key for key, _ in outcome.failed}
    held = sorted(u.file.key for u in plan.uploads if u.file.key not in tried)
    deleted = set(outcome.deleted)
    kept = sorted(key for key in plan.deletes if key not in deleted)
    refused = isinstance(error, MaxDeleteExceeded)
    md: list[str] = []
    if held:
        if refused:
            head, why = "Files this deploy would upload", "Not uploaded: the deploy was refused."
        elif outcome.failed:
            head = "Held back: not uploaded"
            why = (
                "Not uploaded because other files failed first; HTML and entry files wait "
                "for every asset, so the live pages keep referring to assets that exist."
            )
        else:
            head, why = "Not uploaded", "The deploy stopped before these files were sent."
        md += _listed(head, why, held, "files")
    if kept:
        if refused:
            head = "Objects this deploy would delete"
            why = "Refused by `max-delete`: nothing was deleted."
        else:
            head = "Not deleted"
            why = "Deletions run only after every upload landed."
        md += _listed(head, why, kept, "objects")
    return md


def _listed(head: str, why: str, keys: Sequence[str], noun: str) -> list[str]:
    body = bounded(keys, lambda k: f"- {md_code(k)}", max_bytes=_DELETED_BYTES, more=more_item)
    md = [f"### {head} ({len(keys):,})", "", md_text(why), ""]
    md += fold(f"{len(keys):,} {noun}", body, len(keys))
    return [*md, ""]


def _nothing_invalidated(outcome: Outcome, st: _Stats) -> str:
    """Why there is nothing to invalidate, in one sentence."""
    if not outcome.distribution_ids:
        return "Not used: no `distribution-id` was given."
    if outcome.invalidation == "none":
        return "Skipped (`invalidation: none`)."
    if not st.uploads and not st.deleted:
        return "Nothing changed, so nothing to invalidate."
    if not st.deleted and all(u.reason is Reason.NEW for u in st.uploads):
        every = "the file uploaded is" if len(st.uploads) == 1 else "every file uploaded is"
        return (
            f"Nothing to invalidate: {every} new here, so CloudFront has never cached it "
            "(a new path is fetched from the bucket on its first request)."
        )
    return "Nothing to invalidate: no path CloudFront may have cached changed."


def _retained(outcome: Outcome) -> list[str]:
    retained = outcome.plan.retained if outcome.plan else ()
    if not retained:
        return []
    head = "Removed assets that would be kept" if outcome.dry_run else "Removed assets kept"
    md = [
        f"### {head} for pages still open ({len(retained):,})",
        "",
        "They left the source, but a page loaded before this deploy may still ask for "
        "them, so they stay (not invalidated) until their grace period "
        "(`keep-removed-assets`) ends; the first deploy after that deletes them.",
        "",
    ]
    if later := outcome.plan.pruned_later if outcome.plan else 0:
        md += [
            f"{plural(later, 'asset')} past the grace period "
            f"{'is' if later == 1 else 'are'} left for a later deploy: pruning "
            f"{'it' if later == 1 else 'them'} now would exceed `max-delete`.",
            "",
        ]

    def row(r: Retained) -> str:
        return (
            f"| {md_code(r.key, in_table=True)} | {format_time(r.removed_at)} "
            f"| {format_time(r.expires_at)} |"
        )

    body = table(
        "| File | Left the source | Kept until |",
        bounded(retained, row, max_bytes=_RETAINED_BYTES, more=more_row(3)),
    )
    md += fold(f"{len(retained):,} kept assets", body, len(retained))
    return [*md, ""]


def _invalidation(outcome: Outcome, st: _Stats) -> list[str]:
    md = ["### CloudFront invalidation", ""]
    if outcome.invalidations and not outcome.dry_run:
        rows = [
            f"| {md_code(inv.distribution_id, in_table=True)} "
            f"| {md_code(inv.invalidation_id, in_table=True)} "
            f"| {md_text(inv.status, in_table=True)} | {len(inv.paths):,} |"
            for inv in outcome.invalidations
        ]
        md += table("| Distribution | Invalidation | Status | Paths |", rows)
        md += ["", f"Invalidated {plural(len(st.paths), 'path')}:", ""]
    elif st.paths and outcome.dry_run:
        md += [f"Would invalidate {plural(len(st.paths), 'path')}:", ""]
    elif st.paths:
        md += [f"Not invalidated ({plural(len(st.paths), 'path')}):", ""]
    if not st.paths:
        md += [md_text(_nothing_invalidated(outcome, st)), ""]
        return md
    body = bounded(st.paths, lambda p: f"- {md_code(p)}", max_bytes=_PATHS_BYTES, more=more_item)
    md += fold(f"{len(st.paths):,} paths", body, len(st.paths))
    return [*md, ""]


# -- terminal --------------------------------------------------------------------------------


def sections(outcome: Outcome, *, limit: int = TERMINAL_ROWS) -> list[tuple[str, list[str]]]:
    """The report as (title, lines) sections, for the terminal or for `::group::` folds."""
    st = _stats(outcome)
    dry = outcome.dry_run
    out: list[tuple[str, list[str]]] = []

    def cap(rows: list[str]) -> list[str]:
        if len(rows) <= limit:
            return rows
        return [*rows[:limit], f"... and {len(rows) - limit:,} more"]

    if st.uploads:
        rows = []
        for u in sorted(st.uploads, key=lambda u: u.file.key):
            size = "headers only" if u.action is Action.COPY else format_bytes(u.file.size)
            mark = "~" if u.action is Action.COPY else "+"
            rows.append(f"{mark} {visible(u.file.key)} ({u.reason.value}, {size})")
        out.append(
            (f"{'Would upload' if dry else 'Uploaded'} {plural(len(rows), 'file')}", cap(rows))
        )
    if outcome.failed:
        rows = [f"! {visible(key)}: {visible(why)}" for key, why in sorted(outcome.failed)]
        out.append((f"Failed {plural(len(rows), 'file')}", cap(rows)))
    if st.deleted:
        pruned = set(pruned_keys(outcome))
        rows = [
            f"- {visible(key)}" + (" (grace period over)" if key in pruned else "")
            for key in sorted(st.deleted)
        ]
        out.append(
            (f"{'Would delete' if dry else 'Deleted'} {plural(len(rows), 'object')}", cap(rows))
        )
    if retained := (outcome.plan.retained if outcome.plan else ()):
        rows = [
            f"= {visible(r.key)} (left {format_time(r.removed_at)}, "
            f"kept until {format_time(r.expires_at)})"
            for r in retained
        ]
        verb = "Would keep" if dry else "Kept"
        out.append((f"{verb} {plural(len(rows), 'removed asset')} for open pages", cap(rows)))
    if st.paths:
        rows = []
        if not dry:
            rows = [
                f"{inv.distribution_id}: {inv.invalidation_id} ({inv.status})"
                for inv in outcome.invalidations
            ]
        rows += cap([f"  {visible(p)}" for p in st.paths])
        verb = (
            "Would invalidate"
            if dry
            else ("Invalidated" if outcome.invalidations else "Not invalidated")
        )
        out.append((f"{verb} {plural(len(st.paths), 'path')}", rows))
    if outcome.warnings:
        rows = [visible_lines(w) for w in outcome.warnings]
        out.append((plural(len(rows), "warning"), cap(rows)))
    return out


def terminal_report(outcome: Outcome, *, limit: int = TERMINAL_ROWS) -> str:
    """Plain text for a terminal: each section as a header with indented lines.

    The summary line is not included: the CLI prints it last, in every mode."""
    lines: list[str] = []
    for title, rows in sections(outcome, limit=limit):
        lines.append(f"{title}:")
        for row in rows:
            lines.extend(f"  {part}" for part in row.splitlines())
    return "\n".join(lines) + "\n" if lines else ""
