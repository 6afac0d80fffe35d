"""`make summaries`: every kind of job summary the program writes, rendered as GitHub does.

1. One sample per kind of summary: a deploy, a first deploy, no change, a dry run, long
   (folded) lists, and each family of error. Outcomes are made up; every error is made by
   the program's own code (settings, auth, S3, CloudFront, the deploy's own errors), so
   the words are the words users get.
2. Each summary's Markdown is rendered with markdown-it-py's `gfm-like` preset (tables,
   raw HTML such as `<details>`, bare links) into a page styled with GitHub's own
   Markdown stylesheet (`github-markdown-css` from npm, MIT, vendored beside this file).
3. `--screenshots` takes a PNG of each page with Debian's chromium, headless.
4. `--real` also deploys examples/site twice (a first deploy, then an edit) as the
   action, against local SeaweedFS and moto, and renders the real summary of the second
   run: that is the README's screenshot (`--readme` copies it to docs/summary.png).

Output in build/summaries/: `<kind>.md`, `<kind>.html`, `<kind>.png`, `index.html`.
`tests/unit/test_summaries.py` renders the same samples and checks their structure.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from markdown_it import MarkdownIt

from deployer.errors import ConfigError, DeployError, MaxDeleteExceeded, TransferError
from deployer.interface import INPUTS
from deployer.model import (
    Headers,
    InvalidationResult,
    LocalFile,
    Outcome,
    Plan,
    Reason,
    Retained,
    Upload,
)
from deployer.report import summary_markdown

REPO_ROOT = Path(__file__).resolve().parent.parent
CSS = (
    Path(__file__).resolve().parent / "vendor" / "github-markdown-css" / "github-markdown-light.css"
)
OUT = REPO_ROOT / "build" / "summaries"
README_IMAGE = REPO_ROOT / "docs" / "summary.png"
WIDTH = 860  # px: about the width of the summary pane of a GitHub Actions run
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)

HTML_HEADERS = Headers("text/html; charset=utf-8", "no-cache")
ASSET_HEADERS = Headers("text/javascript; charset=utf-8", "public, max-age=31536000, immutable")


@dataclass(frozen=True)
class Sample:
    """One summary: what happened and how it ended."""

    title: str
    outcome: Outcome
    error: DeployError | None = None
    bucket: str = "my-site-bucket"
    prefix: str = ""
    recorded: str = ""  # a summary already written by a real run

    def markdown(self) -> str:
        if self.recorded:
            return self.recorded
        return summary_markdown(
            self.outcome, bucket=self.bucket, prefix=self.prefix, error=self.error
        )


# -- made-up deploys ----------------------------------------------------------------------


def _file(key: str, size: int) -> LocalFile:
    headers = HTML_HEADERS if key.endswith(".html") else ASSET_HEADERS
    return LocalFile(key=key, where=f"/w/dist/{key}", size=size, md5="0" * 32, headers=headers)


def _up(key: str, size: int, reason: Reason = Reason.NEW) -> Upload:
    return Upload(_file(key, size), reason)


def _unchanged(count: int) -> tuple[LocalFile, ...]:
    return tuple(_file(f"images/photo-{i:03}.webp", 20_000) for i in range(count))


ASSETS = (
    _up("assets/index-B4x9Qe1z.css", 18_420),
    _up("assets/index-DiwrgTda.js", 142_310),
    _up("images/team-photo.png", 48_112),
)
ENTRIES = (
    _up("index.html", 2_104, Reason.CONTENT),
    _up("about/index.html", 1_877, Reason.CONTENT),
    _up("robots.txt", 67, Reason.HEADERS),
)
DELETED = ("assets/index-C1a2b3c4.js", "assets/index-Zz9y8x7w.css")
PATHS = ("/index.html", "/", "/about/index.html", "/about/", "/robots.txt")
DIST = ("E2ABCDEF123456",)


def _plan(
    assets: tuple[Upload, ...] = ASSETS,
    entries: tuple[Upload, ...] = ENTRIES,
    deletes: tuple[str, ...] = DELETED,
    unchanged: int = 41,
    invalidate: tuple[str, ...] = ("index.html", "about/index.html", "robots.txt"),
) -> Plan:
    return Plan(assets, entries, deletes, _unchanged(unchanged), invalidate)


def _sent(uploads: tuple[Upload, ...]) -> int:
    return sum(u.file.size for u in uploads if u.reason is not Reason.HEADERS)


def deployed() -> Sample:
    uploads = ASSETS + ENTRIES
    outcome = Outcome(
        plan=_plan(),
        uploaded=list(uploads),
        uploaded_bytes=_sent(uploads),
        deleted=list(DELETED),
        invalidation_paths=PATHS,
        invalidations=[InvalidationResult(DIST[0], "I2J3K4L5M6N7O8P9", PATHS, "InProgress")],
        distribution_ids=DIST,
        duration_s=2.41,
    )
    return Sample("A deploy: changed files, deletions, one invalidation", outcome)


def kept_assets() -> Sample:
    """A rebuild: the old chunks kept for open pages, an older build's pruned, pages linked."""
    uploads = ASSETS + ENTRIES
    week, now = 7 * 86400, 1_796_000_000
    pruned = ("assets/index-A0b1C2d3.js",)
    retained = tuple(
        Retained(key, now - 86400 * n, now - 86400 * n + week) for n, key in enumerate(DELETED)
    )
    plan = replace(
        _plan(deletes=("old-page.html", *pruned)),
        retained=retained,
        pruned=pruned,
    )
    outcome = Outcome(
        plan=plan,
        uploaded=list(uploads),
        uploaded_bytes=_sent(uploads),
        deleted=["old-page.html", *pruned],
        invalidation_paths=(*PATHS, "/old-page.html"),
        invalidations=[
            InvalidationResult(
                DIST[0], "I9K8L7M6N5O4P3Q2", (*PATHS, "/old-page.html"), "InProgress"
            )
        ],
        distribution_ids=DIST,
        duration_s=2.87,
        site_url="https://www.example.com",
    )
    return Sample("A rebuild: old assets kept for open pages, pages linked", outcome)


