"""Content-Type and Cache-Control for every published file (pure, no I/O).

Content-Type comes from a built-in table keyed by file extension, never from the
host's mime files (`mimetypes` reads `/etc/mime.types`, which differs between a
developer's laptop, the runner and the container image and still maps `.js` to
`application/javascript` on some systems). Text types carry `charset=utf-8`.
Unknown extensions get `application/octet-stream`.

Cache-Control defaults, in this order (a `cache-control` rule, first match wins,
overrides all of them):

1. HTML and other entry files (`is_entry_file`): `no-cache`. The browser keeps a
   copy but revalidates it on every use (a cheap 304), so a new deploy is seen at
   once. Entry files are the files whose names never change but that point at
   other files: pages, `sw.js` / `service-worker.js`, web manifests, `robots.txt`,
   sitemaps, feeds, `.well-known/*`.
2. Fingerprinted build assets (`is_fingerprinted`): `public, max-age=31536000,
   immutable`. Their name changes whenever their bytes change, so a year is safe
   and the browser never even revalidates.
3. Everything else: `public, max-age=300`. These files keep their name across
   deploys (images in `public/`, `favicon.ico`, un-hashed scripts), so a browser
   copy may be stale after a deploy; five minutes bounds that window (the HTML is
   always fresh, and an un-hashed script it loads is at most five minutes old)
   while still sparing repeated downloads within one visit. CloudFront itself is
   refreshed by the invalidation, not by this max-age.

The fingerprint heuristic errs on the safe side: a miss costs a 5-minute cache
instead of a year; a false hit could pin a stale file in browsers for a year, so
words (`logo-original.png`, `my-component.js`), versions (`jquery-3.6.0.min.js`),
dates and image sizes (`bg-1280x720.webp`) are not treated as hashes.
"""

from __future__ import annotations

import re

from deployer.globs import compile_glob
from deployer.model import Headers
from deployer.settings import Rule

NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"
OCTET_STREAM = "application/octet-stream"

_UTF8 = "; charset=utf-8"

# Extension (lower case, without the dot) -> Content-Type.
CONTENT_TYPES: dict[str, str] = {
    # Pages and documents
    "html": "text/html" + _UTF8,
    "htm": "text/html" + _UTF8,
    "xhtml": "application/xhtml+xml" + _UTF8,
    "txt": "text/plain" + _UTF8,
    "text": "text/plain" + _UTF8,
    "md": "text/markdown" + _UTF8,
    "markdown": "text/markdown" + _UTF8,
    "csv": "text/csv" + _UTF8,
    "tsv": "text/tab-separated-values" + _UTF8,
    "ics": "text/calendar" + _UTF8,
    "vtt": "text/vtt" + _UTF8,
    "srt": "text/plain" + _UTF8,
    "xml": "application/xml" + _UTF8,
    "xsl": "application/xml" + _UTF8,
    "xslt": "application/xslt+xml" + _UTF8,
    "rss": "application/rss+xml" + _UTF8,
    "atom": "application/atom+xml" + _UTF8,
    "pdf": "application/pdf",
    "rtf": "application/rtf",
    "epub": "application/epub+zip",
    # Code and data
    "js": "text/javascript" + _UTF8,
    "mjs": "text/javascript" + _UTF8,
    "cjs": "text/javascript" + _UTF8,
    "jsx": "text/javascript" + _UTF8,
    "ts": "text/plain" + _UTF8,  # source, not served as a script (`video/mp2t` is wrong here)
    "tsx": "text/plain" + _UTF8,
    "css": "text/css" + _UTF8,
    "json": "application/json" + _UTF8,
    "jsonld": "application/ld+json" + _UTF8,
    "geojson": "application/geo+json" + _UTF8,
    "topojson": "application/json" + _UTF8,
    "map": "application/json" + _UTF8,
    "webmanifest": "application/manifest+json" + _UTF8,
    "wasm": "application/wasm",
    "yaml": "application/yaml" + _UTF8,
    "yml": "application/yaml" + _UTF8,
    "toml": "application/toml" + _UTF8,
    "wat": "text/plain" + _UTF8,
    "glsl": "text/plain" + _UTF8,
    # Images
    "svg": "image/svg+xml" + _UTF8,
    "svgz": "image/svg+xml",
    "avif": "image/avif",
    "webp": "image/webp",
    "png": "image/png",
    "apng": "image/apng",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "jpe": "image/jpeg",
    "jfif": "image/jpeg",
    "pjpeg": "image/jpeg",
    "gif": "image/gif",
    "ico": "image/vnd.microsoft.icon",
    "cur": "image/x-icon",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "heic": "image/heic",
    "heif": "image/heif",
    "jxl": "image/jxl",
    # Fonts
    "woff2": "font/woff2",
    "woff": "font/woff",
    "ttf": "font/ttf",
    "otf": "font/otf",
    "ttc": "font/collection",
    "eot": "application/vnd.ms-fontobject",
    # Audio and video
    "mp4": "video/mp4",
    "m4v": "video/mp4",
    "webm": "video/webm",
    "ogv": "video/ogg",
    "mov": "video/quicktime",
    "m3u8": "application/vnd.apple.mpegurl",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "oga": "audio/ogg",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mid": "audio/midi",
    "midi": "audio/midi",
    # 3D
    "glb": "model/gltf-binary",
    "gltf": "model/gltf+json" + _UTF8,
    "obj": "model/obj",
    "stl": "model/stl",
    "usdz": "model/vnd.usdz+zip",
    # Archives and binaries
    "zip": "application/zip",
    "gz": "application/gzip",
    "tgz": "application/gzip",
    "tar": "application/x-tar",
    "bz2": "application/x-bzip2",
    "xz": "application/x-xz",
    "7z": "application/x-7z-compressed",
    "br": "application/octet-stream",
    "zst": "application/zstd",
    "bin": OCTET_STREAM,
    "exe": "application/vnd.microsoft.portable-executable",
    "dmg": "application/x-apple-diskimage",
    "apk": "application/vnd.android.package-archive",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text",
    # Certificates and keys that sites publish on purpose
    "pem": "application/x-pem-file",
    "crt": "application/x-x509-ca-cert",
    "pgp": "application/pgp-signature",
    "asc": "application/pgp-signature",
    "sig": "application/pgp-signature",
}

