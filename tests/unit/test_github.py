"""Runner: workflow commands inside Actions, readable lines outside, outputs, summary, masking."""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path

import pytest

from deployer.github import SUMMARY_LIMIT, Runner, escape_data, escape_property

ACTIONS = {"GITHUB_ACTIONS": "true"}


def make(env: dict[str, str] | None = None) -> tuple[Runner, io.StringIO]:
    out = io.StringIO()
    return Runner(env if env is not None else dict(ACTIONS), out), out


def lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def parse_github_output(text: str) -> dict[str, str]:
    """Parse a GITHUB_OUTPUT file the way the runner does (heredoc and name=value forms)."""
    result: dict[str, str] = {}
    rows = text.split("\n")
    i = 0
    while i < len(rows):
        row = rows[i]
        i += 1
        if not row:
            continue
        if "<<" in row and ("=" not in row or row.index("<<") < row.index("=")):
            name, delimiter = row.split("<<", 1)
            value_lines: list[str] = []
            while rows[i] != delimiter:
                value_lines.append(rows[i])
                i += 1
            i += 1
            result[name] = "\n".join(value_lines)
        else:
            name, value = row.split("=", 1)
            result[name] = value
    return result


def test_escaping_functions() -> None:
    """Data escapes %, CR, LF; properties additionally escape : and ,."""
    assert escape_data("50% a\r\nb") == "50%25 a%0D%0Ab"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert escape_data("a:b,c") == "a:b,c"


def test_in_actions_detection() -> None:
    """Only GITHUB_ACTIONS=true (any case) switches to workflow commands."""
    assert make({"GITHUB_ACTIONS": "true"})[0].in_actions
    assert make({"GITHUB_ACTIONS": "TRUE"})[0].in_actions
    assert not make({"GITHUB_ACTIONS": "false"})[0].in_actions
    assert not make({})[0].in_actions


def test_warning_and_error_commands_are_escaped() -> None:
    """Annotations carry an escaped title property and escaped multi-line data."""
    runner, out = make()
    runner.warning("line one\nline 100%", title="Skipped: a, b")
    runner.error("broken\r\nfix it", title=None)
    runner.error("x", title="Invalid input `bucket`")
    assert lines(out) == [
        "::warning title=Skipped%3A a%2C b::line one%0Aline 100%25",
        "::error::broken%0D%0Afix it",
        "::error title=Invalid input `bucket`::x",
    ]


def test_terminal_warning_and_error_are_readable() -> None:
    """Outside Actions: `warning: ...` / `error: title` with the message indented below."""
    runner, out = make({})
    runner.warning("something odd")
    runner.error("`bucket` is required\nset `bucket: my-site`", title="Invalid input")
    assert lines(out) == [
        "warning: something odd",
        "error: Invalid input",
        "  `bucket` is required",
        "  set `bucket: my-site`",
    ]


def test_mask_prints_add_mask_per_line_and_skips_empty() -> None:
    """A multi-line secret is announced line by line, each once; blanks are skipped."""
    runner, out = make()
    runner.mask("")
    runner.mask("   ")
    runner.mask("first-line\n\nsecond%line\r\n")
    runner.mask("first-line")  # masked twice (auth and cli): announced once
    assert lines(out) == ["::add-mask::first-line", "::add-mask::second%25line"]


def test_mask_is_silent_outside_actions_but_scrubs() -> None:
    """Locally nothing is printed by mask(), yet the value is scrubbed from every line."""
    runner, out = make({})
    runner.mask("wJalrXUtnFEMI/K7MDENG")
    assert out.getvalue() == ""
    runner.info("key wJalrXUtnFEMI/K7MDENG leaked?")
    runner.warning("bad wJalrXUtnFEMI/K7MDENG", title="t wJalrXUtnFEMI/K7MDENG")
    assert "wJalrXUtnFEMI" not in out.getvalue()
    assert lines(out) == ["key *** leaked?", "warning: t ***", "  bad ***"]


def test_scrub_replaces_longest_first_and_each_line() -> None:
    """scrub() hides the whole secret, its lines, and overlapping secrets completely."""
    runner, _ = make({})
    runner.mask("abcdef123456")
    runner.mask("abcdef123456XYZ")
    runner.mask("-----BEGIN KEY-----\nAAAABBBBCCCC\n-----END KEY-----")
    assert runner.scrub("x abcdef123456XYZ y") == "x *** y"
    assert runner.scrub("abcdef123456") == "***"
    assert runner.scrub("the body AAAABBBBCCCC only") == "the body *** only"
    assert runner.scrub("nothing here") == "nothing here"


def test_secret_is_scrubbed_in_actions_commands() -> None:
    """Inside Actions, too, our own lines never contain a registered secret."""
    runner, out = make()
    runner.mask("s3cr3t-value")
    runner.error("failed with s3cr3t-value", title="s3cr3t-value")
    runner.info("s3cr3t-value")
    with runner.group("s3cr3t-value"):
        pass
    text = out.getvalue()
    assert text.count("s3cr3t-value") == 1  # only the add-mask line itself
    assert lines(out)[0] == "::add-mask::s3cr3t-value"


