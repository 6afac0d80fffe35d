"""Credentials end to end: GitHub OIDC, role chaining, ambient keys, and the errors users hit.

Servers: a local fake of GitHub's OIDC token endpoint (asserts the bearer and the audience),
moto server for STS and, where the deploy runs with temporary `ASIA...` keys, for S3 too
(SeaweedFS only knows its own keys). One moto server of this module enforces IAM
(`/moto-api/reset-auth`): there a request with any credentials other than the assumed
role's is refused, so a successful deploy proves the role's credentials were used.
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest

from deployer import auth
from deployer.errors import CredentialsError
from devtools.action import ActionResult, run_entrypoint
from devtools.oidc import TokenEndpoint
from devtools.oidc import token_endpoint as fake_token_endpoint
from devtools.servers import Server, create_distribution, moto_server
from tests.integration.conftest import SITE_DIR, RunAction

ACCOUNT = "123456789012"  # moto's default account
README = Path(__file__).resolve().parents[2] / "README.md"
SUB = "repo:octo-org/octo-site:ref:refs/heads/main"


# --- a fake GitHub OIDC token endpoint (devtools/oidc.py) -------------------------------------


@pytest.fixture
def token_endpoint() -> Iterator[TokenEndpoint]:
    """Answers `GET ...?api-version=2.0&audience=X` with `{"value": JWT}` for the right bearer."""
    with fake_token_endpoint(
        {"sub": SUB, "aud": "sts.amazonaws.com", "jti": uuid.uuid4().hex}
    ) as e:
        yield e


# --- a moto server that enforces IAM ------------------------------------------------------------


@pytest.fixture(scope="module")
def strict_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A moto server of this module alone, so that switching IAM enforcement on is safe."""
    with moto_server(tmp_path_factory.mktemp("strict-moto")) as server:
        yield server


def set_auth(server: Server, free_requests: float) -> None:
    """Enforce IAM after the next `free_requests` requests (`inf`: never)."""
    request = urllib.request.Request(
        server.endpoint + "/moto-api/reset-auth",
        data=str(free_requests).encode(),
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response)["status"] == "ok"


@pytest.fixture
def open_moto(strict_moto: Server) -> Iterator[Server]:
    """`strict_moto` with IAM enforcement off at the start and at the end of the test."""
    set_auth(strict_moto, float("inf"))
    try:
        yield strict_moto
    finally:
        set_auth(strict_moto, float("inf"))


def readme_policy(bucket: str) -> dict[str, Any]:
    """The README's least-privilege policy, for this bucket (its S3 statements).

    moto differs from AWS in two places, so two statements are added for moto: it checks
    `DeleteObjects` against the bucket ARN (AWS: each object ARN), and it authorizes
    CloudFront calls against `*`.
    """
    text = README.read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```json\n(.*?)```", text, re.DOTALL) if "ListTheSite" in b)
    policy: dict[str, Any] = json.loads(block.replace("my-site-bucket", bucket))
    statements = [s for s in policy["Statement"] if s["Sid"] in ("ListTheSite", "WriteTheSite")]
    assert len(statements) == 2
    statements.append(
        {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": f"arn:aws:s3:::{bucket}"}
    )
    policy["Statement"] = statements
    return policy


def create_role(server: Server, name: str, bucket: str, principal: dict[str, str]) -> str:
    iam = boto3.client("iam", **server.boto_kwargs())
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": principal,
                "Action": ["sts:AssumeRoleWithWebIdentity", "sts:AssumeRole"],
            }
        ],
    }
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(
        RoleName=name, PolicyName="site", PolicyDocument=json.dumps(readme_policy(bucket))
    )
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def run_on(server: Server, workspace: Path, inputs: dict[str, str], env: dict[str, str]) -> Any:
    """Run the action with S3, CloudFront and STS all at `server`."""
    endpoints = {"s3": server.endpoint, "cloudfront": server.endpoint, "sts": server.endpoint}
    return run_entrypoint(
        workspace,
        inputs,
        endpoints=endpoints,
        extra_env=env,
        runner_dir=workspace.parent / f"runner-{uuid.uuid4().hex[:8]}",
    )


def masked_values(stdout: str) -> list[str]:
    return [
        line.removeprefix("::add-mask::")
        for line in stdout.splitlines()
        if line.startswith("::add-mask::")
    ]


