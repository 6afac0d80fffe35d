"""The CloudFront Function the READMEs give for folder URLs, run with Node.js over URLs.

CloudFront Functions are JavaScript (runtime cloudfront-js-2.0); the handler gets
`event.request` and returns the request, with `uri` percent-encoded as the viewer sent it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = ROOT / "docs" / "examples" / "cloudfront-index-rewrite.js"

# Loads the file as CloudFront does (a script defining `handler`), calls it per URI.
RUNNER = """
const fs = require('fs');
const handler = new Function(fs.readFileSync(process.argv[1], 'utf8') + '\\nreturn handler;')();
const out = JSON.parse(fs.readFileSync(0, 'utf8')).map(function (uri) {
  const request = {method: 'GET', uri: uri, querystring: {v: {value: '2'}}, headers: {},
                   cookies: {}};
  const result = handler({version: '1.0', context: {eventType: 'viewer-request'},
                          viewer: {ip: '192.0.2.1'}, request: request});
  return [result === request, result.uri, JSON.stringify(result.querystring)];
});
console.log(JSON.stringify(out));
"""

CASES = {
    "/": "/index.html",
    "/about/": "/about/index.html",
    "/about": "/about/index.html",
    "/about/index.html": "/about/index.html",
    "/blog/2024/first-post/": "/blog/2024/first-post/index.html",
    "/blog/2024/first-post": "/blog/2024/first-post/index.html",
    "/assets/index-DiwrgTda.js": "/assets/index-DiwrgTda.js",
    "/img/logo.png": "/img/logo.png",
    "/favicon.ico": "/favicon.ico",
    "/robots.txt": "/robots.txt",
    "/v1.2/guide": "/v1.2/guide/index.html",  # a dot in a folder name does not count
    "/v1.2/": "/v1.2/index.html",
    "/.well-known/security.txt": "/.well-known/security.txt",
    "/%EC%86%8C%EA%B0%9C/": "/%EC%86%8C%EA%B0%9C/index.html",  # /소개/, percent-encoded
    "/dashboard/settings": "/dashboard/settings/index.html",  # SPA route: error page next
    "/404.html": "/404.html",
}


def run_function(uris: list[str]) -> list[list[object]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    done = subprocess.run(
        [node, "-e", RUNNER, str(FUNCTION)],
        input=json.dumps(uris),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: list[list[object]] = json.loads(done.stdout)
    return result


def test_folder_urls_map_to_index_html_and_files_pass_through() -> None:
    """Each URI becomes the key S3 holds; the same request object comes back, query kept."""
    results = run_function(list(CASES))
    for (uri, expected), (same, got, query) in zip(CASES.items(), results, strict=True):
        assert got == expected, uri
        assert same is True, uri
        assert query == '{"v":{"value":"2"}}', uri


@pytest.mark.parametrize("name", ["README.md", "README.ko.md"])
def test_readme_shows_the_tested_code(name: str) -> None:
    """The `js` block in each README is the tested file, byte for byte."""
    text = (ROOT / name).read_text(encoding="utf-8")
    blocks = re.findall(r"```js\n(.*?)```", text, re.DOTALL)
    assert blocks == [FUNCTION.read_text(encoding="utf-8")]
