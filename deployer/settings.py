"""Settings: one frozen, validated model, built once at the edge.

Precedence, highest first: command line flags, the runner's `INPUT_<NAME>`
variables (hyphens kept; empty means unset), the plain environment variable
(`S3CFD_<NAME>`, or `AWS_REGION` for the region), then a `.env` file (merged
by the caller underneath the real environment, never over it).

Every problem is reported at once, each naming the input and the fix.
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from deployer.concurrency import CAP
from deployer.errors import ConfigError, InputProblem
from deployer.globs import compile_glob
from deployer.interface import ENV_PREFIX, INPUTS, pick, region_input

RECORD_BASENAME = ".s3-cloudfront-deploy.json"

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_DIST_RE = re.compile(r"^[A-Z0-9]{10,20}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_ROLE_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_SESSION_RE = re.compile(r"^[\w+=,.@-]{2,64}$")
_ENDPOINT_RE = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
_TRUE, _FALSE = "true", "false"


class Rule(BaseModel):
    """One `PATTERN: VALUE` rule of `cache-control` or `content-type`."""

    model_config = ConfigDict(frozen=True)
    pattern: str
    value: str


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def parse_bool(value: Any) -> Any:
    if isinstance(value, str):
        low = value.strip().lower()
        if low in (_TRUE, _FALSE):
            return low == _TRUE
        raise ValueError(f"`{value}` is not a boolean; use `true` or `false`")
    return value


def _int_in(low: int, high: int) -> BeforeValidator:
    def parse(value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip().replace("_", "")
            if not re.fullmatch(r"[+-]?\d+", text):
                raise ValueError(
                    f"`{value}` is not a whole number; use a number from {low} to {high}"
                )
            value = int(text)
        if isinstance(value, int) and not low <= value <= high:
            raise ValueError(f"{value} is out of range; use a number from {low} to {high}")
        return value

    return BeforeValidator(parse)


_DURATION_RE = re.compile(r"^(\d+)\s*([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_KEEP_S = 366 * 86400  # a year and a day: longer than the `immutable` max-age is pointless


def parse_duration(value: Any) -> Any:
    """`7d`, `36h`, `90s`, `15m` or `0` -> whole seconds (`keep-removed-assets`)."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower().replace("_", "")
    if text == "0":
        return 0
    match = _DURATION_RE.match(text)
    if match is None:
        hint = (
            f"add a unit, e.g. `{text}d` for days"
            if text.isdigit()
            else "use a number and a unit `s`, `m`, `h` or `d`"
        )
        raise ValueError(
            f"`{value}` is not a duration; {hint} (`7d`, `36h`, `90s`), or `0` to delete "
            "removed assets at once"
        )
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_KEEP_S:
        raise ValueError(
            f"`{value}` is longer than a year (`366d`), the longest a browser keeps an "
            "`immutable` file; use at most `366d`"
        )
    return seconds


