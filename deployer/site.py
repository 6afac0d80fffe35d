"""Where a published key is seen on the site (pure): links in the job summary.

The site's address comes from the first distribution (`cloudfront.site_url`: its first
alias, else its `*.cloudfront.net` domain); the key prefix it serves at `/` is its
origin path. Only pages get a link (`.html`, `.htm`): they are what a reviewer opens
to look at a deploy; `dir/index.html` is linked as `dir/`, where visitors request it.
"""

from __future__ import annotations

from deployer.invalidation import encode_path

_PAGES = (".html", ".htm")


def page_url(site_url: str, site_prefix: str, key: str) -> str | None:
    """The page's address on the site, or None (no site, not a page, not served there)."""
    if not site_url or not key.startswith(site_prefix):
        return None
    rel = key[len(site_prefix) :]
    if not rel.lower().endswith(_PAGES):
        return None
    if rel == "index.html":
        rel = ""
    elif rel.endswith("/index.html"):
        rel = rel[: -len("index.html")]
    return site_url.rstrip("/") + encode_path(rel)
