"""Content-Type table, entry files, the fingerprint heuristic and rule overrides."""

from __future__ import annotations

import pytest

from deployer.headers import (
    OCTET_STREAM,
    content_type_for,
    default_cache_control,
    headers_for,
    is_entry_file,
    is_fingerprinted,
)
from deployer.model import Headers
from deployer.settings import Rule

# The Cache-Control values users get, written out (not imported from deployer.headers:
# a changed default must fail here). The README's "Cache defaults" table states them too.
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("docs/page.htm", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("mod.mjs", "text/javascript; charset=utf-8"),
        ("legacy.cjs", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("data.json", "application/json; charset=utf-8"),
        ("app.js.map", "application/json; charset=utf-8"),
        ("lib.wasm", "application/wasm"),
        ("manifest.webmanifest", "application/manifest+json; charset=utf-8"),
        ("logo.svg", "image/svg+xml; charset=utf-8"),
        ("photo.avif", "image/avif"),
        ("photo.webp", "image/webp"),
        ("photo.png", "image/png"),
        ("photo.jpg", "image/jpeg"),
        ("photo.JPEG", "image/jpeg"),
        ("anim.gif", "image/gif"),
        ("favicon.ico", "image/vnd.microsoft.icon"),
        ("font.woff2", "font/woff2"),
        ("font.woff", "font/woff"),
        ("font.ttf", "font/ttf"),
        ("font.otf", "font/otf"),
        ("notes.txt", "text/plain; charset=utf-8"),
        ("feed.xml", "application/xml; charset=utf-8"),
        ("paper.pdf", "application/pdf"),
        ("clip.mp4", "video/mp4"),
        ("clip.webm", "video/webm"),
        ("song.mp3", "audio/mpeg"),
        ("model.glb", "model/gltf-binary"),
        ("model.gltf", "model/gltf+json; charset=utf-8"),
        ("README", OCTET_STREAM),
        (".htaccess", OCTET_STREAM),
        ("blob.unknownext", OCTET_STREAM),
        ("dir.with.dots/file", OCTET_STREAM),
    ],
)
def test_content_type_table(path: str, expected: str) -> None:
    """The built-in table gives the expected Content-Type by the last extension."""
    assert content_type_for(path) == expected