def visible_text(result: ActionResult) -> str:
    """Everything a user sees, except the `::add-mask::` commands (the runner hides them)."""
    stdout = "\n".join(
        line for line in result.stdout.splitlines() if not line.startswith("::add-mask::")
    )
    return "\n".join([stdout, result.stderr, result.summary, json.dumps(result.outputs)])


def published_keys(server: Server, bucket: str) -> set[str]:
    listing = server.client("s3").list_objects_v2(Bucket=bucket)
    return {item["Key"] for item in listing.get("Contents", [])}


def site_files(workspace: Path) -> set[str]:
    root = workspace / SITE_DIR
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


# --- tests ------------------------------------------------------------------------------------


def test_oidc_deploy_runs_as_the_assumed_role(
    open_moto: Server, token_endpoint: TokenEndpoint, workspace: Path
) -> None:
    """OIDC: token fetched with bearer and audience, role assumed, deploy done with its keys.

    IAM is enforced from the first request after AssumeRoleWithWebIdentity, and the
    environment also holds bogus ambient keys: the deploy can only succeed with the role's
    temporary credentials (the role has just the README's S3 policy). Nothing secret is shown.
    """
    bucket = f"oidc-{uuid.uuid4().hex[:12]}"
    open_moto.client("s3").create_bucket(Bucket=bucket)
    role = create_role(
        open_moto,
        f"deploy-{uuid.uuid4().hex[:8]}",
        bucket,
        {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"},
    )
    ambient = {
        "AWS_ACCESS_KEY_ID": "AKIABOGUSAMBIENT0001",
        "AWS_SECRET_ACCESS_KEY": "bogus/ambient",
    }
    set_auth(open_moto, 1)  # only the (unsigned) AssumeRoleWithWebIdentity goes unchecked

    result = run_on(
        open_moto,
        workspace,
        {"role-to-assume": role, "bucket": bucket, "source-dir": SITE_DIR},
        token_endpoint.env() | ambient,
    )

    # A control: with enforcement on, other keys are refused.
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        open_moto.client("s3").list_objects_v2(Bucket=bucket)
    assert refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    set_auth(open_moto, float("inf"))

    assert result.returncode == 0, result.describe()
    assert token_endpoint.requests == [
        {
            "authorization": f"Bearer {token_endpoint.bearer}",
            "audience": "sts.amazonaws.com",
            "api-version": "2.0",
        }
    ]
    files = site_files(workspace)
    assert published_keys(open_moto, bucket) == files | {".s3-cloudfront-deploy.json"}
    assert result.outputs["uploaded-count"] == str(len(files))

    masks = masked_values(result.stdout)
    assert token_endpoint.jwt in masks
    temporary = [m for m in masks if m.startswith("ASIA")]
    assert len(temporary) == 1, masks
    first_mask = result.stdout.index("::add-mask::" + token_endpoint.jwt)
    assert result.stdout.index("::add-mask::" + temporary[0]) > first_mask
    shown = visible_text(result)
    signature = token_endpoint.jwt.rsplit(".", 1)[1]
    for secret in (token_endpoint.jwt, signature, token_endpoint.bearer, *temporary):
        assert secret not in shown
    assert "bogus/ambient" not in shown

    # A second run under the same policy: a deletion and an edit.
    site = workspace / SITE_DIR
    (site / "index.html").write_text("<!doctype html><h1>edited</h1>")
    removed = sorted(p for p in site.rglob("*.png") if p.is_file())[0]
    removed.unlink()
    set_auth(open_moto, 1)
    again = run_on(
        open_moto,
        workspace,
        {"role-to-assume": role, "bucket": bucket, "source-dir": SITE_DIR},
        token_endpoint.env() | ambient,
    )
    set_auth(open_moto, float("inf"))
    assert again.returncode == 0, again.describe()
    assert (again.outputs["uploaded-count"], again.outputs["deleted-count"]) == ("1", "1")
    assert published_keys(open_moto, bucket) == site_files(workspace) | {
        ".s3-cloudfront-deploy.json"
    }


def test_oidc_deploy_with_invalidation(
    moto_aws: Server, token_endpoint: TokenEndpoint, workspace: Path
) -> None:
    """OIDC with a custom `audience`: a second deploy after an edit invalidates `/`."""
    bucket = f"oidc-{uuid.uuid4().hex[:12]}"
    moto_aws.client("s3").create_bucket(Bucket=bucket)
    distribution = create_distribution(moto_aws, bucket)
    inputs = {
        "role-to-assume": f"arn:aws:iam::{ACCOUNT}:role/site-deploy",
        "role-session-name": "gh-42",
        "audience": "https://example.com/aud?x=1&y",
        "bucket": bucket,
        "distribution-id": distribution,
        "source-dir": SITE_DIR,
    }
    first = run_on(moto_aws, workspace, inputs, token_endpoint.env())
    assert first.returncode == 0, first.describe()
    (workspace / SITE_DIR / "index.html").write_text("<!doctype html><h1>edited</h1>")
    second = run_on(moto_aws, workspace, inputs, token_endpoint.env())

    assert second.returncode == 0, second.describe()
    assert second.outputs["uploaded-count"] == "1"
    assert second.outputs["invalidation-id"]
    assert set(json.loads(second.outputs["invalidation-paths"])) >= {"/", "/index.html"}
    assert [r["audience"] for r in token_endpoint.requests] == [inputs["audience"]] * 2
    for result in (first, second):
        assert token_endpoint.jwt not in visible_text(result)


def test_role_chained_from_key_inputs(
    open_moto: Server, workspace: Path, token_endpoint: TokenEndpoint
) -> None:
    """Keys plus `role-to-assume`: the keys call AssumeRole and the role's keys deploy.

    IAM is enforced for every request: the user may only `sts:AssumeRole`, so uploads
    succeed only with the role's credentials. The OIDC endpoint is not asked.
    """
    iam = boto3.client("iam", **open_moto.boto_kwargs())
    bucket = f"chain-{uuid.uuid4().hex[:12]}"
    open_moto.client("s3").create_bucket(Bucket=bucket)
    user = f"gh-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    role = create_role(
        open_moto,
        f"chain-{uuid.uuid4().hex[:8]}",
        bucket,
        {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{user}"},
    )
    iam.put_user_policy(
        UserName=user,
        PolicyName="assume",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role}],
            }
        ),
    )
    set_auth(open_moto, 0)

    result = run_on(
        open_moto,
        workspace,
        {
            "aws-access-key-id": key["AccessKeyId"],
            "aws-secret-access-key": key["SecretAccessKey"],
            "role-to-assume": role,
            "bucket": bucket,
            "source-dir": SITE_DIR,
        },
        token_endpoint.env(),
    )
    set_auth(open_moto, float("inf"))

    assert result.returncode == 0, result.describe()
    assert published_keys(open_moto, bucket) == site_files(workspace) | {
        ".s3-cloudfront-deploy.json"
    }
    assert token_endpoint.requests == []
    masks = masked_values(result.stdout)
    assert key["SecretAccessKey"] in masks
    assert any(m.startswith("ASIA") for m in masks)
    assert key["SecretAccessKey"] not in visible_text(result)


