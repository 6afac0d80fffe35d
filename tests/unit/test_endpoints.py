"""endpoints.s3_target: the bucket address resolved without botocore equals botocore's own."""

from __future__ import annotations

import os
from pathlib import Path

import botocore.session
import pytest

from deployer.aws import prepare_session, s3_client
from deployer.endpoints import (
    BOTOCORE_ENDPOINT_VARIABLES,
    S3_ENDPOINT_VARIABLES,
    s3_endpoint,
    s3_target,
)
from deployer.s3 import _probe_target
from deployer.s3wire import Target
from deployer.settings import Settings, load_settings


def settings(tmp_path: Path, bucket: str, region: str, endpoint: str | None) -> Settings:
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    flags = {"bucket": bucket, "aws-region": region}
    if endpoint:
        flags["endpoint-url"] = endpoint
    return load_settings(flags, {}, tmp_path)


def botocores(settings: Settings) -> Target | None:
    """Where botocore's client (configured as the deploy configures it) sends the bucket."""
    session = prepare_session(botocore.session.Session())
    session.set_credentials("AKIAEXAMPLE", "secret")
    return _probe_target(s3_client(session, settings, env={}), settings.bucket)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """botocore reads the process environment: keep endpoint and config variables out."""
    for name in (
        *S3_ENDPOINT_VARIABLES,
        *BOTOCORE_ENDPOINT_VARIABLES,
        "AWS_CONFIG_FILE",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.mark.parametrize(
    ("bucket", "region", "endpoint"),
    [
        ("my-site", "us-east-1", None),
        ("my-site", "eu-west-1", None),
        ("site-2026", "ap-northeast-2", None),
        ("www.example.com", "eu-central-1", None),  # dots: path style on the regional host
        ("www.example.com", "us-east-1", None),
        ("my-site", "us-east-1", "http://127.0.0.1:8333"),
        ("my-site", "auto", "https://acct.r2.cloudflarestorage.com"),
        ("my-site", "us-east-1", "http://user:pa55@127.0.0.1:9000/"),
        ("my-site", "eu-west-1", "https://storage.example.com:8443/s3/"),
    ],
)
def test_own_resolution_equals_botocores(
    tmp_path: Path, bucket: str, region: str, endpoint: str | None
) -> None:
    wanted = settings(tmp_path, bucket, region, endpoint)
    ours = s3_target(wanted, {"HOME": str(tmp_path / "home")})
    assert ours is not None
    assert ours == botocores(wanted)
    assert "pa55" not in ours.netloc


@pytest.mark.parametrize(
    ("region", "env"),
    [
        ("us-gov-west-1", {}),
        ("cn-north-1", {}),
        ("us-east-1", {"AWS_USE_FIPS_ENDPOINT": "true"}),
        ("us-east-1", {"AWS_USE_DUALSTACK_ENDPOINT": "true"}),
        ("us-east-1", {"AWS_PROFILE": "deploy"}),
        ("us-east-1", {"AWS_S3_US_EAST_1_REGIONAL_ENDPOINT": "regional"}),
    ],
)
def test_botocore_decides_where_its_rules_differ(
    tmp_path: Path, region: str, env: dict[str, str]
) -> None:
    """Other partitions, FIPS, dual-stack and profiles: no own resolution (None)."""
    assert s3_target(settings(tmp_path, "my-site", region, None), env) is None


def test_an_aws_config_file_leaves_it_to_botocore(tmp_path: Path) -> None:
    """A non-empty config file may set endpoints or FIPS; an empty one (/dev/null) may not."""
    wanted = settings(tmp_path, "my-site", "us-east-1", None)
    config = tmp_path / "config"
    config.write_text("[default]\nuse_fips_endpoint = true\n")
    assert s3_target(wanted, {"AWS_CONFIG_FILE": str(config)}) is None
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "config").write_text("[default]\nregion = eu-west-1\n")
    assert s3_target(wanted, {"HOME": str(home)}) is None
    assert s3_target(wanted, {"AWS_CONFIG_FILE": "/dev/null"}) is not None
    # A custom endpoint is the client's own setting: config files do not change it.
    custom = settings(tmp_path, "my-site", "us-east-1", "http://127.0.0.1:9")
    assert s3_target(custom, {"AWS_CONFIG_FILE": str(config)}) is not None


