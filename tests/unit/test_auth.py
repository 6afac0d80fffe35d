"""Credentials: precedence, masking and error messages that name the fix (no network)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from deployer import auth
from deployer.auth import make_session
from deployer.credentials import Source, ambient_keys, choose_source, describe
from deployer.errors import CredentialsError
from deployer.interface import INPUTS
from deployer.settings import Settings, load_settings

ROLE = "arn:aws:iam::123456789012:role/deploy-site"
INPUT_KEY_ID = "AKIAINPUTKEY00000001"
INPUT_SECRET = "input/secret/abcdefghijklmnopqrstuvwxyz012"
AMBIENT_KEY_ID = "AKIAAMBIENTKEY000001"
AMBIENT_SECRET = "ambient/secret/abcdefghijklmnopqrstuvwxy"
AMBIENT_TOKEN = "ambient-session-token-0123456789"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "index.html").write_text("<h1>hi</h1>")
    return tmp_path


@pytest.fixture(autouse=True)
def no_host_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """botocore's chain reads os.environ and ~/.aws: make sure this machine has nothing."""
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def make_env(
    workspace: Path, inputs: Mapping[str, str] | None = None, *, actions: bool = True
) -> dict[str, str]:
    """Every declared input at its default, as the runner passes them, plus `inputs`."""
    env = {spec.env_input: spec.default for spec in INPUTS}
    env.update({"INPUT_BUCKET": "my-site", "GITHUB_WORKSPACE": str(workspace)})
    if actions:
        env["GITHUB_ACTIONS"] = "true"
    for name, value in (inputs or {}).items():
        env["INPUT_" + name.upper().replace("_", "-")] = value
    return env


def settings_for(env: dict[str, str], workspace: Path) -> Settings:
    return load_settings({}, env, workspace)


KEYS = {"aws_access_key_id": INPUT_KEY_ID, "aws_secret_access_key": INPUT_SECRET}
AMBIENT = {
    "AWS_ACCESS_KEY_ID": AMBIENT_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": AMBIENT_SECRET,
    "AWS_SESSION_TOKEN": AMBIENT_TOKEN,
}
OIDC = {
    "ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:9/token?api-version=2.0",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runner-bearer",
}


@pytest.mark.parametrize(
    ("inputs", "extra_env", "actions", "expected"),
    [
        (KEYS, {}, True, Source.INPUT_KEYS),
        (KEYS, AMBIENT | OIDC, True, Source.INPUT_KEYS),
        (KEYS | {"role_to_assume": ROLE}, AMBIENT | OIDC, True, Source.INPUT_KEYS_ROLE),
        ({"role_to_assume": ROLE}, OIDC, True, Source.OIDC),
        ({"role_to_assume": ROLE}, OIDC | AMBIENT, True, Source.OIDC),
        ({"role_to_assume": ROLE}, {}, True, Source.OIDC),  # -> the missing-permission error
        ({"role_to_assume": ROLE}, AMBIENT, True, Source.AMBIENT_ROLE),
        ({"role_to_assume": ROLE}, {}, False, Source.AMBIENT_ROLE),  # local: profile chain
        ({}, AMBIENT | OIDC, True, Source.AMBIENT),
        ({}, {}, True, Source.CHAIN),
        ({}, {}, False, Source.CHAIN),
    ],
)
def test_precedence(
    workspace: Path,
    inputs: dict[str, str],
    extra_env: dict[str, str],
    actions: bool,
    expected: Source,
) -> None:
    """Key inputs, then the role (OIDC or chained), then ambient keys, then the chain."""
    env = make_env(workspace, inputs, actions=actions) | extra_env
    assert choose_source(settings_for(env, workspace), env) is expected