def test_content_type_ignores_host_mimetypes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken host mime database does not change the result (the table never reads it)."""
    import mimetypes

    monkeypatch.setattr(mimetypes, "guess_type", lambda *a, **k: ("application/x-bogus", None))
    assert content_type_for("app.js") == "text/javascript; charset=utf-8"


def test_every_text_type_has_charset() -> None:
    """Every text/* type and JSON/XML/JS type in the table carries charset=utf-8."""
    from deployer.headers import CONTENT_TYPES

    for ext, value in CONTENT_TYPES.items():
        if ext == "svgz":  # gzip bytes, not text
            continue
        base = value.split(";")[0]
        if base.startswith("text/") or base.endswith(("+json", "/json", "+xml", "/xml")):
            assert value.endswith("; charset=utf-8"), ext


@pytest.mark.parametrize(
    "path",
    [
        "index.html",
        "blog/post/index.html",
        "404.html",
        "page.HTM",
        "sw.js",
        "service-worker.js",
        "manifest.webmanifest",
        "manifest.json",
        "robots.txt",
        "sitemap.xml",
        "sitemap-0.xml",
        "sitemap_index.xml",
        "asset-manifest.json",
        ".well-known/security.txt",
        "docs/.well-known/assetlinks.json",
    ],
)
def test_entry_files(path: str) -> None:
    """HTML and entry files are recognised (second phase, no-cache)."""
    assert is_entry_file(path)
    assert default_cache_control(path) == NO_CACHE


@pytest.mark.parametrize(
    "path",
    ["app.js", "assets/index-DiwrgTda.js", "style.css", "logo.png", "data/robots.txt.bak", "swjs"],
)
def test_not_entry_files(path: str) -> None:
    """Assets are not entry files."""
    assert not is_entry_file(path)


@pytest.mark.parametrize(
    "path",
    [
        "assets/index-DiwrgTda.js",  # Vite 5 (base64url hash, letters only, in assets/)
        "assets/index-B-x_9kQz.js",  # Vite hash containing - and _
        "assets/vendor-Cz3kQ1a9.css",
        "assets/index-DiwrgTda.js.map",
        "main.3f2a9c1b.js",  # webpack [name].[contenthash:8]
        "vendor.3f2a9c1b4d5e6f708192.js",  # webpack full contenthash
        "static/js/main.3f2a9c1b.chunk.js",  # create-react-app
        "static/css/2.5e7d3c1a.chunk.css",
        "_next/static/chunks/pages/_app.js",  # Next.js: the whole folder is hashed
        "_next/static/Ab1Cd2Ef3/_buildManifest.js",
        "_app/immutable/entry/start.js",  # SvelteKit
        "main.3f2a9c1b4d5e6f70.js",  # Angular (webpack)
        "main-5XQZ3ABC.js",  # Angular / esbuild base32
        "chunk-ABCDEFGH.js",  # esbuild base32 that happens to hold no digit
        "polyfills-RT5I6R6G.js",
        "main.12345abc.js",  # hex: digits and letters, even in two runs
        "_astro/index.BQ2Y1s3k.css",  # Astro
        "_nuxt/entry.D0BpOjvN.js",  # Nuxt 3
        "app-3f2a9c1b4d5e6f708192.js",  # Gatsby
        "static/media/3f2a9c1b4d5e6f70.png",  # a name that is only a hash
        "img/hero.a1b2c3d4.webp",
    ],
)
def test_fingerprinted_assets_are_immutable(path: str) -> None:
    """Fingerprinted build output gets a year and immutable."""
    assert is_fingerprinted(path)
    assert default_cache_control(path) == IMMUTABLE


@pytest.mark.parametrize(
    "path",
    [
        "assets/logo-original.png",  # a word after the dash
        "jquery-3.6.0.min.js",  # a version
        "my-component.js",
        "bootstrap.bundle.min.js",
        "icon-MenuOpen.svg",  # CamelCase word outside a build folder
        "bg-1280x720.webp",  # image size
        "report-2024-01-01.pdf",  # date
        "data.20240101.json",  # digits only
        "book-section1.png",  # word + digit
        "font-awesome-4.7.0.css",
        "favicon.ico",
        "images/photo.jpg",
        "LICENSE-ORIGINAL.txt",  # upper-case word, not a script
        "Header-NavLinks.js",  # CamelCase word outside a build folder
        "index-DiwrgTda.png",  # letters-only token outside a build folder: not trusted
        "audio-mp3.zip",
        "styles-5INURT.css",  # too short
        "release-notes.txt",
        "abcdef12",
    ],
)
def test_not_fingerprinted_get_short_max_age(path: str) -> None:
    """Words, versions, dates and sizes are not hashes: a short max-age, never immutable."""
    assert not is_fingerprinted(path)
    assert default_cache_control(path) == SHORT


def test_entry_wins_over_fingerprint() -> None:
    """A hashed HTML file is still an entry file with no-cache."""
    assert default_cache_control("pages/about.3f2a9c1b.html") == NO_CACHE


def test_headers_defaults() -> None:
    """headers_for without rules gives the table type and the default cache-control."""
    assert headers_for("assets/index-DiwrgTda.js", (), ()) == Headers(
        content_type="text/javascript; charset=utf-8", cache_control=IMMUTABLE
    )


def test_rules_first_match_wins() -> None:
    """The first matching rule overrides the default; later matches are ignored."""
    cc = (
        Rule(pattern="*.png", value="public, max-age=60"),
        Rule(pattern="img/**", value="no-store"),
    )
    ct = (Rule(pattern="*.data", value="application/x-data"),)
    assert headers_for("img/a.png", ct, cc).cache_control == "public, max-age=60"
    assert headers_for("img/a.gif", ct, cc).cache_control == "no-store"
    assert headers_for("x/blob.data", ct, cc).content_type == "application/x-data"
    assert headers_for("x/blob.bin", ct, cc).content_type == OCTET_STREAM


def test_rule_overrides_entry_default() -> None:
    """A cache-control rule wins even over the no-cache of HTML."""
    cc = (Rule(pattern="*.html", value="public, max-age=600"),)
    assert headers_for("index.html", (), cc).cache_control == "public, max-age=600"


def test_anchored_rule_only_matches_at_root() -> None:
    """A pattern with a slash is anchored at the source folder."""
    cc = (Rule(pattern="assets/*.js", value="max-age=1"),)
    assert headers_for("assets/a.js", (), cc).cache_control == "max-age=1"
    assert headers_for("x/assets/a.js", (), cc).cache_control == SHORT


def test_named_types_without_extension() -> None:
    """Apple's association file (no extension) is served as JSON, and is an entry file."""
    path = ".well-known/apple-app-site-association"
    assert content_type_for(path) == "application/json"
    assert is_entry_file(path)


@pytest.mark.parametrize(
    ("template", "alphabet", "size", "at_least"),
    [
        (
            "assets/index-{}.js",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            8,
            0.9,
        ),
        (
            "_astro/page.{}.css",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            8,
            0.9,
        ),
        ("main-{}.js", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 8, 0.85),
        ("main.{}.js", "0123456789abcdef", 8, 0.95),
        ("static/media/logo.{}.png", "0123456789abcdef", 8, 0.95),
        ("main.{}.js", "0123456789abcdef", 20, 0.99),
    ],
)
def test_fingerprint_recognition_rate(
    template: str, alphabet: str, size: int, at_least: float
) -> None:
    """Random hashes in each build tool's format are recognised nearly always (seeded)."""
    import random

    rng = random.Random(0)
    names = [
        template.format("".join(rng.choice(alphabet) for _ in range(size))) for _ in range(2000)
    ]
    rate = sum(is_fingerprinted(n) for n in names) / len(names)
    assert rate >= at_least
