"""`early.guess`: the bucket's address from the raw inputs is the one the validated
settings give (`endpoints.s3_target`), or None where the deploy would not use it."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import pytest

from deployer import early
from deployer.cli import EXIT_FAILED, main
from deployer.endpoints import BOTOCORE_ENDPOINT_VARIABLES, S3_ENDPOINT_VARIABLES, s3_target
from deployer.settings import load_settings

KEYS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        *S3_ENDPOINT_VARIABLES,
        *BOTOCORE_ENDPOINT_VARIABLES,
        "AWS_CONFIG_FILE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def validated(tmp_path: Path, flags: Mapping[str, str | None], env: Mapping[str, str]) -> object:
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    return s3_target(load_settings(flags, env, tmp_path), env)


@pytest.mark.parametrize(
    ("flags", "env"),
    [
        ({"bucket": "my-site", "aws-region": "ap-northeast-2"}, KEYS),
        ({"bucket": " my-site ", "aws-region": " eu-west-1 "}, KEYS),  # trimmed, as validated
        ({"bucket": "www.example.com", "aws-region": "eu-central-1"}, KEYS),  # path style
        ({"bucket": "my-site"}, {**KEYS, "AWS_DEFAULT_REGION": "sa-east-1"}),
        ({"bucket": "my-site"}, KEYS),  # us-east-1 by default
        ({"bucket": "my-site"}, {**KEYS, "AWS_DEFAULT_REGION": " "}),  # blank: the default
        ({}, {**KEYS, "INPUT_BUCKET": "my-site", "INPUT_AWS-REGION": "us-west-2"}),  # runner
        ({}, {**KEYS, "S3CFD_BUCKET": "my-site", "AWS_REGION": "eu-north-1"}),  # local
        ({"bucket": "my-site", "endpoint-url": "http://127.0.0.1:8333/"}, KEYS),
        ({"bucket": "my-site"}, {**KEYS, "AWS_ENDPOINT_URL_S3": "https://s3.example.com:8443"}),
        (
            {"bucket": "my-site"},
            {"INPUT_AWS-ACCESS-KEY-ID": "AKIDEXAMPLE", "INPUT_AWS-SECRET-ACCESS-KEY": "secret"},
        ),
    ],
)
def test_the_guess_is_the_validated_address(
    tmp_path: Path, flags: dict[str, str | None], env: dict[str, str]
) -> None:
    guessed = early.guess(flags, env)
    assert guessed is not None
    assert guessed == validated(tmp_path, flags, env)


@pytest.mark.parametrize(
    ("flags", "env"),
    [
        ({}, KEYS),  # no bucket
        ({"bucket": "my-site"}, {}),  # no keys up front: the standard chain, no wire
        ({"bucket": "my-site", "role-to-assume": "arn:aws:iam::123456789012:role/x"}, KEYS),
        ({"bucket": "my-site", "aws-region": "us-gov-west-1"}, KEYS),  # botocore decides
        ({"bucket": "my-site"}, {**KEYS, "AWS_PROFILE": "work"}),
    ],
)
def test_no_guess_where_the_deploy_would_not_use_one(
    flags: dict[str, str | None], env: dict[str, str]
) -> None:
    assert early.guess(flags, env) is None


def test_no_guess_behind_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore carries every request when a proxy is set for the address (`make_wire`):
    no connection straight to it, then."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert early.guess({"bucket": "my-site"}, KEYS) is None
    assert early.open_early({"bucket": "my-site"}, KEYS) is None


def test_a_blank_ca_bundle_opens_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deploy reports a blank `AWS_CA_BUNDLE` itself; nothing is opened before."""
    monkeypatch.setenv("AWS_CA_BUNDLE", " ")
    assert early.guess({"bucket": "my-site"}, KEYS) is not None
    assert early.open_early({"bucket": "my-site"}, KEYS) is None


@pytest.mark.parametrize(
    "flags",
    [
        {"bucket": "s3://my-site/app"},  # a URL instead of a name: an unusable host:port
        {"bucket": "my site:x"},
        {"bucket": "my-site", "endpoint-url": "http://[::1"},
        {"bucket": "my-site", "endpoint-url": "http://127.0.0.1:port"},
    ],
)
def test_malformed_inputs_open_nothing_and_raise_nothing(flags: dict[str, str | None]) -> None:
    """The inputs are not validated yet: whatever they hold, no exception leaves here (the
    settings then name the input and the fix)."""
    assert early.open_early(flags, KEYS) is None


def test_a_malformed_bucket_still_gets_its_one_clear_error(tmp_path: Path) -> None:
    """The whole program: keys up front and `s3://...` as the bucket end with the bucket's
    validation error, as without early connections, not with an unexpected error."""
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    out = io.StringIO()
    code = main(
        ["--bucket", "s3://my-site/app", "--source-dir", str(tmp_path)],
        {**KEYS, "AWS_CONFIG_FILE": str(tmp_path / "none")},
        stdout=out,
        cwd=tmp_path,
    )
    assert code == EXIT_FAILED
    text = out.getvalue()
    assert "Invalid setting `--bucket`" in text
    assert "is not a bare bucket name" in text
    assert "Unexpected" not in text