def first_deploy() -> Sample:
    uploads = tuple(_up(u.file.key, u.file.size) for u in ASSETS + ENTRIES)
    plan = Plan(uploads[:3], uploads[3:], (), (), ())
    outcome = Outcome(
        plan=plan,
        uploaded=list(uploads),
        uploaded_bytes=_sent(uploads),
        distribution_ids=DIST,
        duration_s=1.12,
    )
    return Sample("A first deploy: every file new, nothing to invalidate", outcome)


def no_change() -> Sample:
    plan = Plan((), (), (), _unchanged(47), ())
    outcome = Outcome(plan=plan, distribution_ids=DIST, duration_s=0.38)
    return Sample("Nothing changed", outcome)


def dry_run() -> Sample:
    outcome = Outcome(
        plan=_plan(),
        dry_run=True,
        invalidation_paths=PATHS,
        distribution_ids=DIST,
        duration_s=0.52,
    )
    return Sample("A dry run", outcome, prefix="preview/pr-42/")


def many_files() -> Sample:
    uploads = tuple(_up(f"assets/chunk-{i:03}-a1b2c3d4.js", 3_000 + i) for i in range(36))
    deletes = tuple(f"assets/chunk-{i:03}-99aa88bb.js" for i in range(24))
    paths = ("/blog/*", "/docs/*", "/index.html", "/")
    outcome = Outcome(
        plan=Plan(uploads, (), deletes, _unchanged(12), ()),
        uploaded=list(uploads),
        uploaded_bytes=_sent(uploads),
        deleted=list(deletes),
        invalidation_paths=paths,
        invalidations=[InvalidationResult(DIST[0], "I9Z8Y7X6W5V4U3T2", paths, "Completed")],
        distribution_ids=DIST,
        warnings=[
            "`assets/tmp/.DS_Store` was skipped: it matches a built-in exclusion (`.DS_Store`)."
        ],
        duration_s=8.9,
    )
    return Sample("Many files: long lists folded", outcome)


# -- errors, as the program makes them --------------------------------------------------


def _actions_env(**inputs: str) -> dict[str, str]:
    env = {spec.env_input: spec.default for spec in INPUTS}
    env.update({"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": tempfile.gettempdir()})
    env.update({"INPUT_" + name.upper(): value for name, value in inputs.items()})
    return env


def _raised(make: Callable[[], object]) -> DeployError:
    try:
        make()
    except DeployError as err:
        return err
    raise AssertionError("expected a DeployError")


def invalid_inputs() -> Sample:
    from deployer.settings import load_settings  # noqa: PLC0415

    env = _actions_env(bucket="s3://My_Site/app", concurrency="0", **{"source-dir": "dist-x"})
    err = _raised(lambda: load_settings({}, env, Path(tempfile.gettempdir())))
    assert isinstance(err, ConfigError)
    return Sample("Invalid inputs (before anything is sent)", Outcome(), err, bucket="")


def no_credentials() -> Sample:
    from deployer.auth import _no_credentials_message  # noqa: PLC0415
    from deployer.errors import CredentialsError  # noqa: PLC0415

    err = CredentialsError(
        _no_credentials_message({"GITHUB_ACTIONS": "true"}), title="No AWS credentials"
    )
    return Sample("No AWS credentials", Outcome(), err)


