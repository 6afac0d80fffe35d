"""The public interface in one place: every input and output, its default and meaning.

`action.yml`, the CLI flags, the settings loader and the README tables all follow
this table; `tests/unit/test_interface.py` checks that they agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InputSpec:
    name: str  # kebab-case, as in action.yml and `--flag`
    default: str  # as the runner passes it when unset ("" = unset)
    description: str
    secret: bool = False
    boolean: bool = False

    @property
    def env_input(self) -> str:
        """The variable the GitHub runner sets, hyphens kept: `INPUT_AWS-REGION`."""
        return "INPUT_" + self.name.upper()

    @property
    def env_var(self) -> str:
        """The plain environment / `.env` variable for local use."""
        return ENV_OVERRIDES.get(self.name, ENV_PREFIX + self.name.upper().replace("-", "_"))

    @property
    def flag(self) -> str:
        return "--" + self.name


@dataclass(frozen=True, slots=True)
class OutputSpec:
    name: str
    description: str


ENV_PREFIX = "S3CFD_"

# Inputs whose local environment variable is the standard AWS one rather than S3CFD_*.
# Credentials are deliberately absent: AWS_ACCESS_KEY_ID & co. in the environment are
# "ambient" credentials that boto3's own chain picks up, ranked below an assumed role.
ENV_OVERRIDES: dict[str, str] = {
    "aws-region": "AWS_REGION",
    "endpoint-url": "S3CFD_ENDPOINT_URL",
}

DEFAULT_CONCURRENCY = "auto"
DEFAULT_MAX_DELETE = 256
DEFAULT_KEEP_REMOVED_ASSETS = "7d"  # why a week: README, "Pages already open keep working"
DEFAULT_INVALIDATION_MAX_PATHS = 15
DEFAULT_ROLE_SESSION_NAME = "s3-cloudfront-deploy"
DEFAULT_ROLE_DURATION = 3600
DEFAULT_AUDIENCE = "sts.amazonaws.com"

INPUTS: tuple[InputSpec, ...] = (
    InputSpec(
        "aws-access-key-id",
        "",
        "AWS access key ID, from a repository secret. Default: none; without keys the "
        "role (`role-to-assume`) or the standard AWS credential chain is used.",
        secret=True,
    ),
    InputSpec(
        "aws-secret-access-key",
        "",
        "AWS secret access key, from a repository secret. Required with "
        "`aws-access-key-id`. Default: none.",
        secret=True,
    ),
    InputSpec(
        "aws-session-token",
        "",
        "AWS session token for temporary keys. Default: none.",
        secret=True,
    ),
    InputSpec(
        "role-to-assume",
        "",
        "ARN of an IAM role to assume with GitHub OIDC (needs `permissions: id-token: "
        "write`), or by role chaining when keys are also given. Default: none.",
    ),
    InputSpec(
        "role-session-name",
        DEFAULT_ROLE_SESSION_NAME,
        f"Session name for the assumed role. Default: `{DEFAULT_ROLE_SESSION_NAME}`.",
    ),
    InputSpec(
        "role-duration-seconds",
        str(DEFAULT_ROLE_DURATION),
        f"Lifetime of the assumed role's credentials, 900-43200. Default: "
        f"`{DEFAULT_ROLE_DURATION}`.",
    ),
    InputSpec(
        "audience",
        DEFAULT_AUDIENCE,
        f"Audience of the GitHub OIDC token. Default: `{DEFAULT_AUDIENCE}`.",
    ),
    InputSpec(
        "aws-region",
        "",
        "Region of the bucket, e.g. `ap-northeast-2`. Default: `AWS_REGION`, then "
        "`AWS_DEFAULT_REGION`, then `us-east-1`.",
    ),
    InputSpec("bucket", "", "Target S3 bucket name. Required."),
    InputSpec(
        "destination-prefix",
        "",
        "Key prefix inside the bucket, e.g. `app/` or `preview/pr-42`. Default: none "
        "(the bucket root).",
    ),
    InputSpec(
        "source-dir",
        ".",
        "Folder to publish, relative to the workspace, e.g. `dist`. Default: `.` (the "
        "repository itself).",
    ),
    InputSpec(
        "distribution-id",
        "",
        "CloudFront distribution ID(s) to invalidate, newline or comma separated. "
        "Default: none (no invalidation).",
    ),
    InputSpec(
        "delete-removed",
        "true",
        "Delete objects under the prefix that no longer exist locally. Default: `true`.",
        boolean=True,
    ),
    InputSpec(
        "max-delete",
        str(DEFAULT_MAX_DELETE),
        "Refuse the whole deploy, before any write, if more than this many objects would "
        f"be deleted. Default: `{DEFAULT_MAX_DELETE}`.",
    ),
    InputSpec(
        "keep-removed-assets",
        DEFAULT_KEEP_REMOVED_ASSETS,
        "How long removed fingerprinted assets (the files served `immutable`) stay in the "
        "bucket for pages still open: a number and a unit `s`, `m`, `h` or `d` (`7d`, "
        "`36h`, `90s`); `0` deletes them at once. Only with `delete-removed: true`. "
        f"Default: `{DEFAULT_KEEP_REMOVED_ASSETS}`.",
    ),
    InputSpec(
        "exclude",
        "",
        "Newline-separated glob patterns to leave out, on top of the safe defaults "
        "(`.git/`, `.github/`, `.env*`, `.DS_Store`, `Thumbs.db`); matching remote "
        "objects are also kept. Default: none.",
    ),
    InputSpec(
        "cache-control",
        "",
        "Newline-separated `PATTERN: VALUE` Cache-Control rules; the first match wins "
        "over the built-in defaults. Default: none.",
    ),
    InputSpec(
        "content-type",
        "",
        "Newline-separated `PATTERN: VALUE` Content-Type overrides. Default: none.",
    ),
    InputSpec(
        "invalidation",
        "changed",
        "`changed` (only what changed or was deleted), `all` (`/*`) or `none`. Default: `changed`.",
    ),
    InputSpec(
        "invalidation-max-paths",
        str(DEFAULT_INVALIDATION_MAX_PATHS),
        "Above this many paths, roll up to the narrowest wildcards (each bills as one "
        f"path). Default: `{DEFAULT_INVALIDATION_MAX_PATHS}`.",
    ),
    InputSpec(
        "wait-for-invalidation",
        "false",
        "Wait until CloudFront reports every invalidation complete. Default: `false`.",
        boolean=True,
    ),
    InputSpec(
        "endpoint-url",
        "",
        "S3-compatible endpoint (Cloudflare R2, MinIO, a local server). Wins over "
        "`AWS_ENDPOINT_URL*`. Default: none (AWS).",
    ),
    InputSpec(
        "concurrency",
        DEFAULT_CONCURRENCY,
        "Requests in flight: `auto` (adapts to the link: grows while throughput grows, "
        "halves when S3 throttles, at most 256) or a fixed number from 1 to 256. "
        f"Default: `{DEFAULT_CONCURRENCY}`.",
    ),
    InputSpec(
        "dry-run",
        "false",
        "Plan and report what would change; write nothing. Default: `false`.",
        boolean=True,
    ),
)

OUTPUTS: tuple[OutputSpec, ...] = (
    OutputSpec("uploaded-count", "Files written (new, changed content, or headers only)."),
    OutputSpec("deleted-count", "Objects deleted."),
    OutputSpec("unchanged-count", "Files already up to date."),
    OutputSpec("uploaded-bytes", "Bytes sent (header-only updates send none)."),
    OutputSpec(
        "invalidation-id",
        "CloudFront invalidation ID(s), comma-separated when several distributions; "
        "empty when none was needed.",
    ),
    OutputSpec("invalidation-paths", "The invalidated paths, as a JSON list."),
    OutputSpec("changed-keys", "The S3 keys written or deleted, as a JSON list."),
    OutputSpec(
        "retained-count",
        "Removed fingerprinted assets kept in the bucket for their grace period "
        "(`keep-removed-assets`).",
    ),
    OutputSpec(
        "pruned-count",
        "Retained assets deleted because their grace period ended (included in `deleted-count`).",
    ),
    OutputSpec(
        "site-url",
        "The site's address: the first distribution's first alias, else its "
        "`*.cloudfront.net` domain; empty without a distribution.",
    ),
)

INPUT_NAMES = tuple(spec.name for spec in INPUTS)
INPUTS_BY_NAME = {spec.name: spec for spec in INPUTS}


def pick(name: str, flags: Mapping[str, str | None], env: Mapping[str, str]) -> str | None:
    """The raw value of input `name`: its flag, else the runner's `INPUT_<NAME>`, else the
    plain variable; a blank one counts as unset. None when unset everywhere."""
    spec = INPUTS_BY_NAME[name]
    flag = flags.get(name)
    if flag is not None and flag != "":
        return flag
    for var in (spec.env_input, spec.env_var):
        value = env.get(var)
        if value is not None and value.strip() != "":
            return value
    return None


def region_input(flags: Mapping[str, str | None], env: Mapping[str, str]) -> str:
    """The raw `aws-region`: the input (`pick`), else `AWS_DEFAULT_REGION`, else
    `us-east-1`."""
    return (
        pick("aws-region", flags, env) or env.get("AWS_DEFAULT_REGION", "").strip() or ("us-east-1")
    )