def test_input_keys_win_and_are_masked(workspace: Path) -> None:
    """Key inputs are used as they are, over ambient keys, and every value is masked."""
    env = make_env(workspace, KEYS | {"aws_session_token": "input-session-token"}) | AMBIENT
    masked: list[str] = []
    session = make_session(settings_for(env, workspace), env, masked.append)
    creds = session.get_credentials()
    assert creds is not None
    assert (creds.access_key, creds.secret_key, creds.token) == (
        INPUT_KEY_ID,
        INPUT_SECRET,
        "input-session-token",
    )
    assert {INPUT_KEY_ID, INPUT_SECRET, "input-session-token"} <= set(masked)
    assert session.get_config_variable("region") == "us-east-1"


def test_ambient_keys_from_the_given_environment(workspace: Path) -> None:
    """Ambient keys come from the mapping passed in (so a `.env` merged by the CLI counts)."""
    env = make_env(workspace, {"aws_region": "ap-northeast-2"}) | AMBIENT
    masked: list[str] = []
    session = make_session(settings_for(env, workspace), env, masked.append)
    creds = session.get_credentials()
    assert creds is not None
    assert (creds.access_key, creds.secret_key, creds.token) == (
        AMBIENT_KEY_ID,
        AMBIENT_SECRET,
        AMBIENT_TOKEN,
    )
    assert {AMBIENT_SECRET, AMBIENT_TOKEN} <= set(masked)
    assert session.get_config_variable("region") == "ap-northeast-2"


