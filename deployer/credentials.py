"""Which AWS credentials a run uses, decided without botocore (pure, cheap to import).

The precedence is documented in `deployer/auth.py`, which builds botocore sessions from
these decisions. This module alone is on the start path of a deploy whose keys are
known up front (key inputs or ambient keys without `role-to-assume`): those keys sign
the first S3 requests directly (`deployer/s3wire.py`), and botocore is imported only
when something needs it (a HEAD, a copy, CloudFront).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from deployer.errors import CredentialsError
from deployer.settings import Settings

TOKEN_URL_VAR = "ACTIONS_ID_TOKEN_REQUEST_URL"  # noqa: S105 - a variable name
TOKEN_VAR = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"  # noqa: S105 - a variable name, not a secret
ENV_KEY_ID = "AWS_ACCESS_KEY_ID"
ENV_SECRET = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 - a variable name, not a secret
ENV_SESSION = "AWS_SESSION_TOKEN"
# botocore reads the session token from either, the older name first (EnvProvider.TOKENS).
ENV_TOKENS = ("AWS_SECURITY_TOKEN", ENV_SESSION)


class Source(StrEnum):
    """Where the credentials come from, in order of precedence."""

    INPUT_KEYS = "key inputs"
    INPUT_KEYS_ROLE = "role assumed with the key inputs"
    OIDC = "role assumed with GitHub OIDC"
    AMBIENT_ROLE = "role assumed with the environment's credentials"
    AMBIENT = "keys from the environment"
    CHAIN = "standard AWS credential chain"


@dataclass(frozen=True, slots=True)
class Keys:
    """Keys known up front. Named as botocore's frozen credentials are, so they are also
    the credentials `s3wire` signs with (`get_frozen_credentials`)."""

    access_key: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)

    def get_frozen_credentials(self) -> Keys:
        return self


def mask_keys(keys: Keys, mask: Callable[[str], None]) -> None:
    """Send every part of `keys` to `mask` (before anything else can print them)."""
    for value in (keys.access_key, keys.secret_key, keys.token):
        if value:
            mask(value)


def env_value(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def input_keys(settings: Settings) -> Keys | None:
    if settings.aws_access_key_id is None or settings.aws_secret_access_key is None:
        return None
    token = settings.aws_session_token
    return Keys(
        settings.aws_access_key_id.get_secret_value(),
        settings.aws_secret_access_key.get_secret_value(),
        token.get_secret_value() if token is not None else None,
    )


def ambient_keys(env: Mapping[str, str]) -> Keys | None:
    key_id, secret = env_value(env, ENV_KEY_ID), env_value(env, ENV_SECRET)
    if key_id is None and secret is None:
        return None
    if key_id is None or secret is None:
        present, missing = (ENV_KEY_ID, ENV_SECRET) if secret is None else (ENV_SECRET, ENV_KEY_ID)
        raise CredentialsError(
            f"The environment sets `{present}` but not `{missing}`, so the ambient AWS "
            f"credentials are incomplete. Set both (or neither), or pass the keys as the "
            "`aws-access-key-id` and `aws-secret-access-key` inputs."
        )
    token_var = next((name for name in ENV_TOKENS if env_value(env, name)), ENV_SESSION)
    token = env_value(env, token_var)
    for name, value in ((ENV_KEY_ID, key_id), (ENV_SECRET, secret), (token_var, token)):
        if value is not None and not _well_formed(value):
            raise CredentialsError(
                f"`{name}` has a space, a line break or another character that AWS keys "
                "never contain inside its value, so requests could not be signed or sent. "
                f"Set `{name}` again to the bare value on one line (no quotes, nothing "
                "around it), e.g. copied anew from the IAM console or the credentials file."
            )
    return Keys(key_id, secret, token)


def _well_formed(value: str) -> bool:
    """Printable ASCII without whitespace: what access key IDs, secrets and session
    tokens consist of (HTTP headers cannot carry the rest)."""
    return value.isascii() and value.isprintable() and not any(ch.isspace() for ch in value)


def has_oidc(env: Mapping[str, str]) -> bool:
    """True when this job may request a GitHub OIDC token."""
    return env_value(env, TOKEN_URL_VAR) is not None and env_value(env, TOKEN_VAR) is not None


def in_actions(env: Mapping[str, str]) -> bool:
    return env.get("GITHUB_ACTIONS", "").strip().lower() == "true"


def choose_source(settings: Settings, env: Mapping[str, str]) -> Source:
    """Pure: which credential source applies (see the module docstring for the order)."""
    if input_keys(settings) is not None:
        return Source.INPUT_KEYS_ROLE if settings.role_to_assume else Source.INPUT_KEYS
    ambient = ambient_keys(env) is not None
    if settings.role_to_assume:
        if has_oidc(env) or (in_actions(env) and not ambient):
            return Source.OIDC
        return Source.AMBIENT_ROLE
    return Source.AMBIENT if ambient else Source.CHAIN


def describe(settings: Settings, env: Mapping[str, str]) -> str:
    """One log line naming the credential source (no secret in it)."""
    source = choose_source(settings, env)
    if settings.role_to_assume and source in (
        Source.INPUT_KEYS_ROLE,
        Source.OIDC,
        Source.AMBIENT_ROLE,
    ):
        return f"AWS credentials: {source.value} (`{settings.role_to_assume}`)"
    return f"AWS credentials: {source.value}"


def static_keys(settings: Settings, env: Mapping[str, str]) -> Keys | None:
    """The keys themselves when getting them needs no AWS call: key inputs or ambient
    keys, without `role-to-assume`. None for OIDC, assumed roles and the standard chain."""
    source = choose_source(settings, env)
    if source is Source.INPUT_KEYS:
        return input_keys(settings)
    if source is Source.AMBIENT:
        return ambient_keys(env)
    return None