def test_endpoint_variables_count_like_the_input(tmp_path: Path) -> None:
    wanted = settings(tmp_path, "my-site", "us-east-1", None)
    target = s3_target(wanted, {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:7000"})
    assert target == Target("http", "127.0.0.1:7000", "/my-site", "us-east-1")


@pytest.mark.parametrize("ignore", ["true", "TRUE", "false", " true", ""])
@pytest.mark.parametrize("endpoint_input", [None, "http://127.0.0.1:8333"])
def test_ignore_configured_endpoint_urls_as_botocore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ignore: str, endpoint_input: str | None
) -> None:
    """AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: our own resolution sends the bucket where
    botocore's client does (`true` in any case ignores AWS_ENDPOINT_URL_S3, anything else
    does not; the `endpoint-url` input counts either way), so every request goes there."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:7000")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", ignore)
    wanted = settings(tmp_path, "my-site", "eu-west-1", endpoint_input)
    env = dict(os.environ)
    session = prepare_session(botocore.session.Session())
    session.set_credentials("AKIAEXAMPLE", "secret")
    client = s3_client(session, wanted, env=env)
    theirs = _probe_target(client, wanted.bucket)
    assert s3_target(wanted, env) == theirs
    if endpoint_input is None and ignore.lower() == "true":
        assert theirs == Target("https", "my-site.s3.eu-west-1.amazonaws.com", "", "eu-west-1")
    else:
        assert theirs is not None and theirs.netloc.startswith("127.0.0.1:")


def test_ignore_configured_endpoint_urls_in_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same setting in the profile of the AWS config file: no custom endpoint (so no
    path style either), and botocore's client goes to AWS too."""
    config = tmp_path / "config"
    config.write_text("[profile site]\nignore_configured_endpoint_urls = true\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "site")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:7000")
    wanted = settings(tmp_path, "my-site", "eu-west-1", None)
    env = dict(os.environ)
    assert s3_endpoint(wanted, env) is None
    session = prepare_session(botocore.session.Session())
    session.set_credentials("AKIAEXAMPLE", "secret")
    theirs = _probe_target(s3_client(session, wanted, env=env), wanted.bucket)
    assert theirs == Target("https", "my-site.s3.eu-west-1.amazonaws.com", "", "eu-west-1")
    monkeypatch.setenv("AWS_PROFILE", "other")  # another profile: the variable counts
    assert s3_endpoint(wanted, dict(os.environ)) == "http://127.0.0.1:7000"


@pytest.mark.parametrize(
    ("bucket", "configured", "actual", "endpoint"),
    [
        ("my-site", "us-east-1", "ap-northeast-2", None),
        ("my-site", "eu-west-1", "us-east-1", None),
        ("my-site", "eu-west-1", "eu-central-1", None),
        ("www.example.com", "us-east-1", "eu-west-1", None),  # path style on AWS
        ("www.example.com", "eu-west-1", "us-east-1", None),
        ("my-site", "us-east-1", "eu-west-1", "http://127.0.0.1:8333"),  # custom: host stays
        ("my-site", "auto", "us-east-1", "https://acct.r2.cloudflarestorage.com"),
    ],
)
def test_redirected_target_equals_botocores_for_the_real_region(
    tmp_path: Path, bucket: str, configured: str, actual: str, endpoint: str | None
) -> None:
    """Where the wire sends a redirected bucket (`Target.in_region`) is where botocore's
    client for the bucket's real region sends it."""
    start = botocores(settings(tmp_path, bucket, configured, endpoint))
    assert start is not None
    assert start.in_region(actual) == botocores(settings(tmp_path, bucket, actual, endpoint))


def test_aws_hosts_of_other_forms_are_not_guessed() -> None:
    """FIPS or dual-stack hosts: no guess at the other region's address (None)."""
    fips = Target("https", "my-site.s3-fips.us-east-1.amazonaws.com", "", "us-east-1")
    dual = Target("https", "my-site.s3.dualstack.us-east-1.amazonaws.com", "", "us-east-1")
    assert fips.in_region("eu-west-1") is None
    assert dual.in_region("eu-west-1") is None