def oidc_unavailable() -> Sample:
    from deployer.auth import _assume_with_oidc  # noqa: PLC0415
    from deployer.settings import load_settings  # noqa: PLC0415

    env = _actions_env(
        bucket="my-site-bucket", **{"role-to-assume": "arn:aws:iam::123456789012:role/deploy"}
    )
    site = Path(tempfile.mkdtemp(prefix="summary-sample-"))
    (site / "index.html").write_text("hi")
    env["GITHUB_WORKSPACE"] = str(site)
    settings = load_settings({}, env, site)
    err = _raised(lambda: _assume_with_oidc(settings, env, lambda _secret: None))
    shutil.rmtree(site)
    return Sample("GitHub OIDC token not available", Outcome(), err)


def _s3_error(operation: str, code: str, status: int, key: str = "*") -> DeployError:
    from deployer.s3 import translate_client_error  # noqa: PLC0415

    return translate_client_error(
        operation,
        code,
        status,
        bucket="my-site-bucket",
        key=key,
        endpoint="https://s3.ap-northeast-2.amazonaws.com",
    )


def access_denied() -> Sample:
    return Sample(
        "Access denied (listing)", Outcome(), _s3_error("ListObjectsV2", "AccessDenied", 403)
    )


def bucket_not_found() -> Sample:
    return Sample("Bucket not found", Outcome(), _s3_error("ListObjectsV2", "NoSuchBucket", 404))


def wrong_region() -> Sample:
    return Sample("Wrong region", Outcome(), _s3_error("ListObjectsV2", "PermanentRedirect", 301))


def distribution_not_found() -> Sample:
    from botocore.exceptions import ClientError  # noqa: PLC0415

    from deployer.cloudfront import _translate  # noqa: PLC0415

    refused = ClientError({"Error": {"Code": "NoSuchDistribution"}}, "GetDistributionConfig")
    err = _translate(refused, "GetDistributionConfig", "E0NOSUCHDIST00")
    return Sample("Distribution not found", Outcome(), err)


def too_many_deletions() -> Sample:
    deletes = tuple(f"docs/v1/page-{i:03}.html" for i in range(300))
    plan = Plan((), (_up("index.html", 2_104, Reason.CONTENT),), deletes, _unchanged(20), ())
    outcome = Outcome(plan=plan, distribution_ids=DIST, duration_s=0.61)
    return Sample(
        "Too many deletions (refused before any write)", outcome, MaxDeleteExceeded(300, 256)
    )


def upload_failed() -> Sample:
    failed = [("assets/index-DiwrgTda.js", "InternalError after retries")]
    landed = (ASSETS[0], ASSETS[2])
    outcome = Outcome(
        plan=_plan(),
        uploaded=list(landed),
        uploaded_bytes=_sent(landed),
        failed=failed,
        distribution_ids=DIST,
        warnings=[
            "3 HTML and entry files were not uploaded (`index.html`, `about/index.html`, "
            "`robots.txt`) because some assets failed: the live pages keep referring to "
            "assets that exist.",
            "2 deletions were skipped because some uploads failed.",
        ],
        duration_s=64.2,
    )
    return Sample("An upload failed (S3 500 InternalError)", outcome, TransferError(failed))


def interrupted() -> Sample:
    landed = ASSETS[:1]
    outcome = Outcome(
        plan=_plan(), uploaded=list(landed), uploaded_bytes=_sent(landed), distribution_ids=DIST
    )
    err = DeployError(
        "The deploy was interrupted. Files that landed stay; run it again to finish "
        "(unchanged files are not uploaded again).",
        title="Interrupted",
    )
    return Sample("Interrupted", outcome, err)


def unexpected() -> Sample:
    err = DeployError(
        "Unexpected KeyError: 'Contents'. This is a bug in s3-cloudfront-deploy; re-run "
        "with `RUNNER_DEBUG=1` (or `--debug` locally) for a traceback and report it.",
        title="Unexpected error",
    )
    return Sample("A bug (unexpected error)", Outcome(), err)


SAMPLES: dict[str, Callable[[], Sample]] = {
    "deployed": deployed,
    "kept-assets": kept_assets,
    "first-deploy": first_deploy,
    "no-change": no_change,
    "dry-run": dry_run,
    "many-files": many_files,
    "invalid-inputs": invalid_inputs,
    "no-credentials": no_credentials,
    "oidc-unavailable": oidc_unavailable,
    "access-denied": access_denied,
    "bucket-not-found": bucket_not_found,
    "wrong-region": wrong_region,
    "distribution-not-found": distribution_not_found,
    "too-many-deletions": too_many_deletions,
    "upload-failed": upload_failed,
    "interrupted": interrupted,
    "unexpected": unexpected,
}


# -- rendering ------------------------------------------------------------------------------


def render(markdown: str) -> str:
    """HTML as GitHub renders a job summary: CommonMark + tables, raw HTML, bare links."""
    return str(MarkdownIt("gfm-like", {"html": True}).render(markdown))