# Files that must reach users at once after a deploy: uploaded in the second phase,
# served with `no-cache`. Matched on the file name at any depth.
ENTRY_NAMES = frozenset(
    {
        "sw.js",
        "service-worker.js",
        "serviceworker.js",
        "registersw.js",  # vite-plugin-pwa
        "manifest.json",
        "manifest.webmanifest",
        "site.webmanifest",
        "asset-manifest.json",  # create-react-app
        "browserconfig.xml",
        "robots.txt",
        "humans.txt",
        "ads.txt",
        "app-ads.txt",
        "security.txt",
        "crossdomain.xml",
        "rss.xml",
        "atom.xml",
        "feed.xml",
        "feed.json",
        "index.xml",
        "opensearch.xml",
        "version.json",
        "page-data.json",  # Gatsby: points at hashed chunks
        "app-data.json",
    }
)
_ENTRY_EXTENSIONS = (".html", ".htm", ".xhtml", ".webmanifest")
_SITEMAP_RE = re.compile(r"^sitemap[\w.-]*\.xml(\.gz)?$")

# Folders whose whole content is fingerprinted by the framework (immutable by contract).
_IMMUTABLE_DIRS = ("_next/static/", "_app/immutable/")
# Folders where build tools put hashed output; only there is a hash made of letters
# alone (Vite's `index-DiwrgTda.js`) believed, since elsewhere it could be a word.
_HASHED_OUTPUT_DIRS = frozenset(
    {"assets", "_astro", "_nuxt", "static", "chunks", "immutable", "js", "css", "media", "build"}
)

_CODE_EXTENSIONS = (".js", ".mjs", ".cjs", ".css", ".js.map", ".mjs.map", ".css.map")
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_-]+$")
_HEX = re.compile(r"^[0-9a-f]+$")
_DIMENSIONS = re.compile(r"^\d+x\d+$")


# Well-known names without an extension whose consumers require a type.
_NAMED_TYPES = {
    "apple-app-site-association": "application/json",  # iOS universal links
    "apple-developer-merchantid-domain-association": "text/plain" + _UTF8,  # Apple Pay
}


def content_type_for(rel_path: str) -> str:
    """The built-in Content-Type for a file name (by its last extension)."""
    name = rel_path.rsplit("/", 1)[-1]
    if name in _NAMED_TYPES:
        return _NAMED_TYPES[name]
    dot = name.rfind(".")
    if dot <= 0:  # no extension, or a dotfile such as `.htaccess`
        return OCTET_STREAM
    return CONTENT_TYPES.get(name[dot + 1 :].lower(), OCTET_STREAM)


def is_entry_file(rel_path: str) -> bool:
    """True for HTML and other entry files: second upload phase, `no-cache`."""
    low = rel_path.lower()
    name = low.rsplit("/", 1)[-1]
    if name.endswith(_ENTRY_EXTENSIONS):
        return True
    if name in ENTRY_NAMES or _SITEMAP_RE.match(name):
        return True
    return low.startswith(".well-known/") or "/.well-known/" in low


