"""Markdown for the job summary: code spans and text that cannot break out of their place,
bounded and folded lists, tables, and our plain-text error messages as Markdown.

Pure string functions; `report.py` builds the summary's sections from them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

_T = TypeVar("_T")

FOLD_ROWS = 20  # lists longer than this are folded in <details>
SUMMARY_ROWS = 1000  # at most this many rows per list in the summary


def visible(text: str) -> str:
    """Show control and invisible characters as escapes so a name cannot break a line."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


_CODE_SPAN_RE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)


def md_code(text: str, *, in_table: bool = False) -> str:
    """`text` as a Markdown code span that survives backticks, `|` in tables, and `<`."""
    text = visible(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    if (
        text.startswith("`")
        or text.endswith("`")
        or (text.startswith(" ") and text.endswith(" ") and text.strip())
    ):
        text = f" {text} "
    if in_table:
        text = text.replace("|", "\\|")
    return f"{fence}{text}{fence}"


def escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def md_text(text: str, *, in_table: bool = False) -> str:
    """Our own message text as Markdown: code spans kept, HTML outside them neutralised."""
    text = visible_lines(text)
    out: list[str] = []
    pos = 0
    for match in _CODE_SPAN_RE.finditer(text):
        out.append(escape_html(text[pos : match.start()]))
        out.append(match.group(0))
        pos = match.end()
    out.append(escape_html(text[pos:]))
    result = "".join(out)
    return result.replace("|", "\\|") if in_table else result


def visible_lines(text: str) -> str:
    return "\n".join(visible(line) for line in text.splitlines())


def bounded(
    items: Sequence[_T],
    render: Callable[[_T], str],
    *,
    max_bytes: int,
    more: Callable[[int], str],
) -> list[str]:
    """Render rows while within SUMMARY_ROWS and `max_bytes`; end with `... and N more`."""
    kept: list[str] = []
    used = 0
    for item in items[:SUMMARY_ROWS]:
        row = render(item)
        size = len(row.encode("utf-8")) + 1
        if used + size > max_bytes:
            break
        kept.append(row)
        used += size
    if len(kept) < len(items):
        kept.append(more(len(items) - len(kept)))
    return kept


def fold(summary: str, body: list[str], rows: int) -> list[str]:
    if rows <= FOLD_ROWS:
        return body
    return ["<details>", f"<summary>{escape_html(summary)}</summary>", "", *body, "", "</details>"]


def table(header: str, rows: list[str]) -> list[str]:
    cols = header.count("|") - 1
    align = "|" + " --- |" * cols
    return [header, align, *rows]


def more_row(cols: int) -> Callable[[int], str]:
    def more(n: int) -> str:
        return "| _... and " + f"{n:,} more_ |" + " |" * (cols - 1)

    return more


def more_item(n: int) -> str:
    return f"- _... and {n:,} more_"


_NUMBERED_RE = re.compile(r"^(\d+)\. ")


def error_body(message: str) -> list[str]:
    """An error message (plain text, as printed in the log) as Markdown.

    Messages are written for the terminal: paragraphs separated by blank lines, `1. `
    numbered steps whose later paragraphs are indented 3 spaces, and YAML fixes
    indented 4 spaces. Here a step becomes a list item with its paragraphs and YAML
    blocks inside it (indented to the item's content), YAML becomes a fenced block, and
    a paragraph of several lines (one problem per line) a bullet list.
    """
    if "\n" not in message.strip():
        return [md_text(message.strip())]
    # Runs of lines: a blank line ends a run, and so does a change between YAML (4+
    # spaces) and text.
    runs: list[list[str]] = []
    for line in message.strip().splitlines():
        code = line.startswith("    ")
        if not line.strip():
            runs.append([])
        elif runs and runs[-1] and runs[-1][0].startswith("    ") == code:
            runs[-1].append(line.rstrip())
        else:
            runs.append([line.rstrip()])
    out: list[str] = []
    in_step = False
    for run in runs:
        if not run:
            continue
        if run[0].startswith("    "):  # a YAML fix
            pad = "   " if in_step else ""
            fence = "````" if any("```" in line for line in run) else "```"
            out += [pad + fence + "yaml", *(pad + line[4:] for line in run), pad + fence, ""]
            continue
        if in_step and run[0].startswith("   "):  # a later paragraph of the step
            out += ["   " + md_text(" ".join(line.strip() for line in run)), ""]
            continue
        step = _NUMBERED_RE.match(run[0])
        in_step = step is not None
        if step is not None:
            text = " ".join(line.strip() for line in run)[step.end() :]
            out += [f"{step.group(1)}. {md_text(text)}", ""]
        elif len(run) > 1:
            out += [*(f"- {md_text(line.strip())}" for line in run), ""]
        else:
            out += [md_text(run[0].strip()), ""]
    return out[:-1] if out and not out[-1] else out