def test_ambient_credentials_from_the_environment(
    run_action: RunAction, seaweed: Server, workspace: Path, bucket: str
) -> None:
    """No credential inputs: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` from an earlier step."""
    result = run_action(
        workspace,
        {"bucket": bucket, "source-dir": SITE_DIR, "aws-region": seaweed.region},
        {"AWS_ACCESS_KEY_ID": seaweed.access_key, "AWS_SECRET_ACCESS_KEY": seaweed.secret_key},
    )
    assert result.returncode == 0, result.describe()
    assert result.outputs["uploaded-count"] == str(len(site_files(workspace)))
    assert seaweed.secret_key in masked_values(result.stdout)
    assert seaweed.secret_key not in visible_text(result)


def test_role_without_id_token_permission(
    run_action: RunAction, workspace: Path, bucket: str
) -> None:
    """`role-to-assume` without `id-token: write`: exit 1, the YAML fix, the fork note, no trace."""
    result = run_action(
        workspace,
        {
            "role-to-assume": f"arn:aws:iam::{ACCOUNT}:role/site-deploy",
            "bucket": bucket,
            "source-dir": SITE_DIR,
        },
    )
    assert result.returncode == 1, result.describe()
    assert "Traceback" not in result.stdout + result.stderr
    error_lines = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert len(error_lines) == 1, result.describe()
    assert "GitHub OIDC token not available" in error_lines[0]
    assert "permissions:%0A      id-token: write%0A      contents: read" in error_lines[0]
    summary_lines = [line.lstrip("- ").strip() for line in result.summary.splitlines()]
    assert "permissions:" in summary_lines, result.summary
    assert "id-token: write" in summary_lines, result.summary
    assert "pull request from a fork" in result.summary
    assert result.outputs.get("uploaded-count", "0") == "0"