def _classes(token: str) -> tuple[bool, bool, bool, int]:
    """(has upper, has lower, has digit, number of character-class changes)."""
    upper = lower = digit = False
    changes = 0
    last = ""
    for ch in token:
        if "A" <= ch <= "Z":
            cls, upper = "U", True
        elif "a" <= ch <= "z":
            cls, lower = "L", True
        elif "0" <= ch <= "9":
            cls, digit = "D", True
        else:
            cls = "O"
        if last and cls != last:
            changes += 1
        last = cls
    return upper, lower, digit, changes


def _is_hash(token: str, *, in_hashed_dir: bool, is_code: bool) -> bool:
    """Does `token` look like a content hash rather than a word, a version or a size?

    Hashes made of letters alone are believed only where build tools put them, since
    elsewhere such a token is more likely a word: mixed case (Vite's `DiwrgTda`, not
    `MenuOpen`) in a build output folder (`assets/`, `_astro/`...), upper case only
    (esbuild's `ABCDEFGH`, not `ORIGINAL`) there or in a script or stylesheet name.
    """
    if not 8 <= len(token) <= 64 or not _TOKEN_CHARS.match(token):
        return False
    if _DIMENSIONS.match(token):
        return False
    upper, lower, digit, changes = _classes(token)
    if digit and (upper or lower):
        if _HEX.match(token):  # lower-case hex holding digits and letters
            return True
        # Digits and letters interleaved (`5XQZ3ABC`, `Cz3kQ1a9`), not a word and a
        # number side by side (`section1`, `chapter12`).
        return changes >= 2
    if digit:
        return False
    if upper and lower:
        return in_hashed_dir and changes >= 3 and len(token) <= 12
    return upper and len(token) == 8 and (in_hashed_dir or is_code)  # esbuild base32


def is_fingerprinted(rel_path: str) -> bool:
    """True when the file name carries a content hash (or the folder is hashed by contract)."""
    low = rel_path.lower()
    if low.startswith(_IMMUTABLE_DIRS) or any(f"/{d}" in low for d in _IMMUTABLE_DIRS):
        return True
    folder, _, name = rel_path.rpartition("/")
    is_code = name.lower().endswith(_CODE_EXTENSIONS)
    in_hashed_dir = any(part.lower() in _HASHED_OUTPUT_DIRS for part in folder.split("/"))
    parts = name.split(".")
    if len(parts) < 2:
        return False
    stem_parts = parts[:-1]  # the last part is the extension
    for index, part in enumerate(stem_parts):
        # `[name].[hash].js` (webpack, Parcel, CRA, Astro): a whole dot-separated part,
        # but not the first (that is the name itself) unless it is a long hex hash.
        hex_name = index == 0 and len(part) >= 16 and _HEX.match(part) is not None
        if (index > 0 or hex_name) and _is_hash(part, in_hashed_dir=in_hashed_dir, is_code=is_code):
            return True
        # `[name]-[hash].js` (Vite, Rollup, esbuild, Gatsby): the tail after the last
        # `-` or `_` separator; Rollup hashes are 8 characters and may contain `-`/`_`.
        for size in (8, 10, 12, 16, 20, 32, 40, 64):
            if len(part) > size and part[-size - 1] in "-_":
                tail = part[-size:]
                if size != 8 and not _HEX.match(tail):
                    continue
                if _is_hash(tail, in_hashed_dir=in_hashed_dir, is_code=is_code):
                    return True
    return False


def default_cache_control(rel_path: str) -> str:
    """The built-in Cache-Control (see the module docstring for the reasoning)."""
    if is_entry_file(rel_path):
        return NO_CACHE
    if is_fingerprinted(rel_path):
        return IMMUTABLE
    return SHORT


def _first_match(rel_path: str, rules: tuple[Rule, ...]) -> str | None:
    for rule in rules:
        if compile_glob(rule.pattern)(rel_path):
            return rule.value
    return None


def headers_for(
    rel_path: str,
    content_type_rules: tuple[Rule, ...],
    cache_control_rules: tuple[Rule, ...],
) -> Headers:
    """Headers for a file, `rel_path` relative to `source-dir`; rules win over defaults."""
    content_type = _first_match(rel_path, content_type_rules) or content_type_for(rel_path)
    cache_control = _first_match(rel_path, cache_control_rules) or default_cache_control(rel_path)
    pair = (content_type, cache_control)
    shared = _SHARED_HEADERS.get(pair)
    if shared is None:
        shared = _SHARED_HEADERS.setdefault(pair, Headers(content_type, cache_control))
    return shared


# One Headers object per distinct pair (there are a handful), shared by every file that
# has it: at 20,000 files a Headers per file was ~100 bytes each of the peak memory.
_SHARED_HEADERS: dict[tuple[str, str], Headers] = {}
