"""site.page_url: which keys are linked in the summary, and where."""

from __future__ import annotations

import pytest

from deployer.site import page_url

SITE = "https://www.example.com"


@pytest.mark.parametrize(
    ("key", "url"),
    [
        ("index.html", "https://www.example.com/"),
        ("about/index.html", "https://www.example.com/about/"),
        ("blog/2026/first-post.html", "https://www.example.com/blog/2026/first-post.html"),
        ("docs/안내.html", "https://www.example.com/docs/%EC%95%88%EB%82%B4.html"),
        ("a b<c>.htm", "https://www.example.com/a%20b%3Cc%3E.htm"),
        ("assets/index-DiwrgTda.js", None),  # not a page
        ("robots.txt", None),
    ],
)
def test_pages_are_linked_where_visitors_request_them(key: str, url: str | None) -> None:
    """Pages only; `index.html` as its folder; names percent-encoded like CloudFront paths."""
    assert page_url(SITE, "", key) == url


def test_origin_prefix_and_no_site() -> None:
    """Keys outside the prefix the site serves are not linked; no site, no links."""
    assert page_url(SITE + "/", "app/", "app/index.html") == "https://www.example.com/"
    assert page_url(SITE, "app/", "other/index.html") is None
    assert page_url("", "", "index.html") is None
