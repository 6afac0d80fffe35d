"""Settings: precedence, normalisation and one clear problem per invalid input."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.errors import ConfigError
from deployer.interface import INPUTS
from deployer.settings import Rule, Settings, load_settings


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "index.html").write_text("<h1>hi</h1>")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("x")
    return tmp_path


def runner_env(workspace: Path, **inputs: str) -> dict[str, str]:
    """Every declared input present (empty when unset), as the runner passes them."""
    env = {spec.env_input: "" for spec in INPUTS}
    env.update(
        {"INPUT_BUCKET": "my-site", "GITHUB_WORKSPACE": str(workspace), "GITHUB_ACTIONS": "true"}
    )
    for name, value in inputs.items():
        env["INPUT_" + name.upper().replace("_", "-")] = value
    return env


def load(workspace: Path, **inputs: str) -> Settings:
    return load_settings({}, runner_env(workspace, **inputs), workspace)


def problems(workspace: Path, **inputs: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load(workspace, **inputs)
    return {p.input_name: p.problem for p in info.value.problems}


def test_defaults_when_every_input_is_empty(workspace: Path) -> None:
    """Empty inputs mean unset: the documented defaults apply."""
    s = load(workspace)
    assert s.bucket == "my-site"
    assert s.source_dir == workspace.resolve()
    assert s.destination_prefix == ""
    assert s.distribution_ids == ()
    assert s.delete_removed is True
    assert s.max_delete == 256
    assert s.keep_removed_assets == 7 * 86400
    assert s.invalidation == "changed"
    assert s.invalidation_max_paths == 15
    assert s.concurrency is None  # `auto`
    assert s.dry_run is False
    assert s.aws_region == "us-east-1"
    assert s.role_session_name == "s3-cloudfront-deploy"
    assert s.audience == "sts.amazonaws.com"


def test_settings_are_frozen(workspace: Path) -> None:
    """The model is immutable once built."""
    s = load(workspace)
    with pytest.raises(ValueError, match="frozen"):
        s.bucket = "other"


def test_flag_beats_input_beats_env(workspace: Path) -> None:
    """Precedence: flag, then INPUT_*, then S3CFD_* environment."""
    env = runner_env(workspace)
    env["INPUT_CONCURRENCY"] = "8"
    env["S3CFD_CONCURRENCY"] = "4"
    env["S3CFD_MAX_DELETE"] = "7"
    assert load_settings({"concurrency": "2"}, env, workspace).concurrency == 2
    assert load_settings({}, env, workspace).concurrency == 8
    assert load_settings({}, env, workspace).max_delete == 7


@pytest.mark.parametrize(("raw", "expected"), [("auto", None), (" Auto ", None), ("256", 256)])
def test_concurrency_auto_or_a_number(workspace: Path, raw: str, expected: int | None) -> None:
    """`auto` (any case) is the adaptive default (None); a number up to 256 is fixed."""
    env = runner_env(workspace)
    env["INPUT_CONCURRENCY"] = raw
    assert load_settings({}, env, workspace).concurrency == expected


def test_region_falls_back_to_aws_variables(workspace: Path) -> None:
    """AWS_REGION, then AWS_DEFAULT_REGION, then us-east-1."""
    env = runner_env(workspace)
    env["AWS_DEFAULT_REGION"] = "eu-west-1"
    assert load_settings({}, env, workspace).aws_region == "eu-west-1"
    env["AWS_REGION"] = "ap-northeast-2"
    assert load_settings({}, env, workspace).aws_region == "ap-northeast-2"


def test_source_dir_relative_to_workspace(workspace: Path) -> None:
    """`source-dir` is resolved inside the workspace."""
    assert load(workspace, source_dir="dist").source_dir == (workspace / "dist").resolve()


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("missing", "does not exist"),
        ("file.txt", "is a file"),
        ("empty", "is empty"),
        ("..", "outside the workspace"),
        ("/etc", "outside the workspace"),
    ],
)
def test_bad_source_dir(workspace: Path, source: str, fragment: str) -> None:
    """A missing, file, empty or escaping `source-dir` is refused with a fix."""
    assert fragment in problems(workspace, source_dir=source)["source-dir"]


def test_source_dir_symlink_out_of_workspace(
    workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A symlink that points outside the workspace is outside it."""
    outside = tmp_path_factory.mktemp("outside")
    (outside / "a.html").write_text("a")
    (workspace / "link").symlink_to(outside)
    assert "outside the workspace" in problems(workspace, source_dir="link")["source-dir"]


@pytest.mark.parametrize(
    ("bucket", "fragment"),
    [
        ("My_Bucket", "naming rules"),
        ("ab", "naming rules"),
        ("a" * 64, "naming rules"),
        ("my..bucket", "adjacent periods"),
        ("192.168.1.1", "IP address"),
        ("xn--bucket", "reserved"),
        ("bucket-s3alias", "reserved"),
        ("s3://my-site/app", "use `bucket: my-site`"),
        ("-bucket", "naming rules"),
    ],
)
def test_bad_bucket(workspace: Path, bucket: str, fragment: str) -> None:
    """Bucket names follow S3's rules; an S3 URL gets the bare-name fix."""
    assert fragment in problems(workspace, bucket=bucket)["bucket"]