def page(title: str, body: str) -> str:
    """A standalone page: the summary in GitHub's Markdown style, in a summary-like card."""
    css = CSS.read_text(encoding="utf-8")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{css}
body {{ margin: 0; background: #f6f8fa; }}
.card {{ box-sizing: border-box; width: {WIDTH}px; margin: 0; padding: 16px;
  background: #f6f8fa; }}
.markdown-body {{ box-sizing: border-box; border: 1px solid #d0d7de; border-radius: 6px;
  background: #ffffff; padding: 24px 32px; }}
</style></head>
<body><div class="card"><article class="markdown-body">
{body}</article></div>
<script>document.title = String(document.querySelector(".card").scrollHeight);</script>
</body></html>
"""


def _chromium(*args: str, profile: Path) -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise SystemExit("chromium not found: `apt-get install -y chromium` (Debian) first")
    done = subprocess.run(
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def screenshot(html_file: Path, png: Path) -> None:
    """A PNG of the whole card: one run to measure its height, one to take the picture."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        url = html_file.resolve().as_uri()
        dom = _chromium(
            "--dump-dom",
            "--virtual-time-budget=2000",
            f"--window-size={WIDTH},800",
            url,
            profile=Path(profile),
        )
        found = re.search(r"<title>(\d+)</title>", dom)
        height = min(int(found.group(1)) if found else 1200, 8000)
        _chromium(
            f"--screenshot={png.resolve()}",
            f"--window-size={WIDTH},{height}",
            url,
            profile=Path(profile),
        )


def write_all(samples: dict[str, Sample], out: Path, *, screenshots: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    links = []
    for name, sample in samples.items():
        markdown = sample.markdown()
        (out / f"{name}.md").write_text(markdown, encoding="utf-8")
        html_file = out / f"{name}.html"
        html_file.write_text(page(sample.title, render(markdown)), encoding="utf-8")
        if screenshots:
            screenshot(html_file, out / f"{name}.png")
        links.append(f'<li><a href="{name}.html">{html.escape(sample.title)}</a></li>')
        print(f"{name}: {html_file}" + (" (+ .png)" if screenshots else ""), flush=True)
    index = "<h1>Job summaries</h1><ul>" + "".join(links) + "</ul>"
    (out / "index.html").write_text(page("Job summaries", index), encoding="utf-8")


# -- a real summary, from a real deploy ---------------------------------------------------


def real_summary() -> Sample:
    """Deploy examples/site, edit a page and add an image, deploy again (as the action,
    against SeaweedFS and moto): the second run's summary, exactly as written."""
    from devtools.action import run_entrypoint  # noqa: PLC0415
    from devtools.demo import edit_site  # noqa: PLC0415
    from devtools.servers import create_distribution, moto_server, seaweedfs  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="s3cfd-summary-") as tmp:
        root = Path(tmp)
        with seaweedfs(root / "servers") as s3, moto_server(root / "servers") as aws:
            s3.client("s3").create_bucket(Bucket="my-site-bucket")
            distribution = create_distribution(aws, "my-site-bucket")
            workspace = root / "workspace"
            shutil.copytree(REPO_ROOT / "examples" / "site", workspace / "site")
            endpoints = {"s3": s3.endpoint, "cloudfront": aws.endpoint, "sts": aws.endpoint}
            inputs = {
                "aws-access-key-id": s3.access_key,
                "aws-secret-access-key": s3.secret_key,
                "aws-region": s3.region,
                "bucket": "my-site-bucket",
                "distribution-id": distribution,
                "source-dir": "site",
            }
            for run in (1, 2):
                if run == 2:
                    edit_site(workspace / "site")
                    (workspace / "site" / "sitemap.xml").unlink()
                result = run_entrypoint(
                    workspace, inputs, endpoints=endpoints, runner_dir=root / f"runner-{run}"
                )
                if result.returncode != 0:
                    raise SystemExit(f"the deploy failed:\n{result.describe()}")
    title = "A real deploy of examples/site (the second, incremental run)"
    return Sample(title, Outcome(), recorded=result.summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.summaries", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--screenshots", action="store_true", help="PNG of each page (chromium)")
    parser.add_argument("--real", action="store_true", help="also a real deploy's summary")
    parser.add_argument(
        "--readme", action="store_true", help="copy the real one to docs/summary.png"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    samples = {name: make() for name, make in SAMPLES.items()}
    if args.real or args.readme:
        samples["real-deploy"] = real_summary()
    write_all(samples, args.out, screenshots=args.screenshots or args.readme)
    if args.readme:
        shutil.copyfile(args.out / "real-deploy.png", README_IMAGE)
        print(f"README image: {README_IMAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
