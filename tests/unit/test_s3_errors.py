"""s3.translate_client_error: S3 error codes become messages naming the cause and the fix."""

from __future__ import annotations

import pytest

from deployer.s3 import S3Error, translate_client_error


@pytest.mark.parametrize(
    ("code", "status"),
    [("RequestTimeTooSkewed", 403), ("RequestExpired", 400), ("RequestExpired", 403)],
)
def test_clock_codes_say_the_clock_is_wrong(code: str, status: int) -> None:
    """A request refused for its signing time names the clock (and how to set it), not IAM."""
    err = translate_client_error(
        "ListObjectsV2", code, status, bucket="site", key="*", endpoint="https://s3"
    )
    assert isinstance(err, S3Error)
    assert err.title == "System clock is wrong" and err.short == "clock is wrong"
    assert "clock is wrong" in str(err) and "timedatectl set-ntp" in str(err)
    assert "s3:ListBucket" not in str(err)


@pytest.mark.parametrize(
    ("code", "status"),
    [("PermanentRedirect", 301), ("", 307), ("AuthorizationHeaderMalformed", 400)],
)
def test_wrong_region_names_the_buckets_region_when_known(code: str, status: int) -> None:
    """A redirect that could not be followed: the error gives the `aws-region` to set."""
    err = translate_client_error(
        "PutObject", code, status, bucket="site", key="a", endpoint="https://s3", region="eu-west-1"
    )
    assert err.title == "Wrong region"
    assert "Set `aws-region: eu-west-1`." in str(err)
    unknown = translate_client_error(
        "PutObject", code, status, bucket="site", key="a", endpoint="https://s3"
    )
    assert unknown.title == "Wrong region" and "`aws-region`" in str(unknown)