def test_bucket_is_required(workspace: Path) -> None:
    """An empty `bucket` is the one required input."""
    assert "is required" in problems(workspace, bucket="")["bucket"]


def test_distribution_ids_split_and_dedup(workspace: Path) -> None:
    """Comma or newline separated, de-duplicated, no leading E required."""
    s = load(workspace, distribution_id="E2ABCDEF123456, K1234567890\nE2ABCDEF123456\n")
    assert s.distribution_ids == ("E2ABCDEF123456", "K1234567890")


@pytest.mark.parametrize(
    "dist", ["e2abcdef123456", "E2ABC", "d111111abcdef8.cloudfront.net", "E2ABCDEF1234567890123"]
)
def test_bad_distribution_id(workspace: Path, dist: str) -> None:
    """Lower case, short, long IDs and domain names are refused."""
    assert (
        "not a CloudFront distribution ID"
        in problems(workspace, distribution_id=dist)["distribution-id"]
    )


@pytest.mark.parametrize("region", ["Seoul", "us-east", "US-EAST-1", "ap_northeast_2"])
def test_bad_region(workspace: Path, region: str) -> None:
    """Region must be a code such as ap-northeast-2."""
    assert "region code" in problems(workspace, aws_region=region)["aws-region"]


@pytest.mark.parametrize(
    "region", ["us-east-1", "ap-northeast-2", "us-gov-west-1", "eu-central-2", "auto"]
)
def test_good_region(workspace: Path, region: str) -> None:
    """Real region codes are accepted."""
    assert load(workspace, aws_region=region).aws_region == region


@pytest.mark.parametrize(("raw", "value"), [("TRUE", True), ("False", False), (" true ", True)])
def test_booleans_any_case(workspace: Path, raw: str, value: bool) -> None:
    """`true`/`false` in any case."""
    assert load(workspace, dry_run=raw).dry_run is value


@pytest.mark.parametrize("raw", ["yes", "1", "on", "tru"])
def test_booleans_nothing_else(workspace: Path, raw: str) -> None:
    """Other spellings are refused, naming the input."""
    assert "use `true` or `false`" in problems(workspace, delete_removed=raw)["delete-removed"]


@pytest.mark.parametrize(
    ("name", "raw", "fragment"),
    [
        ("concurrency", "0", "use `auto` (the default) or a number from 1 to 256"),
        ("concurrency", "257", "use `auto` (the default) or a number from 1 to 256"),
        ("concurrency", "ten", "neither `auto` nor a whole number"),
        ("max_delete", "-1", "from 0 to"),
        ("invalidation_max_paths", "0", "from 1 to 3000"),
        ("invalidation_max_paths", "3001", "from 1 to 3000"),
        ("role_duration_seconds", "60", "from 900 to 43200"),
    ],
)
def test_integer_ranges(workspace: Path, name: str, raw: str, fragment: str) -> None:
    """Integers are whole numbers within their documented range."""
    assert fragment in problems(workspace, **{name: raw})[name.replace("_", "-")]


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("7d", 604800), ("36h", 129600), ("90s", 90), ("15m", 900), ("0", 0), (" 2D ", 172800)],
)
def test_keep_removed_assets_durations(workspace: Path, raw: str, seconds: int) -> None:
    """`keep-removed-assets` is a number with a unit `s`, `m`, `h`, `d`, or `0`."""
    assert load(workspace, keep_removed_assets=raw).keep_removed_assets == seconds


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("7", "add a unit, e.g. `7d`"),
        ("1w", "a number and a unit `s`, `m`, `h` or `d`"),
        ("-1d", "a number and a unit"),
        ("1.5d", "a number and a unit"),
        ("400d", "at most `366d`"),
    ],
)
def test_keep_removed_assets_refused(workspace: Path, raw: str, fragment: str) -> None:
    """A bad duration names the input and the fix."""
    message = problems(workspace, keep_removed_assets=raw)["keep-removed-assets"]
    assert fragment in message and f"`{raw}`" in message


def test_invalidation_mode(workspace: Path) -> None:
    """`invalidation` is changed, all or none (any case)."""
    assert load(workspace, invalidation="ALL").invalidation == "all"
    assert "`changed`, `all`, `none`" in problems(workspace, invalidation="some")["invalidation"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ""),
        ("/", ""),
        ("app", "app/"),
        ("/app/v2/", "app/v2/"),
        (" preview/pr-1 ", "preview/pr-1/"),
    ],
)
def test_prefix_normalised(workspace: Path, raw: str, expected: str) -> None:
    """The prefix loses leading slashes and gains one trailing slash."""
    assert load(workspace, destination_prefix=raw).destination_prefix == expected


