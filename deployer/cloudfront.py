"""The only module that talks to CloudFront: `CloudFrontCDN`, implementing `cdnstep.CDN`.

- `distribution`: which key prefix a distribution serves at `/` (its S3 origin's
  `OriginPath`), so invalidation paths are right when the origin points into a folder,
  and the site's address (its first alias, else its `*.cloudfront.net` domain) for the
  summary's links and the `site-url` output; one GetDistribution call, or
  GetDistributionConfig (no domain in its answer) where a policy allows only that.
- `invalidate`: CreateInvalidation with a deterministic CallerReference (a retried
  run does not create a second invalidation); throttling and
  `TooManyInvalidationsInProgress` are retried with bounded exponential backoff
  (throttling and 5xx by botocore's standard retry mode, this module's loop for
  `TooManyInvalidationsInProgress`).
- `wait`: polls GetInvalidation; status compared case-insensitively (moto reports
  `COMPLETED`, AWS `Completed`), so boto3's waiter is not used.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from deployer.errors import CredentialsError, DeployError, RemoteError
from deployer.model import Distribution, InvalidationResult

if TYPE_CHECKING:
    from mypy_boto3_cloudfront import CloudFrontClient

# botocore's standard retry mode already retries throttling, 5xx and connection errors
# (each call up to aws.TOTAL_ATTEMPTS); this loop adds the one CloudFront-specific wait:
# too many invalidations in progress, which clears as earlier ones finish.
RETRY_CODES = {"TooManyInvalidationsInProgress"}
INVALIDATE_ATTEMPTS = 8  # with backoff 2, 4, 8, 16, 32, 60, 60 s: about 3 minutes at most
BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 60.0
POLL_INTERVAL_S = 5.0


def _s3_domain_matches(domain: str, bucket: str) -> bool:
    """Is `domain` this bucket's S3 REST or website endpoint?

    `b.s3.amazonaws.com`, `b.s3.ap-northeast-2.amazonaws.com`,
    `b.s3-website-us-east-1.amazonaws.com`, `b.s3-website.eu-west-1.amazonaws.com`,
    `b.s3.dualstack.us-east-1.amazonaws.com`, the China partition's `.com.cn`.
    """
    pattern = rf"^{re.escape(bucket)}\.s3([.-][a-z0-9.-]+)?\.amazonaws\.com(\.cn)?$"
    return re.match(pattern, domain.lower().rstrip(".")) is not None


def site_url(aliases: Sequence[str], domain: str) -> str:
    """`https://` + the first alias that is a host name (not `*.example.com`), else the
    distribution's own domain; "" when neither is known."""
    for alias in aliases:
        if alias and "*" not in alias:
            return "https://" + alias.strip().rstrip(".").lower()
    return "https://" + domain.strip().rstrip(".").lower() if domain.strip() else ""


def origin_path_to_prefix(origin_path: str) -> str:
    """CloudFront `OriginPath` (`/app`, `/a/b`, ``) -> key prefix (`app/`, `a/b/`, ``)."""
    text = origin_path.strip().strip("/")
    return text + "/" if text else ""


class CloudFrontCDN:
    """CloudFront calls for the deploy. `sleep` and `clock` are injectable for tests."""

    def __init__(
        self,
        client: CloudFrontClient,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        poll_interval_s: float = POLL_INTERVAL_S,
        attempts: int = INVALIDATE_ATTEMPTS,
    ) -> None:
        self.client = client
        self._sleep = sleep
        self._clock = clock
        self.poll_interval_s = poll_interval_s
        self.attempts = attempts

    def distribution(self, distribution_id: str, bucket: str) -> Distribution:
        """The key prefix the distribution serves at `/` (from the origin that is this
        bucket) and the site's address, from one GetDistribution call.

        A policy written for earlier releases allows only `GetDistributionConfig`: then
        that (the same origins and aliases, but not the `*.cloudfront.net` domain).
        Unknown parts are None / "" when reading was denied, or when no origin is this
        bucket's S3 domain (a custom domain, an S3-compatible store): the caller then
        assumes the bucket root and warns.
        """
        domain = ""
        try:
            answer = self.client.get_distribution(Id=distribution_id)["Distribution"]
            config = answer.get("DistributionConfig", {})
            domain = answer.get("DomainName", "") or ""
        except ClientError as err:
            if not _denied(err):
                raise _translate(err, "GetDistribution", distribution_id) from None
            try:
                config = self.client.get_distribution_config(Id=distribution_id).get(
                    "DistributionConfig", {}
                )
            except ClientError as again:
                if _denied(again):
                    return Distribution(None, "")
                raise _translate(again, "GetDistributionConfig", distribution_id) from None
            except (NoCredentialsError, BotoCoreError) as again:
                raise _transport(again, "GetDistributionConfig") from None
        except (NoCredentialsError, BotoCoreError) as err:
            raise _transport(err, "GetDistribution") from None
        aliases = config.get("Aliases", {}).get("Items", []) or []
        url = site_url(aliases, domain)
        for origin in config.get("Origins", {}).get("Items", []) or []:
            if _s3_domain_matches(origin.get("DomainName", ""), bucket):
                return Distribution(origin_path_to_prefix(origin.get("OriginPath", "") or ""), url)
        return Distribution(None, url)

    def invalidate(
        self, distribution_id: str, paths: Sequence[str], caller_reference: str
    ) -> InvalidationResult:
        """Create one invalidation; retried with backoff while CloudFront is busy or throttles."""
        batch = {
            "Paths": {"Quantity": len(paths), "Items": list(paths)},
            "CallerReference": caller_reference,
        }
        attempt = 0
        waited = 0.0
        while True:
            attempt += 1
            try:
                resp = self.client.create_invalidation(
                    DistributionId=distribution_id,
                    InvalidationBatch=batch,  # type: ignore[arg-type]
                )
                break
            except ClientError as err:
                code = str(err.response.get("Error", {}).get("Code", "") or "")
                retryable = code in RETRY_CODES
                if retryable and attempt < self.attempts:
                    delay = self._backoff(attempt)
                    waited += delay
                    self._sleep(delay)
                    continue
                if retryable:
                    raise RemoteError(
                        f"CloudFront kept refusing the invalidation of distribution "
                        f"`{distribution_id}` ({code}) after {attempt} attempts over about "
                        f"{waited:.0f} s: too many invalidations are in progress (at "
                        "most 3,000 paths or 15 wildcard paths at a time). Wait for them to "
                        "finish, or lower `invalidation-max-paths` so paths roll up into "
                        "fewer wildcards. The files are deployed; re-run the workflow to "
                        "invalidate (the deploy record makes the re-run invalidate the same "
                        "paths).",
                        title="Invalidation failed",
                    ) from None
                raise _translate(err, "CreateInvalidation", distribution_id) from None
            except (NoCredentialsError, BotoCoreError) as err:
                raise _transport(err, "CreateInvalidation") from None
        inv = resp["Invalidation"]
        return InvalidationResult(
            distribution_id=distribution_id,
            invalidation_id=inv["Id"],
            paths=tuple(paths),
            status=inv.get("Status", "InProgress"),
        )

    def wait(self, distribution_id: str, invalidation_id: str, timeout_s: float) -> str:
        """Poll until the invalidation completes or `timeout_s` passes; return the last status."""
        deadline = self._clock() + timeout_s
        while True:
            try:
                resp = self.client.get_invalidation(
                    DistributionId=distribution_id, Id=invalidation_id
                )
            except ClientError as err:
                raise _translate(err, "GetInvalidation", distribution_id) from None
            except (NoCredentialsError, BotoCoreError) as err:
                raise _transport(err, "GetInvalidation") from None
            status = resp["Invalidation"].get("Status", "")
            if status.lower() == "completed":
                return status
            remaining = deadline - self._clock()
            if remaining <= 0:
                return status
            self._sleep(min(self.poll_interval_s, remaining))

    def _backoff(self, attempt: int) -> float:
        ceiling = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311  (jitter)