def _concurrency(value: Any) -> Any:
    """`auto` (or unset) -> None; otherwise a whole number from 1 to the cap."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    if isinstance(value, str) and not re.fullmatch(r"[+-]?\d+", value.strip().replace("_", "")):
        raise ValueError(
            f"`{value}` is neither `auto` nor a whole number; use `auto` (the default) or a "
            f"number from 1 to {CAP}"
        )
    number = int(value.strip().replace("_", "")) if isinstance(value, str) else value
    if isinstance(number, int) and not 1 <= number <= CAP:
        raise ValueError(
            f"{number} is out of range; use `auto` (the default) or a number from 1 to {CAP}"
        )
    return number


def _lines(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(
            line.strip()
            for line in value.splitlines()
            if line.strip() and not line.strip().startswith("#")
        )
    return value


def _rules(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    rules: list[Rule] = []
    for number, line in enumerate(value.splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        pattern, sep, rule_value = text.partition(":")
        pattern, rule_value = pattern.strip(), rule_value.strip()
        if not sep or not pattern or not rule_value:
            raise ValueError(
                f"line {number} `{text}` is not `PATTERN: VALUE`; write one rule per line, "
                "for example `*.html: no-cache`"
            )
        try:
            compile_glob(pattern)
        except ValueError as err:
            raise ValueError(f"line {number}: pattern `{pattern}` {err}") from None
        if any(ord(ch) < 32 or ord(ch) > 126 for ch in rule_value):
            raise ValueError(
                f"line {number}: value `{rule_value}` must be printable ASCII (it is an HTTP "
                "header)"
            )
        rules.append(Rule(pattern=pattern, value=rule_value))
    return tuple(rules)


def _split_ids(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in re.split(r"[,\n]", value) if part.strip())
    return value


Bool = Annotated[bool, BeforeValidator(parse_bool)]
OptSecret = Annotated[SecretStr | None, BeforeValidator(_blank_to_none)]
OptStr = Annotated[str | None, BeforeValidator(_blank_to_none)]


class Settings(BaseModel):
    """Everything a deploy needs, validated. Field aliases are the contract's input names."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    aws_access_key_id: OptSecret = Field(None, alias="aws-access-key-id")
    aws_secret_access_key: OptSecret = Field(None, alias="aws-secret-access-key")
    aws_session_token: OptSecret = Field(None, alias="aws-session-token")
    role_to_assume: OptStr = Field(None, alias="role-to-assume")
    role_session_name: str = Field(alias="role-session-name")
    role_duration_seconds: Annotated[int, _int_in(900, 43200)] = Field(
        alias="role-duration-seconds"
    )
    audience: str = Field(alias="audience")
    aws_region: str = Field(alias="aws-region")
    bucket: str = Field(alias="bucket")
    destination_prefix: str = Field("", alias="destination-prefix")
    source_dir: Path = Field(alias="source-dir")
    distribution_ids: Annotated[tuple[str, ...], BeforeValidator(_split_ids)] = Field(
        (), alias="distribution-id"
    )
    delete_removed: Bool = Field(alias="delete-removed")
    max_delete: Annotated[int, _int_in(0, 10_000_000)] = Field(alias="max-delete")
    keep_removed_assets: Annotated[int, BeforeValidator(parse_duration)] = Field(
        alias="keep-removed-assets"
    )  # seconds
    exclude: Annotated[tuple[str, ...], BeforeValidator(_lines)] = Field((), alias="exclude")
    cache_control: Annotated[tuple[Rule, ...], BeforeValidator(_rules)] = Field(
        (), alias="cache-control"
    )
    content_type: Annotated[tuple[Rule, ...], BeforeValidator(_rules)] = Field(
        (), alias="content-type"
    )
    invalidation: Literal["changed", "all", "none"] = Field(alias="invalidation")
    invalidation_max_paths: Annotated[int, _int_in(1, 3000)] = Field(alias="invalidation-max-paths")
    wait_for_invalidation: Bool = Field(alias="wait-for-invalidation")
    endpoint_url: OptStr = Field(None, alias="endpoint-url")
    # None = `auto` (see `concurrency.py`); a number is a fixed limit.
    concurrency: Annotated[int | None, BeforeValidator(_concurrency)] = Field(
        None, alias="concurrency"
    )
    dry_run: Bool = Field(alias="dry-run")

    # Context, not inputs.
    workspace: Path
    run_id: str = "local"
    run_attempt: str = "1"
    wait_timeout_s: float = 600.0

    @field_validator("invalidation", mode="before")
    @classmethod
    def _invalidation(cls, value: Any) -> Any:
        if isinstance(value, str):
            low = value.strip().lower()
            if low not in ("changed", "all", "none"):
                raise ValueError(f"`{value}` is not one of `changed`, `all`, `none`")
            return low
        return value

    @field_validator("aws_secret_access_key")
    @classmethod
    def _key_pair(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        has_id = info.data.get("aws_access_key_id") is not None
        local = _local(info)
        if has_id and value is None:
            raise ValueError(
                "is missing while `aws-access-key-id` is set; give both"
                if local
                else "is missing while `aws-access-key-id` is set; pass both from repository "
                "secrets, e.g. `aws-secret-access-key: ${{ secrets.AWS_SECRET_ACCESS_KEY }}`"
            )
        if value is not None and not has_id:
            raise ValueError(
                "is set but `aws-access-key-id` is not; give both"
                if local
                else "is set but `aws-access-key-id` is not; pass both, e.g. "
                "`aws-access-key-id: ${{ secrets.AWS_ACCESS_KEY_ID }}`"
            )
        return value

    @field_validator("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None:
            raw = value.get_secret_value()
            if raw != raw.strip() or any(ch.isspace() for ch in raw):
                where = "set it to" if _local(info) else "re-create the repository secret with"
                raise ValueError(
                    f"contains whitespace or a line break; {where} the bare value (no "
                    "quotes, no trailing newline)"
                )
        return value

    @field_validator("role_to_assume")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None and not _ROLE_RE.match(value.strip()):
            raise ValueError(
                f"`{value}` is not an IAM role ARN; use the full ARN, e.g. "
                "`arn:aws:iam::123456789012:role/deploy-site`"
            )
        return value.strip() if value else value

    @field_validator("role_session_name")
    @classmethod
    def _session_name(cls, value: str) -> str:
        if not _SESSION_RE.match(value):
            raise ValueError(
                f"`{value}` is not a valid session name; use 2-64 letters, digits or `+=,.@_-`"
            )
        return value

    @field_validator("audience")
    @classmethod
    def _audience(cls, value: str) -> str:
        if not value.strip() or any(ch.isspace() for ch in value.strip()):
            raise ValueError("must be one word such as `sts.amazonaws.com`")
        return value.strip()

    @field_validator("aws_region")
    @classmethod
    def _region(cls, value: str) -> str:
        value = value.strip()
        if value == "auto":  # Cloudflare R2 and some S3-compatible servers
            return value
        if not _REGION_RE.match(value):
            raise ValueError(
                f"`{value}` is not an AWS region code; use the code, e.g. `ap-northeast-2` "
                "for Seoul or `us-east-1`"
            )
        return value

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("is required; set `bucket: my-site-bucket` (the bare bucket name)")
        if value.startswith("s3://") or "/" in value:
            bare = value.removeprefix("s3://").split("/")[0]
            raise ValueError(
                f"`{value}` is not a bare bucket name; use `bucket: {bare}` and put any "
                "folder in `destination-prefix`"
            )
        problems = []
        if not _BUCKET_RE.match(value):
            problems.append(
                "3-63 lower-case letters, digits, `.` or `-`, starting and ending "
                "with a letter or digit"
            )
        if ".." in value:
            problems.append("no two adjacent periods")
        if _IP_RE.match(value):
            problems.append("not formatted as an IP address")
        if value.startswith(("xn--", "sthree-", "amzn-s3-demo-")) or value.endswith(
            ("-s3alias", "--ol-s3", ".mrap", "--x-s3")
        ):
            problems.append("no reserved prefix or suffix such as `xn--` or `-s3alias`")
        if problems:
            raise ValueError(f"`{value}` breaks the S3 bucket naming rules: " + "; ".join(problems))
        return value

    @field_validator("destination_prefix", mode="before")
    @classmethod
    def _prefix(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("s3://"):
            raise ValueError(
                f"`{value}` looks like an S3 URL; put the bucket in `bucket` and only the "
                "folder here, e.g. `app/`"
            )
        if "\\" in text:
            raise ValueError(f"`{value}` contains `\\`; use `/` between folders")
        text = text.strip("/")
        if not text:
            return ""
        parts = text.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise ValueError(
                f"`{value}` has an empty, `.` or `..` segment; write a plain folder path "
                "such as `app/v2`"
            )
        if any(ord(ch) < 32 for ch in text):
            raise ValueError(f"`{value!r}` contains a control character")
        return text + "/"

    @field_validator("source_dir", mode="before")
    @classmethod
    def _source(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str | Path):
            return value
        workspace = Path((info.context or {}).get("workspace", ".")).resolve()
        raw = Path(value)
        candidate = raw if raw.is_absolute() else workspace / raw
        resolved = candidate.resolve()
        local = _local(info)
        if not resolved.is_relative_to(workspace):
            raise ValueError(
                f"`{value}` is outside the current folder `{workspace}`; use a folder inside "
                "it, e.g. `dist`, or run from the project's folder"
                if local
                else f"`{value}` is outside the workspace `{workspace}`; use a folder of the "
                "repository, e.g. `dist`"
            )
        if not resolved.exists():
            raise ValueError(
                f"`{value}` does not exist; build the site first (e.g. `npm run build`) or "
                "fix the path"
                if local
                else f"`{value}` does not exist; build the site in an earlier step (e.g. "
                "`npm run build`) or fix the path"
            )
        if not resolved.is_dir():
            raise ValueError(f"`{value}` is a file, not a folder; name the folder that holds it")
        if not any(resolved.iterdir()):
            raise ValueError(
                f"`{value}` is empty; did the build step run and write its output there?"
            )
        return resolved

    @field_validator("distribution_ids")
    @classmethod
    def _distributions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for dist in value:
            if not _DIST_RE.match(dist):
                hint = " (upper case)" if _DIST_RE.match(dist.upper()) else ""
                raise ValueError(
                    f"`{dist}` is not a CloudFront distribution ID; copy the ID{hint} from the "
                    "CloudFront console, e.g. `E2ABCDEF123456` (not the domain name)"
                )
        return tuple(dict.fromkeys(value))

    @field_validator("exclude")
    @classmethod
    def _excludes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            try:
                compile_glob(pattern)
            except ValueError as err:
                raise ValueError(f"pattern `{pattern}` {err}") from None
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.strip().rstrip("/")
            if not _ENDPOINT_RE.match(value) or not _host_and_port(value):
                raise ValueError(
                    f"`{value}` is not an http(s) URL; use e.g. "
                    "`https://<account>.r2.cloudflarestorage.com`"
                )
        return value

    @property
    def record_key(self) -> str:
        """Where the deploy record lives: beside the published files, under the prefix."""
        return self.destination_prefix + RECORD_BASENAME

    def secrets(self) -> tuple[str, ...]:
        """Every secret value, for masking."""
        values = (self.aws_access_key_id, self.aws_secret_access_key, self.aws_session_token)
        return tuple(v.get_secret_value() for v in values if v is not None)


def _host_and_port(url: str) -> bool:
    """The URL has a host and, if any, a port number (`http://[::1` and `http://h:x` fail
    here, not later as an unexpected error)."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        return False
    return bool(parts.hostname)


def _local(info: ValidationInfo) -> bool:
    """Validating a local run's settings (flags, environment, `.env`), not a workflow's."""
    return bool((info.context or {}).get("local"))


def load_settings(
    flags: Mapping[str, str | None],
    env: Mapping[str, str],
    cwd: Path,
    *,
    origins: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings from flags and an environment (with any `.env` already merged under it).

    `origins` says where a variable came from when not from the environment (`.env`'s
    path), for messages. Raises ConfigError listing every invalid input, and every
    `S3CFD_*` variable that is no setting (a typo would otherwise fall back to a default).
    """
    raw: dict[str, Any] = {}
    for spec in INPUTS:
        value = pick(spec.name, flags, env)
        raw[spec.name] = spec.default if value is None else value
    raw["aws-region"] = region_input(flags, env)
    workspace = Path(env.get("GITHUB_WORKSPACE") or cwd).resolve()
    raw["workspace"] = workspace
    raw["run_id"] = env.get("GITHUB_RUN_ID") or f"local-{uuid.uuid4().hex}"
    raw["run_attempt"] = env.get("GITHUB_RUN_ATTEMPT") or "1"
    local = env.get("GITHUB_ACTIONS", "").strip().lower() != "true"
    unknown = unknown_variables(env, origins or {})
    try:
        settings = Settings.model_validate(raw, context={"workspace": workspace, "local": local})
    except ValidationError as err:
        raise ConfigError([*unknown, *_problems(err)]) from None
    if unknown:
        raise ConfigError(unknown)
    return settings


# `S3CFD_*` variables read by the program (or its own test tools) that are not inputs.
OTHER_VARIABLES = frozenset({"S3CFD_DEBUG", "S3CFD_EXAMPLE_SITE"})


def unknown_variables(env: Mapping[str, str], origins: Mapping[str, str]) -> list[InputProblem]:
    """A problem for each `S3CFD_*` variable that is not a setting, with the nearest name.

    An error, not a warning: a misspelled `S3CFD_DRY_RUNN=true` would otherwise deploy
    for real, and `S3CFD_MAX_DELET` leave the default limit on deletions; `S3CFD_` is
    this program's own prefix, so nothing else has a reason to set it.
    """
    known = {spec.env_var for spec in INPUTS if spec.env_var.startswith(ENV_PREFIX)}
    problems: list[InputProblem] = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in known or name in OTHER_VARIABLES:
            continue
        near = difflib.get_close_matches(name, sorted(known | OTHER_VARIABLES), n=1, cutoff=0.6)
        where = f" (in `{origins[name]}`)" if name in origins else ""
        fix = f"did you mean `{near[0]}`? Rename it" if near else "remove it"
        problems.append(
            InputProblem(
                name,
                f"is not a setting of s3-cloudfront-deploy{where}; {fix} (every setting's "
                "variable is listed by `s3-cloudfront-deploy --help`)",
            )
        )
    return problems


def _problems(err: ValidationError) -> list[InputProblem]:
    problems: list[InputProblem] = []
    fields = Settings.model_fields
    for item in err.errors(include_input=False, include_url=False):
        loc = item["loc"][0] if item["loc"] else ""
        name = str(loc)
        if name in fields and fields[name].alias:
            name = str(fields[name].alias)
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "literal_error":
            message = "must be one of `changed`, `all`, `none`"
        problems.append(InputProblem(name, message))
    return problems