@pytest.mark.parametrize("raw", ["../app", "app/../x", "a//b", "./a", "s3://b/a", "a\\b"])
def test_bad_prefix(workspace: Path, raw: str) -> None:
    """`..`, `.`, empty segments, URLs and backslashes are refused."""
    assert "destination-prefix" in problems(workspace, destination_prefix=raw)


def test_rules_parsed(workspace: Path) -> None:
    """`PATTERN: VALUE` lines; blanks and comments skipped; first colon splits."""
    s = load(
        workspace, cache_control="# comment\n*.html: no-cache\n\nassets/**: public, max-age=60\n"
    )
    assert s.cache_control == (
        Rule(pattern="*.html", value="no-cache"),
        Rule(pattern="assets/**", value="public, max-age=60"),
    )


@pytest.mark.parametrize("raw", ["*.html", "*.html:", ": no-cache", "[abc: x"])
def test_bad_rules(workspace: Path, raw: str) -> None:
    """A rule without a pattern, a value, or with a broken glob names its line."""
    assert "line 1" in problems(workspace, content_type=raw)["content-type"]


def test_bad_exclude(workspace: Path) -> None:
    """A malformed exclude glob is refused."""
    assert "unclosed" in problems(workspace, exclude="*.map\nsrc/[abc")["exclude"]


def test_negated_pattern_refused(workspace: Path) -> None:
    """`!pattern` is not silently taken literally: it is refused with the fix."""
    assert "negation is not supported" in problems(workspace, exclude="!keep.html")["exclude"]
    assert "negation" in problems(workspace, cache_control="!*.html: no-cache")["cache-control"]


def test_key_without_secret(workspace: Path) -> None:
    """A key ID without its secret names the missing input."""
    found = problems(workspace, aws_access_key_id="AKIAEXAMPLE")
    assert "is missing" in found["aws-secret-access-key"]


def test_secret_without_key(workspace: Path) -> None:
    """A secret without its key ID is refused too."""
    found = problems(workspace, aws_secret_access_key="s3cr3t-value")
    assert "`aws-access-key-id` is not" in found["aws-secret-access-key"]


def test_secret_with_newline_is_refused_without_echo(workspace: Path) -> None:
    """A pasted secret with a trailing newline is refused, and never echoed."""
    secret = "abcDEF123secret\n"
    with pytest.raises(ConfigError) as info:
        load(workspace, aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key=secret)
    assert "whitespace" in str(info.value)
    assert "abcDEF123secret" not in str(info.value)
    assert "abcDEF123secret" not in repr(info.value.problems)


def test_secrets_are_secretstr(workspace: Path) -> None:
    """Secrets print as stars and are available to `secrets()` for masking."""
    s = load(workspace, aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="topsecret")
    assert "topsecret" not in repr(s)
    assert "topsecret" not in str(s.model_dump())
    assert s.secrets() == ("AKIAEXAMPLE", "topsecret")


@pytest.mark.parametrize("role", ["deploy-site", "arn:aws:iam::123:role/x", "arn:aws:s3:::bucket"])
def test_bad_role(workspace: Path, role: str) -> None:
    """`role-to-assume` must be a full role ARN."""
    assert "IAM role ARN" in problems(workspace, role_to_assume=role)["role-to-assume"]


def test_bad_endpoint(workspace: Path) -> None:
    """`endpoint-url` must be http(s)."""
    assert "http(s) URL" in problems(workspace, endpoint_url="localhost:9000")["endpoint-url"]
    assert load(workspace, endpoint_url="http://127.0.0.1:9000/").endpoint_url == (
        "http://127.0.0.1:9000"
    )
    assert load(workspace, endpoint_url="http://[::1]:9000").endpoint_url == "http://[::1]:9000"


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:port", "https://:443"])
def test_an_endpoint_without_a_usable_host_or_port_is_an_input_error(
    workspace: Path, url: str
) -> None:
    """Such URLs pass a loose pattern, and used to end later in an unexpected error."""
    assert "http(s) URL" in problems(workspace, endpoint_url=url)["endpoint-url"]


def test_all_problems_at_once(workspace: Path) -> None:
    """Every invalid input is reported in one error, each by name."""
    found = problems(
        workspace,
        bucket="Bad_Bucket",
        aws_region="Seoul",
        dry_run="yes",
        concurrency="0",
        source_dir="missing",
        distribution_id="nope",
    )
    assert set(found) == {
        "bucket",
        "aws-region",
        "dry-run",
        "concurrency",
        "source-dir",
        "distribution-id",
    }


def test_run_identity(workspace: Path) -> None:
    """Run id and attempt come from the runner; locally each run gets a fresh id."""
    env = runner_env(workspace)
    first = load_settings({}, env, workspace).run_id
    assert first.startswith("local-")
    assert load_settings({}, env, workspace).run_id != first
    env.update({"GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "3"})
    s = load_settings({}, env, workspace)
    assert (s.run_id, s.run_attempt) == ("42", "3")


def test_record_key_under_prefix(workspace: Path) -> None:
    """The deploy record lives under the destination prefix."""
    assert load(workspace, destination_prefix="app").record_key == "app/.s3-cloudfront-deploy.json"