def _denied(err: ClientError) -> bool:
    code = str(err.response.get("Error", {}).get("Code", "") or "")
    return code in ("AccessDenied", "AccessDeniedException")


_ACTIONS = {
    "GetDistribution": "cloudfront:GetDistribution",
    "GetDistributionConfig": "cloudfront:GetDistributionConfig",
    "CreateInvalidation": "cloudfront:CreateInvalidation",
    "GetInvalidation": "cloudfront:GetInvalidation",
}


def _translate(err: ClientError, operation: str, distribution_id: str) -> DeployError:
    code = str(err.response.get("Error", {}).get("Code", "") or "")
    if code == "NoSuchDistribution":
        return RemoteError(
            f"CloudFront distribution `{distribution_id}` does not exist in this AWS account. "
            "Check `distribution-id` (the ID from the CloudFront console, e.g. "
            "`E2ABCDEF123456`, not the domain name) and that the credentials belong to the "
            "account that owns it.",
            title="Distribution not found",
        )
    if code in ("AccessDenied", "AccessDeniedException"):
        return RemoteError(
            f"Access denied: {operation} on distribution `{distribution_id}` was refused. "
            f"Allow `{_ACTIONS.get(operation, 'cloudfront:*')}` on "
            f"`arn:aws:cloudfront::ACCOUNT_ID:distribution/{distribution_id}` in the IAM "
            "policy of the credentials (`aws-access-key-id` or `role-to-assume`).",
            title="Access denied",
        )
    if code in (
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidAccessKeyId",
    ):
        return CredentialsError(
            f"CloudFront rejected the credentials ({code}). Check `aws-access-key-id` and "
            "`aws-secret-access-key` (or `aws-session-token`, which may have expired). With "
            "`endpoint-url` pointing at another storage provider (R2, MinIO), its keys do "
            "not work for CloudFront: leave `distribution-id` empty."
        )
    if code == "InvalidArgument" and operation == "CreateInvalidation":
        return RemoteError(
            f"CloudFront rejected the invalidation paths for `{distribution_id}` "
            f"({code}). Use `invalidation: all` as a workaround and report this as a bug.",
            title="Invalidation rejected",
        )
    if code == "BatchTooLarge":
        return RemoteError(
            f"CloudFront refused the invalidation of `{distribution_id}` (BatchTooLarge). "
            "Lower `invalidation-max-paths` so paths roll up into wildcards.",
            title="Invalidation rejected",
        )
    return RemoteError(
        f"CloudFront {operation} on `{distribution_id}` failed ({code or 'error'}). Check "
        "`distribution-id` and re-run the workflow.",
        title="CloudFront request failed",
    )


def _transport(err: Exception, operation: str) -> DeployError:
    if isinstance(err, NoCredentialsError):
        return CredentialsError(
            "No AWS credentials were found for CloudFront. Pass `aws-access-key-id` and "
            "`aws-secret-access-key`, or `role-to-assume`."
        )
    return RemoteError(
        f"Could not reach CloudFront during {operation} ({type(err).__name__}) after "
        "retries. Re-run the workflow; if `AWS_ENDPOINT_URL_CLOUDFRONT` or "
        "`AWS_ENDPOINT_URL` is set, check it.",
        title="CloudFront unreachable",
    )
