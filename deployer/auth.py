"""AWS credentials: one botocore session, built once, from the first source that applies.

Precedence, highest first (documented in the README, tested in `tests/unit/test_auth.py`):

1. Key inputs (`aws-access-key-id`, `aws-secret-access-key`, optional `aws-session-token`).
   With `role-to-assume` too, those keys call `sts:AssumeRole` (role chaining).
2. `role-to-assume` without key inputs:
   - the GitHub OIDC token is available (`ACTIONS_ID_TOKEN_REQUEST_URL` and
     `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, present when the job has `permissions: id-token: write`):
     request a token for `audience` and call `sts:AssumeRoleWithWebIdentity` (unsigned);
   - otherwise the role is assumed with the ambient credentials below (outside Actions also
     with the standard chain, e.g. `AWS_PROFILE`); inside Actions with none of them, fail
     with the exact `permissions:` YAML to add.
3. Ambient keys in the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
   `AWS_SESSION_TOKEN` or the older `AWS_SECURITY_TOKEN`, read first as botocore does),
   e.g. exported by `aws-actions/configure-aws-credentials` in an earlier
   step or written in a local `.env` file.
4. The standard AWS chain (profile, web identity file, container or instance role).

Every credential this module reads or receives goes to `mask` before anything else can print
it. Error messages are built from names and AWS error codes, never from credential values.

The session is botocore's own, not boto3's: boto3 adds nothing this program uses, and
importing it cost ~15 ms of CPU before the first request (it imports s3transfer).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

import botocore.exceptions
import botocore.session
from botocore import UNSIGNED
from botocore.config import Config

from deployer.aws import prepare_session
from deployer.credentials import (
    ENV_KEY_ID,
    ENV_SECRET,
    TOKEN_URL_VAR,
    TOKEN_VAR,
    Keys,
    Source,
    ambient_keys,
    choose_source,
    env_value,
    has_oidc,
    in_actions,
    input_keys,
    mask_keys,
)
from deployer.errors import CredentialsError
from deployer.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient


TOKEN_TIMEOUT_S = 15.0
TOKEN_ATTEMPTS = 3

PERMISSIONS_YAML = "permissions:\n  id-token: write\n  contents: read"

_FORK_NOTE = (
    "A workflow run for a pull request from a fork gets neither repository secrets nor an "
    "OIDC token, whatever `permissions:` says, so it cannot reach the bucket at all (not even "
    "with `dry-run`): deploy from `push` events, or skip the step for forks with "
    "`if: github.event.pull_request.head.repo.full_name == github.repository`."
)

_STS_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=10,
    read_timeout=30,
)


def make_session(
    settings: Settings, env: Mapping[str, str], mask: Callable[[str], None]
) -> botocore.session.Session:
    """Build the one botocore session of this run. Raises CredentialsError with the fix."""
    source = choose_source(settings, env)
    region = settings.aws_region
    if source in (Source.INPUT_KEYS, Source.INPUT_KEYS_ROLE):
        keys = input_keys(settings)
        assert keys is not None
        mask_keys(keys, mask)
        if source is Source.INPUT_KEYS:
            return session_for_keys(keys, region)
        return _assume_role(settings, env, session_for_keys(keys, region), mask, "the key inputs")
    if source is Source.OIDC:
        return _assume_with_oidc(settings, env, mask)
    ambient = ambient_keys(env)
    if ambient is not None:
        mask_keys(ambient, mask)
        base = session_for_keys(ambient, region)
    else:
        base = _chain_session(settings, env)
    if source is Source.AMBIENT_ROLE:
        return _assume_role(settings, env, base, mask, "the environment's credentials")
    return base


# --- sessions -------------------------------------------------------------------------------


def _bare_session(region: str, profile: str | None = None) -> botocore.session.Session:
    """A session in `region` with no credentials set (they come from the chain, if any)."""
    session = prepare_session(botocore.session.Session(profile=profile))
    session.set_config_variable("region", region)
    return session


def session_for_keys(keys: Keys, region: str) -> botocore.session.Session:
    """A session signing with `keys` (already masked by the caller)."""
    session = _bare_session(region)
    session.set_credentials(keys.access_key, keys.secret_key, keys.token)
    return session


def _chain_session(settings: Settings, env: Mapping[str, str]) -> botocore.session.Session:
    profile = env_value(env, "AWS_PROFILE")
    try:
        session = _bare_session(settings.aws_region, profile)
        credentials = session.get_credentials()
    except botocore.exceptions.ProfileNotFound:
        raise CredentialsError(
            f"`AWS_PROFILE` names the profile `{profile}`, which is not in your AWS config "
            "files. Run `aws configure list-profiles` and set `AWS_PROFILE` to one of them, "
            "or unset it."
        ) from None
    except botocore.exceptions.BotoCoreError as err:
        raise CredentialsError(
            f"The standard AWS credential chain failed ({type(err).__name__}). Fix the AWS "
            "configuration it names, or pass keys as `aws-access-key-id` and "
            "`aws-secret-access-key`."
        ) from None
    if credentials is None:
        raise CredentialsError(
            _no_credentials_message(env, role=settings.role_to_assume), title="No AWS credentials"
        )
    return session


def _no_credentials_message(env: Mapping[str, str], *, role: str | None = None) -> str:
    if role is not None:
        head = (
            f"`role-to-assume` is set, but there are no credentials to assume it with: no "
            "key inputs, no GitHub OIDC token (outside GitHub Actions there is none), "
            f"`{ENV_KEY_ID}` is not set, and the standard AWS chain (profile, container or "
            "instance role) has none."
        )
    else:
        head = (
            "No AWS credentials were found: the `aws-access-key-id` and `role-to-assume` "
            f"inputs are empty, `{ENV_KEY_ID}` is not set, and the standard AWS chain "
            "(profile, container or instance role) has none."
        )
    if not in_actions(env):
        return (
            f"{head} Put `{ENV_KEY_ID}` and `{ENV_SECRET}` in the environment or a `.env` "
            "file, set `AWS_PROFILE`, or pass `--aws-access-key-id` and "
            "`--aws-secret-access-key`."
        )
    return (
        f"{head} Give the step credentials in one of two ways.\n\n"
        "1. Keys from repository secrets (Settings > Secrets and variables > Actions):\n\n"
        "    with:\n"
        "      aws-access-key-id: ${{ secrets.AWS_ACCESS_KEY_ID }}\n"
        "      aws-secret-access-key: ${{ secrets.AWS_SECRET_ACCESS_KEY }}\n\n"
        "   A secret that does not exist (or is misspelled) expands to an empty string, which "
        "looks exactly like this.\n\n"
        "2. OpenID Connect, no stored keys: create a role that trusts "
        "`token.actions.githubusercontent.com` and add to the job\n\n"
        + _indent(PERMISSIONS_YAML, 4)
        + "\n\n   and to the step\n\n"
        "    with:\n"
        "      role-to-assume: arn:aws:iam::123456789012:role/my-deploy-role\n\n" + _FORK_NOTE
    )


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line for line in text.splitlines())


# --- STS ------------------------------------------------------------------------------------


def _sts_endpoint(env: Mapping[str, str]) -> str | None:
    """`AWS_ENDPOINT_URL_STS` (then `AWS_ENDPOINT_URL`) from the given environment.

    botocore reads these from `os.environ` by itself; reading them here also honours a
    `.env` file merged into `env` by the CLI.
    """
    return env_value(env, "AWS_ENDPOINT_URL_STS") or env_value(env, "AWS_ENDPOINT_URL")


def _sts_client(
    session: botocore.session.Session, env: Mapping[str, str], *, unsigned: bool = False
) -> STSClient:
    config = _STS_CONFIG.merge(Config(signature_version=UNSIGNED)) if unsigned else _STS_CONFIG
    client = session.create_client(
        "sts",
        region_name=session.get_config_variable("region"),
        endpoint_url=_sts_endpoint(env),
        config=config,
    )
    return cast("STSClient", client)


def _assume_role(
    settings: Settings,
    env: Mapping[str, str],
    base: botocore.session.Session,
    mask: Callable[[str], None],
    with_what: str,
) -> botocore.session.Session:
    role = settings.role_to_assume
    assert role is not None
    sts = _sts_client(base, env)
    try:
        response = sts.assume_role(
            RoleArn=role,
            RoleSessionName=settings.role_session_name,
            DurationSeconds=settings.role_duration_seconds,
        )
    except botocore.exceptions.ClientError as err:
        raise _sts_error(err, settings, "sts:AssumeRole", with_what, claims=None) from None
    except botocore.exceptions.NoCredentialsError:
        raise CredentialsError(
            _no_credentials_message(env, role=role), title="No AWS credentials"
        ) from None
    except botocore.exceptions.BotoCoreError as err:
        raise _sts_unreachable(err, env) from None
    return _session_from_sts(response["Credentials"], settings.aws_region, mask)


def _assume_with_oidc(
    settings: Settings, env: Mapping[str, str], mask: Callable[[str], None]
) -> botocore.session.Session:
    role = settings.role_to_assume
    assert role is not None
    if not has_oidc(env):
        raise CredentialsError(
            f"`role-to-assume` is set, but this job cannot request a GitHub OIDC token "
            f"(`{TOKEN_URL_VAR}` and `{TOKEN_VAR}` are not set), and no keys were given. "
            "Allow the job to request the token by adding to the job (or the workflow):\n\n"
            + _indent(PERMISSIONS_YAML, 4)
            + "\n\n(A `permissions:` block replaces the defaults, so keep `contents: read` "
            "for `actions/checkout`.) " + _FORK_NOTE,
            title="GitHub OIDC token not available",
        )
    token = request_id_token(env, settings.audience)
    mask(token)
    bare = _bare_session(settings.aws_region)
    sts = _sts_client(bare, env, unsigned=True)
    try:
        response = sts.assume_role_with_web_identity(
            RoleArn=role,
            RoleSessionName=settings.role_session_name,
            DurationSeconds=settings.role_duration_seconds,
            WebIdentityToken=token,
        )
    except botocore.exceptions.ClientError as err:
        raise _sts_error(
            err,
            settings,
            "sts:AssumeRoleWithWebIdentity",
            "the GitHub OIDC token",
            claims=token_claims(token),
        ) from None
    except botocore.exceptions.BotoCoreError as err:
        raise _sts_unreachable(err, env) from None
    return _session_from_sts(response["Credentials"], settings.aws_region, mask)


def _session_from_sts(
    credentials: Mapping[str, Any], region: str, mask: Callable[[str], None]
) -> botocore.session.Session:
    keys = Keys(
        str(credentials["AccessKeyId"]),
        str(credentials["SecretAccessKey"]),
        str(credentials["SessionToken"]),
    )
    mask_keys(keys, mask)
    return session_for_keys(keys, region)


def _sts_unreachable(err: Exception, env: Mapping[str, str]) -> CredentialsError:
    where = "the endpoint in `AWS_ENDPOINT_URL_STS`" if _sts_endpoint(env) else "AWS STS"
    return CredentialsError(
        f"Could not reach {where} to assume `role-to-assume` ({type(err).__name__}). Check "
        "the network and the endpoint, then re-run the job.",
        title="AWS STS unreachable",
    )


def _sts_error(
    err: botocore.exceptions.ClientError,
    settings: Settings,
    action: str,
    with_what: str,
    *,
    claims: Mapping[str, Any] | None,
) -> CredentialsError:
    code = str(err.response.get("Error", {}).get("Code", "Unknown"))
    role = settings.role_to_assume
    head = f"AWS STS refused {action} for `{role}` with {with_what} ({code})."
    if code in ("AccessDenied", "AccessDeniedException") and claims is not None:
        sub = claims.get("sub", "?")
        aud = claims.get("aud", settings.audience)
        fix = (
            "The role's trust policy does not accept this workflow's token. Its "
            "`Principal.Federated` must be the account's OIDC provider "
            "`token.actions.githubusercontent.com`, its `token.actions.githubusercontent.com:aud` "
            f"condition must allow `{aud}` (the `audience` input), and its "
            f"`token.actions.githubusercontent.com:sub` condition must match `{sub}` "
            "(a push to main is `repo:OWNER/REPO:ref:refs/heads/main`; a job with an "
            "`environment:` is `repo:OWNER/REPO:environment:NAME`; a pull request is "
            "`repo:OWNER/REPO:pull_request`). See the README's OIDC setup."
        )
    elif code in ("AccessDenied", "AccessDeniedException"):
        fix = (
            "The identity behind the credentials needs `sts:AssumeRole` on this role, and the "
            "role's trust policy must name that identity as a `Principal`. Check both, or drop "
            "the keys and use GitHub OIDC."
        )
    elif code == "InvalidIdentityToken":
        fix = (
            "AWS does not trust the token's issuer. Create the IAM OIDC identity provider "
            "`https://token.actions.githubusercontent.com` with audience "
            f"`{settings.audience}` in the role's account (see the README's OIDC setup)."
        )
    elif code == "ExpiredTokenException":
        fix = "The token expired before it was used; re-run the job."
    elif code == "ValidationError":
        fix = (
            f"Check `role-to-assume` and `role-duration-seconds` "
            f"({settings.role_duration_seconds}): it may exceed the role's maximum session "
            "duration (1 hour by default, and always at most 1 hour when chaining from "
            "temporary credentials)."
        )
    elif code == "RegionDisabledException":
        fix = f"Activate STS in `{settings.aws_region}` or set `aws-region` to another region."
    else:
        fix = "Check `role-to-assume` and the role's trust policy, then re-run the job."
    return CredentialsError(f"{head} {fix}", title="Could not assume the AWS role")


# --- the GitHub OIDC token ------------------------------------------------------------------


def token_url(base_url: str, audience: str) -> str:
    """The ID token URL for `audience`: the runner's URL plus `&audience=<urlencoded>`."""
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}audience={urllib.parse.quote(audience, safe='')}"