def test_group_in_actions_and_no_nesting() -> None:
    """Groups fold with ::group::/::endgroup::; an inner group becomes a plain line."""
    runner, out = make()
    with runner.group("Uploading 2 files"):
        runner.info("a.js")
        with runner.group("inner"):
            runner.info("b.js")
    runner.info("after")
    assert lines(out) == [
        "::group::Uploading 2 files",
        "a.js",
        "inner",
        "b.js",
        "::endgroup::",
        "after",
    ]


def test_group_closes_on_exception() -> None:
    """An exception inside a group still closes it."""
    runner, out = make()
    with pytest.raises(RuntimeError), runner.group("work"):
        raise RuntimeError("boom")
    assert lines(out) == ["::group::work", "::endgroup::"]


def test_group_outside_actions_is_indented_header() -> None:
    """Locally a group is a header line with the inner lines indented."""
    runner, out = make({})
    with runner.group("Uploading 2 files"):
        runner.info("a.js")
        runner.progress("50%")
        with runner.group("Deleting:"):
            runner.info("old.html")
        runner.warning("slow")
    runner.info("done")
    assert lines(out) == [
        "Uploading 2 files:",
        "  a.js",
        "  50%",
        "  Deleting:",
        "    old.html",
        "  warning: slow",
        "done",
    ]


def test_info_lines_cannot_inject_workflow_commands() -> None:
    """A file name that looks like a command is defused before it reaches the runner."""
    runner, out = make()
    runner.info("::set-output name=x::y\n  ::error::z\nok ##[group]q")
    for line in lines(out):
        assert not line.lstrip().startswith("::")
        assert "##[" not in line
    assert lines(out)[2] == "ok #\u200b#[group]q"


def test_debug_only_as_debug_command() -> None:
    """debug() is `::debug::` in Actions, silent locally unless S3CFD_DEBUG is set."""
    runner, out = make()
    runner.debug("HEAD 3 keys\n100%")
    assert lines(out) == ["::debug::HEAD 3 keys%0A100%25"]
    quiet, quiet_out = make({})
    quiet.debug("hidden")
    assert quiet_out.getvalue() == ""
    loud, loud_out = make({"S3CFD_DEBUG": "1"})
    loud.debug("shown")
    assert lines(loud_out) == ["debug: shown"]


def test_set_outputs_heredoc_round_trip(tmp_path: Path) -> None:
    """Outputs parse back exactly, including newlines, `=`, `<<` and unicode, appended."""
    target = tmp_path / "output"
    target.write_text("earlier=1\n", encoding="utf-8")
    runner, _ = make({**ACTIONS, "GITHUB_OUTPUT": str(target)})
    values = {
        "uploaded-count": "3",
        "invalidation-id": "",
        "changed-keys": '["a b.html", "안내 문서.txt"]',
        "tricky": "x=y<<EOF\nEOF\nlast line\n",
    }
    assert runner.set_outputs(values) is True
    text = target.read_text(encoding="utf-8")
    assert parse_github_output(text) == {"earlier": "1", **values}
    delimiters = re.findall(r"^[\w-]+<<(.*)$", text, flags=re.M)
    assert len(delimiters) == 4
    assert len(set(delimiters)) == 4
    assert all(re.fullmatch(r"ghadelimiter_[0-9a-f-]{36}", d) for d in delimiters)


def test_set_outputs_rejects_bad_names_and_is_noop_without_file(tmp_path: Path) -> None:
    """No GITHUB_OUTPUT: nothing written; an output name with a newline is a bug."""
    runner, out = make({})
    assert runner.set_outputs({"a": "b"}) is False
    assert out.getvalue() == ""
    target = tmp_path / "output"
    runner2, _ = make({**ACTIONS, "GITHUB_OUTPUT": str(target)})
    with pytest.raises(ValueError, match="invalid step output name"):
        runner2.set_outputs({"a\nb": "c"})
    assert not target.exists()


def test_write_summary_appends_and_scrubs(tmp_path: Path) -> None:
    """The summary is appended (other steps' text kept) and scrubbed of secrets."""
    target = tmp_path / "summary.md"
    target.write_text("# before\n", encoding="utf-8")
    runner, _ = make({**ACTIONS, "GITHUB_STEP_SUMMARY": str(target)})
    runner.mask("TOPSECRETVALUE")
    assert runner.write_summary("## Deployed\nkey TOPSECRETVALUE") is True
    assert target.read_text(encoding="utf-8") == "# before\n## Deployed\nkey ***\n"
    assert make({})[0].write_summary("x") is False


def test_write_summary_never_exceeds_limit(tmp_path: Path) -> None:
    """Even an oversized summary (multi-byte text) stays under 1 MiB, cut on a character."""
    target = tmp_path / "summary.md"
    runner, _ = make({**ACTIONS, "GITHUB_STEP_SUMMARY": str(target)})
    runner.write_summary("가" * SUMMARY_LIMIT)
    data = target.read_bytes()
    assert len(data) <= SUMMARY_LIMIT
    text = data.decode("utf-8")  # no broken character
    assert text.endswith("_(summary truncated to stay under GitHub's 1 MiB limit)_\n")


def test_logging_from_threads_keeps_lines_whole() -> None:
    """Concurrent progress lines never interleave within a line."""
    runner, out = make({})

    def work(n: int) -> None:
        for i in range(200):
            runner.progress(f"worker {n} line {i} " + "x" * 50)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = lines(out)
    assert len(got) == 800
    assert all(re.fullmatch(r"worker \d line \d+ x{50}", line) for line in got)
