"""deployer.errors helpers."""

from __future__ import annotations

from deployer.errors import some


def test_some_shows_the_first_ten_and_counts_the_rest() -> None:
    """A one-line list: every item up to ten, then "and N more" for the rest."""
    assert some([]) == ""
    assert some(["`a`"]) == "`a`"
    assert some(f"`{n}`" for n in range(10)) == ", ".join(f"`{n}`" for n in range(10))
    assert some(f"`{n}`" for n in range(13)) == (
        ", ".join(f"`{n}`" for n in range(10)) + " and 3 more"
    )
    assert some(["x", "y", "z"], shown=2) == "x, y and 1 more"