def request_id_token(
    env: Mapping[str, str], audience: str, *, sleep: Callable[[float], None] = time.sleep
) -> str:
    """Fetch the GitHub OIDC JWT (JSON field `value`). Retries transient failures."""
    base_url, bearer = env_value(env, TOKEN_URL_VAR), env_value(env, TOKEN_VAR)
    assert base_url is not None and bearer is not None
    url = token_url(base_url, audience)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise CredentialsError(
            f"`{TOKEN_URL_VAR}` is not an http(s) URL; it is set by the GitHub runner, so do "
            "not override it."
        )
    request = urllib.request.Request(  # noqa: S310 - http(s) checked above
        url,
        headers={
            "Authorization": f"Bearer {bearer}",
            "Accept": "application/json; api-version=2.0",
            "User-Agent": "s3-cloudfront-deploy",
        },
    )
    problem = "no attempt made"
    for attempt in range(TOKEN_ATTEMPTS):
        if attempt:
            sleep(2.0**attempt)
        try:
            with urllib.request.urlopen(request, timeout=TOKEN_TIMEOUT_S) as response:  # noqa: S310
                body = response.read()
        except urllib.error.HTTPError as err:
            problem = f"HTTP {err.code}"
            if err.code < 500 and err.code != 429:
                break
            continue
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            problem = type(err).__name__
            continue
        return _token_from(body)
    raise CredentialsError(
        f"Requesting the GitHub OIDC token for audience `{audience}` failed ({problem}). "
        "The runner's token service did not answer with a token: re-run the job; if it keeps "
        "failing, check that the job has\n\n"
        + _indent(PERMISSIONS_YAML, 4)
        + "\n\nand that no step overrides `ACTIONS_ID_TOKEN_REQUEST_URL` or "
        "`ACTIONS_ID_TOKEN_REQUEST_TOKEN`.",
        title="GitHub OIDC token request failed",
    )


def _token_from(body: bytes) -> str:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        document = None
    value = document.get("value") if isinstance(document, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise CredentialsError(
            "The GitHub OIDC token service answered without a token (no JSON field `value`). "
            "Re-run the job; if it keeps failing, GitHub's token service may be degraded "
            "(https://www.githubstatus.com).",
            title="GitHub OIDC token request failed",
        )
    return value.strip()


def token_claims(token: str) -> dict[str, Any]:
    """The JWT's payload claims (`sub`, `aud`, ...) for error hints; {} if unreadable.

    The claims are not secret (they describe the workflow); the token as a whole is.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}
