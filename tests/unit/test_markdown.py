"""deployer.markdown: the summary's Markdown primitives."""

from __future__ import annotations

from deployer.markdown import error_body, md_code, md_text


def test_md_code_survives_backticks() -> None:
    """Backtick runs get a longer fence; a leading backtick gets padding."""
    assert md_code("x`y``z") == "```x`y``z```"
    assert md_code("`a") == "`` `a ``"
    assert md_code("a|b", in_table=True) == "`a\\|b`"
    assert md_code("a\nb") == "`a\\nb`"


def test_md_text_keeps_code_spans_and_neutralises_html() -> None:
    """Our text keeps its code spans; `<`, `>` and `&` outside them cannot become HTML."""
    assert md_text("Set `a<b>` in <details> & go") == "Set `a<b>` in &lt;details&gt; &amp; go"
    assert md_text("a|b", in_table=True) == "a\\|b"


def test_error_body_puts_yaml_inside_its_numbered_step() -> None:
    """A numbered step's 4-space YAML becomes a fenced block indented into the list item."""
    message = "No credentials.\n\n1. Add the keys:\n\n    with:\n      bucket: x\n\n2. Re-run."
    assert error_body(message) == [
        "No credentials.",
        "",
        "1. Add the keys:",
        "",
        "   ```yaml",
        "   with:",
        "     bucket: x",
        "   ```",
        "",
        "2. Re-run.",
    ]