def test_standard_chain_reads_a_profile(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no inputs and no ambient keys, the standard chain (here a profile) is used."""
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[site]\naws_access_key_id = AKIAPROFILE000000001\naws_secret_access_key = prof\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    env = make_env(workspace, actions=False) | {"AWS_PROFILE": "site"}
    session = make_session(settings_for(env, workspace), env, lambda _: None)
    creds = session.get_credentials()
    assert creds is not None
    assert creds.access_key == "AKIAPROFILE000000001"


def test_unknown_profile_names_the_fix(workspace: Path) -> None:
    """A profile that does not exist is a CredentialsError naming `AWS_PROFILE`."""
    env = make_env(workspace, actions=False) | {"AWS_PROFILE": "nope"}
    with pytest.raises(CredentialsError, match="`AWS_PROFILE` names the profile `nope`"):
        make_session(settings_for(env, workspace), env, lambda _: None)


def test_no_credentials_in_actions_shows_both_ways(workspace: Path) -> None:
    """Nothing anywhere: the message shows the secrets inputs and the OIDC set-up."""
    env = make_env(workspace)
    with pytest.raises(CredentialsError) as info:
        make_session(settings_for(env, workspace), env, lambda _: None)
    message = str(info.value)
    assert "aws-access-key-id: ${{ secrets.AWS_ACCESS_KEY_ID }}" in message
    assert "aws-secret-access-key: ${{ secrets.AWS_SECRET_ACCESS_KEY }}" in message
    assert "permissions:\n      id-token: write" in message
    assert "role-to-assume: arn:aws:iam::" in message
    assert "fork" in message
    assert info.value.title == "No AWS credentials"


def test_no_credentials_locally_names_env_and_flags(workspace: Path) -> None:
    """Outside Actions the fix is `.env`, `AWS_PROFILE` or the key flags."""
    env = make_env(workspace, actions=False)
    with pytest.raises(CredentialsError) as info:
        make_session(settings_for(env, workspace), env, lambda _: None)
    message = str(info.value)
    assert "`.env`" in message
    assert "`AWS_PROFILE`" in message
    assert "`--aws-access-key-id`" in message
    assert "secrets." not in message


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
    ],
)
def test_half_ambient_pair_is_an_error(workspace: Path, present: str, missing: str) -> None:
    """One ambient variable without the other names both; the value never appears."""
    env = make_env(workspace) | {present: AMBIENT[present]}
    with pytest.raises(CredentialsError) as info:
        make_session(settings_for(env, workspace), env, lambda _: None)
    message = str(info.value)
    assert f"sets `{present}` but not `{missing}`" in message
    assert AMBIENT[present] not in message


def test_role_without_token_variables_gives_the_yaml_fix(workspace: Path) -> None:
    """`role-to-assume` in Actions without the id-token permission: the exact YAML, forks."""
    env = make_env(workspace, {"role_to_assume": ROLE})
    masked: list[str] = []
    with pytest.raises(CredentialsError) as info:
        make_session(settings_for(env, workspace), env, masked.append)
    message = str(info.value)
    assert "permissions:\n      id-token: write\n      contents: read" in message
    assert "ACTIONS_ID_TOKEN_REQUEST_URL" in message
    assert "pull request from a fork" in message
    assert info.value.title == "GitHub OIDC token not available"
    assert masked == []


def test_token_url_appends_the_encoded_audience() -> None:
    """`&audience=` is appended (URL-encoded), or `?audience=` when there is no query."""
    base = "https://pipelines.example/idtoken?api-version=2.0"
    assert auth.token_url(base, "sts.amazonaws.com") == base + "&audience=sts.amazonaws.com"
    assert auth.token_url(base, "a b/c&d") == base + "&audience=a%20b%2Fc%26d"
    assert auth.token_url("http://h/t", "x") == "http://h/t?audience=x"


def _jwt(claims: Mapping[str, object]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2lnbmF0dXJl"


def test_token_claims_reads_the_payload_and_tolerates_garbage() -> None:
    """Claims feed the trust-policy hint; anything unreadable gives {}."""
    claims = {"sub": "repo:octo/site:ref:refs/heads/main", "aud": "sts.amazonaws.com"}
    assert auth.token_claims(_jwt(claims)) == claims
    assert auth.token_claims("not-a-jwt") == {}
    assert auth.token_claims("a.!!!.c") == {}
    assert auth.token_claims("a." + base64.urlsafe_b64encode(b"[1]").decode() + ".c") == {}


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"value": ""}', b'{"token": "x"}'])
def test_token_response_without_value_is_an_error(body: bytes) -> None:
    """A token service answer without a JSON `value` is a CredentialsError, not a crash."""
    with pytest.raises(CredentialsError, match="no JSON field `value`"):
        auth._token_from(body)


def test_non_http_token_url_is_refused(workspace: Path) -> None:
    """`file://` and friends are never opened."""
    env = {
        "ACTIONS_ID_TOKEN_REQUEST_URL": "file:///etc/passwd?x=1",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t",
    }
    with pytest.raises(CredentialsError, match="not an http"):
        auth.request_id_token(env, "sts.amazonaws.com")


def test_describe_names_the_source_and_role(workspace: Path) -> None:
    """The log line names the source and the role ARN, never a key."""
    env = make_env(workspace, KEYS | {"role_to_assume": ROLE})
    line = describe(settings_for(env, workspace), env)
    assert line == f"AWS credentials: role assumed with the key inputs (`{ROLE}`)"
    assert INPUT_SECRET not in line and INPUT_KEY_ID not in line


def test_role_locally_without_any_credentials(workspace: Path) -> None:
    """Outside Actions a role needs base credentials; the message says so, not "inputs empty"."""
    env = make_env(workspace, {"role_to_assume": ROLE}, actions=False)
    with pytest.raises(CredentialsError) as info:
        make_session(settings_for(env, workspace), env, lambda _: None)
    message = str(info.value)
    assert message.startswith("`role-to-assume` is set, but there are no credentials")
    assert "`AWS_PROFILE`" in message
    assert info.value.title == "No AWS credentials"


@pytest.mark.parametrize(
    "tokens",
    [
        {"AWS_SECURITY_TOKEN": "older-name-token"},
        {"AWS_SESSION_TOKEN": "newer-name-token"},
        {"AWS_SECURITY_TOKEN": "older-name-token", "AWS_SESSION_TOKEN": "newer-name-token"},
        {"AWS_SECURITY_TOKEN": "", "AWS_SESSION_TOKEN": "newer-name-token"},
    ],
)
def test_session_token_variables_are_read_as_botocore_reads_them(
    workspace: Path, tokens: dict[str, str]
) -> None:
    """AWS_SECURITY_TOKEN counts like AWS_SESSION_TOKEN, and wins when both are set, exactly
    the token botocore's environment provider picks; it is masked too."""
    from botocore.credentials import EnvProvider

    keys = {"AWS_ACCESS_KEY_ID": AMBIENT_KEY_ID, "AWS_SECRET_ACCESS_KEY": AMBIENT_SECRET}
    env = make_env(workspace) | keys | tokens
    theirs = EnvProvider(environ=keys | tokens).load()
    assert theirs is not None
    ambient = ambient_keys(env)
    assert ambient is not None and ambient.token == theirs.token
    masked: list[str] = []
    creds = make_session(settings_for(env, workspace), env, masked.append).get_credentials()
    assert creds is not None and creds.token == theirs.token
    assert theirs.token in masked


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AWS_ACCESS_KEY_ID", "AKIA EXAMPLE0001"),
        ("AWS_SECRET_ACCESS_KEY", "first-half\nsecond-half-of-secret"),
        ("AWS_SESSION_TOKEN", "tokenPartA1\r\ntokenRestB2"),
        ("AWS_SECURITY_TOKEN", "tokenC3\twithTabD4"),
        ("AWS_SECRET_ACCESS_KEY", "sécret-with-accent"),
    ],
)
def test_ambient_keys_with_whitespace_inside_name_the_variable(
    workspace: Path, name: str, value: str
) -> None:
    """A key with whitespace, a line break or a non-ASCII character inside: one
    CredentialsError naming the variable, without any part of the value."""
    env = make_env(workspace) | AMBIENT | {name: value}
    with pytest.raises(CredentialsError) as caught:
        make_session(settings_for(env, workspace), env, lambda _: None)
    message = str(caught.value)
    assert f"`{name}`" in message
    for part in value.split():
        assert part not in message