def test_token_request_refused(
    run_action: RunAction, workspace: Path, bucket: str, token_endpoint: TokenEndpoint
) -> None:
    """The token service says 403: exit 1 naming the status, asked once, bearer never shown."""
    token_endpoint.status = 403
    result = run_action(
        workspace,
        {
            "role-to-assume": f"arn:aws:iam::{ACCOUNT}:role/site-deploy",
            "bucket": bucket,
            "source-dir": SITE_DIR,
        },
        token_endpoint.env(),
    )
    assert result.returncode == 1, result.describe()
    assert "GitHub OIDC token request failed" in result.stdout
    assert "(HTTP 403)" in result.summary
    assert len(token_endpoint.requests) == 1
    assert token_endpoint.bearer not in visible_text(result)
    assert "Traceback" not in result.stdout + result.stderr


@pytest.fixture
def denying_sts() -> Iterator[str]:
    """An STS endpoint that refuses every AssumeRoleWithWebIdentity as AWS does (403 XML)."""
    body = (
        b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
        b"<Type>Sender</Type><Code>AccessDenied</Code>"
        b"<Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message>"
        b"</Error><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>"
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(403)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_trust_policy_mismatch_names_sub_and_aud(
    run_action: RunAction,
    workspace: Path,
    bucket: str,
    token_endpoint: TokenEndpoint,
    denying_sts: str,
) -> None:
    """STS AccessDenied: the message shows the token's `sub` and `aud` for the trust policy."""
    result = run_action(
        workspace,
        {
            "role-to-assume": f"arn:aws:iam::{ACCOUNT}:role/site-deploy",
            "bucket": bucket,
            "source-dir": SITE_DIR,
        },
        token_endpoint.env() | {"AWS_ENDPOINT_URL_STS": denying_sts},
    )
    assert result.returncode == 1, result.describe()
    assert "Could not assume the AWS role" in result.stdout
    assert f"`{SUB}`" in result.summary
    assert "token.actions.githubusercontent.com:aud" in result.summary
    assert "(AccessDenied)" in result.summary
    assert token_endpoint.jwt not in visible_text(result)
    assert "Traceback" not in result.stdout + result.stderr


def test_token_request_retries_server_errors(token_endpoint: TokenEndpoint) -> None:
    """500 and 503 are retried with backoff; the third answer (200) gives the token."""
    statuses = iter([503, 200])
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        token_endpoint.status = next(statuses, 200)

    token_endpoint.status = 500
    token = auth.request_id_token(token_endpoint.env(), "sts.amazonaws.com", sleep=sleep)
    assert token == token_endpoint.jwt
    assert len(token_endpoint.requests) == 3
    assert sleeps == [2.0, 4.0]


def test_token_request_gives_up_after_three_attempts(token_endpoint: TokenEndpoint) -> None:
    """A service that keeps failing: CredentialsError naming the status, no token, no bearer."""
    token_endpoint.status = 500
    with pytest.raises(CredentialsError) as info:
        auth.request_id_token(token_endpoint.env(), "sts.amazonaws.com", sleep=lambda _: None)
    assert "(HTTP 500)" in str(info.value)
    assert token_endpoint.bearer not in str(info.value)
    assert len(token_endpoint.requests) == 3


def test_token_request_unreachable() -> None:
    """Nothing listens at the URL: three attempts, then a CredentialsError (no traceback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"http://127.0.0.1:{port}/t?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "bearer-value",
    }
    sleeps: list[float] = []
    with pytest.raises(CredentialsError, match=r"failed \(URLError\)"):
        auth.request_id_token(env, "sts.amazonaws.com", sleep=sleeps.append)
    assert sleeps == [2.0, 4.0]
