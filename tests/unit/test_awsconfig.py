"""awsconfig: the CA bundle (and its source) chosen exactly as botocore's client chooses it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.httpsession import get_cert_path

from deployer.awsconfig import BlankCABundleError, ca_bundle

VARIABLES = (
    "AWS_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "AWS_CONFIG_FILE",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def botocores_bundle() -> str:
    """The CA bundle botocore's S3 client verifies certificates with (os.environ)."""
    session = botocore.session.Session()
    client = session.create_client(
        "s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    endpoint: Any = client._endpoint  # type: ignore[attr-defined]
    return str(get_cert_path(endpoint.http_session._verify))


CONFIG = """[default]
ca_bundle = {default}
[profile site]
region = eu-west-1
ca_bundle = {site}
[profile bare]
region = eu-west-1
"""


@pytest.mark.parametrize(
    ("env", "source"),
    [
        ({}, "the default CA bundle"),
        ({"AWS_CA_BUNDLE": "aws.pem"}, "`AWS_CA_BUNDLE`"),
        ({"REQUESTS_CA_BUNDLE": "requests.pem"}, "`REQUESTS_CA_BUNDLE`"),
        ({"AWS_CA_BUNDLE": "aws.pem", "REQUESTS_CA_BUNDLE": "requests.pem"}, "`AWS_CA_BUNDLE`"),
        ({"CONFIG": "1"}, "`ca_bundle` in"),
        ({"CONFIG": "1", "REQUESTS_CA_BUNDLE": "requests.pem"}, "`ca_bundle` in"),
        ({"CONFIG": "1", "AWS_CA_BUNDLE": "aws.pem"}, "`AWS_CA_BUNDLE`"),
        ({"CONFIG": "1", "AWS_PROFILE": "site"}, "`ca_bundle` in"),
        ({"CONFIG": "1", "AWS_PROFILE": "bare", "REQUESTS_CA_BUNDLE": "r.pem"}, "`REQUESTS_"),
        ({"CONFIG": "1", "AWS_DEFAULT_PROFILE": "site", "AWS_PROFILE": "bare"}, "`ca_bundle` in"),
    ],
)
def test_ca_bundle_is_botocores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], source: str
) -> None:
    """AWS_CA_BUNDLE, then the profile's `ca_bundle`, then REQUESTS_CA_BUNDLE, then the
    default bundle: the same file botocore's client uses, with the setting that chose it."""
    for name, value in env.items():
        if name == "CONFIG":
            config = tmp_path / "config"
            config.write_text(CONFIG.format(default=tmp_path / "d.pem", site=tmp_path / "s.pem"))
            monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        else:
            monkeypatch.setenv(name, value)
    ours = ca_bundle(dict(os.environ))
    assert ours.path == botocores_bundle()
    assert ours.source.startswith(source)


@pytest.mark.parametrize("name", ["AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE"])
def test_a_blank_ca_bundle_setting_is_refused_like_botocore(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Set but empty: botocore refuses to make a client, and we name the setting."""
    monkeypatch.setenv(name, " ")
    with pytest.raises(BlankCABundleError) as caught:
        ca_bundle(dict(os.environ))
    assert caught.value.source == f"`{name}`"
    with pytest.raises(botocore.exceptions.InvalidConfigError):
        botocores_bundle()