def test_ambient_keys_around_whitespace_is_forgiven(workspace: Path) -> None:
    """A trailing newline (a file read into the variable) is not part of the key."""
    env = make_env(workspace) | {
        "AWS_ACCESS_KEY_ID": f" {AMBIENT_KEY_ID}\n",
        "AWS_SECRET_ACCESS_KEY": f"{AMBIENT_SECRET}\n",
    }
    ambient = ambient_keys(env)
    assert ambient is not None
    assert (ambient.access_key, ambient.secret_key) == (AMBIENT_KEY_ID, AMBIENT_SECRET)


def test_a_broken_ambient_key_is_one_clear_error_from_the_cli(tmp_path: Path) -> None:
    """Through the one exit point: exit 1, one `::error` naming the variable (not an
    "Unexpected ValueError"), and no part of the value anywhere in the output."""
    import io

    from deployer.cli import EXIT_FAILED, main

    out, summary = tmp_path / "output", tmp_path / "summary"
    out.touch()
    summary.touch()
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<h1>hi</h1>")
    env = make_env(tmp_path, {"source_dir": "site"}) | {
        "GITHUB_OUTPUT": str(out),
        "GITHUB_STEP_SUMMARY": str(summary),
        "AWS_ACCESS_KEY_ID": AMBIENT_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": AMBIENT_SECRET,
        "AWS_SESSION_TOKEN": "tokenFirstLineX9\ntokenSecondLineY8",
    }
    stdout = io.StringIO()
    assert main([], env, stdout=stdout, cwd=tmp_path, process_env={}) == EXIT_FAILED
    text = stdout.getvalue()
    errors = [line for line in text.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "`AWS_SESSION_TOKEN`" in errors[0], text
    assert "Unexpected" not in text
    shown = "\n".join(line for line in text.splitlines() if not line.startswith("::add-mask::"))
    for part in ("tokenFirstLineX9", "tokenSecondLineY8", AMBIENT_SECRET):
        assert part not in shown + summary.read_text() + out.read_text()
