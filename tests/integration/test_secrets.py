"""Secrets never leak: every error path, driven with random secrets, shows none of them.

For each run, the access key ID, secret key, session token (and OIDC tokens where used)
are random, and none of them (nor a 16-character piece of one) may appear anywhere in
stdout, stderr, the job summary or the step outputs. The `::add-mask::` lines are the
one exception: the runner consumes them and they never reach the log.

The paths: every case of the bad-input table (config errors with random keys and a
random session token, with `RUNNER_DEBUG=1`); refused requests against SeaweedFS with
its random secret (missing bucket, access denied, too many deletions, a missing
distribution, a write that always fails, an unreadable server answer with a traceback);
keys from the environment instead of inputs; moto with a session token; GitHub OIDC with
an unreachable token endpoint and with a token the rest of the chain cannot use.
"""

from __future__ import annotations

import json
import secrets
import string
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from devtools.action import ActionResult, run_entrypoint
from devtools.faultproxy import FaultProxy, Faults
from devtools.servers import Server, create_distribution, free_port
from tests.integration.conftest import RunAction
from tests.integration.test_bad_input import (
    CASES,
    SEQUENTIAL,
    Case,
    Ctx,
    _corrupt_sizes,
    case_inputs,
    error_annotations,
    good_inputs,
    make_read_only_keys,
    make_workspace,
    run_batch,
    visible,
)

CONFIG_CASES = [c for c in CASES if c.id not in SEQUENTIAL]
AWS_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


def random_secret(length: int = 40) -> str:
    """Shaped like an AWS secret key (base64 alphabet, `+` and `/` included)."""
    return "".join(secrets.choice(AWS_SECRET_ALPHABET) for _ in range(length))


def random_key_id() -> str:
    return "AKIA" + "".join(
        secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16)
    )


def assert_no_leak(result: ActionResult, *values: str) -> None:
    """None of `values`, nor a 16-character piece of one, is visible in the run's output."""
    text = visible(result)
    for value in values:
        assert value, "an empty secret checks nothing"
        pieces = {value, *(value[i : i + 16] for i in range(0, max(1, len(value) - 15), 4))}
        for piece in pieces:
            assert piece not in text, f"secret piece {piece!r} leaked\n{result.describe()}"


def masked(result: ActionResult) -> set[str]:
    return {
        line.removeprefix("::add-mask::")
        for line in result.stdout.splitlines()
        if line.startswith("::add-mask::")
    }


@dataclass(frozen=True)
class Secrets:
    key_id: str
    secret: str
    token: str


@pytest.fixture(scope="module")
def config_batch(
    seaweed: Server, moto_aws: Server, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[ActionResult, Secrets]]:
    """Every config error of the table, each with its own random keys and token, in parallel."""
    root = tmp_path_factory.mktemp("secrets-batch")
    jobs = {}
    chosen = {}
    for case in CONFIG_CASES:
        values = Secrets(random_key_id(), random_secret(), random_secret(120))
        ctx = Ctx(
            bucket="site-bucket",
            dist="E2ABCDEF123456",
            key_id=values.key_id,
            secret=values.secret,
            ro_key_id=random_key_id(),
            ro_secret=random_secret(),
        )
        inputs = {**case_inputs(case, ctx), "aws-session-token": values.token}
        jobs[case.id] = (make_workspace(root / case.id), inputs, {"RUNNER_DEBUG": "1"})
        chosen[case.id] = values
    results = run_batch(jobs, seaweed=seaweed, moto=moto_aws, root=root / "runners")
    return {name: (result, chosen[name]) for name, result in results.items()}


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c.id for c in CONFIG_CASES])
def test_config_errors_with_random_credentials(
    case: Case, config_batch: dict[str, tuple[ActionResult, Secrets]]
) -> None:
    """Every config error of the table, with random keys and session token, debug on."""
    result, values = config_batch[case.id]
    assert result.returncode != 0, result.describe()
    assert len(error_annotations(result.stdout)) == 1, result.describe()
    assert_no_leak(result, values.secret, values.token, values.key_id)


@pytest.fixture(scope="module")
def site_ctx(seaweed: Server, moto_aws: Server) -> Ctx:
    """A bucket and distribution on the session servers; SeaweedFS's secret is random."""
    bucket = f"sec-{secrets.token_hex(8)}"
    client = seaweed.client("s3")
    client.create_bucket(Bucket=bucket)
    for i in range(3):
        client.put_object(Bucket=bucket, Key=f"stale-{i}.txt", Body=b"x")
    return Ctx(
        bucket=bucket,
        dist=create_distribution(moto_aws, bucket),
        key_id=seaweed.access_key,
        secret=seaweed.secret_key,
        ro_key_id="",
        ro_secret="",
    )


@pytest.mark.parametrize(
    "case_id", ["wrong-secret", "bucket-missing", "distribution-missing", "max-delete-exceeded"]
)
@pytest.mark.parametrize("debug", [False, True], ids=["plain", "RUNNER_DEBUG"])
def test_refused_requests_keep_the_real_secret(
    case_id: str, debug: bool, run_action: RunAction, tmp_path: Path, site_ctx: Ctx
) -> None:
    """S3 and CloudFront refusals with SeaweedFS's real (random) keys: nothing leaks."""
    case = next(c for c in CASES if c.id == case_id)
    env = {"RUNNER_DEBUG": "1"} if debug else {}
    result = run_action(make_workspace(tmp_path), case_inputs(case, site_ctx), extra_env=env)
    assert result.returncode != 0, result.describe()
    assert_no_leak(result, site_ctx.secret, site_ctx.key_id)
    if case_id == "wrong-secret":
        assert_no_leak(result, "wrong-" + site_ctx.secret)


def test_access_denied_keeps_the_reader_secret(
    run_action: RunAction, tmp_path: Path, site_ctx: Ctx, seaweed: Server
) -> None:
    """Write refused for a read-only identity: its keys stay hidden."""
    key_id, secret = make_read_only_keys(seaweed)
    inputs = {**good_inputs(site_ctx), "aws-access-key-id": key_id, "aws-secret-access-key": secret}
    result = run_action(make_workspace(tmp_path), inputs, extra_env={"RUNNER_DEBUG": "1"})
    assert result.returncode != 0, result.describe()
    assert "access denied" in error_annotations(result.stdout)[0].lower()
    assert_no_leak(result, secret, key_id)


def test_transfer_failure_and_unexpected_error_keep_the_secret(
    run_action: RunAction, tmp_path: Path, site_ctx: Ctx, seaweed: Server
) -> None:
    """A write that always fails, and a traceback (RUNNER_DEBUG=1) from a bad server answer."""
    inputs = {**good_inputs(site_ctx), "max-delete": "100"}
    with FaultProxy(seaweed.endpoint, Faults(fail_keys=r"app\.js$")) as proxy:
        failed = run_action(make_workspace(tmp_path / "a"), {**inputs, "endpoint-url": proxy.url})
    assert failed.returncode != 0 and "assets/app.js" in failed.summary, failed.describe()
    assert_no_leak(failed, site_ctx.secret, site_ctx.key_id)

    # Through an HTTP proxy every request goes through botocore, whose parser fails on the
    # corrupt answer with an error this program does not expect (as in test_bad_input.py).
    with FaultProxy(seaweed.endpoint, response_hook=_corrupt_sizes) as proxy:
        crashed = run_action(
            make_workspace(tmp_path / "b"),
            {**inputs, "endpoint-url": seaweed.endpoint},
            extra_env={"RUNNER_DEBUG": "1", "HTTP_PROXY": proxy.url, "NO_PROXY": ""},
        )
    assert crashed.returncode != 0 and "Traceback" in crashed.stderr, crashed.describe()
    assert_no_leak(crashed, site_ctx.secret, site_ctx.key_id)


def test_ambient_keys_from_the_environment(
    run_action: RunAction, tmp_path: Path, site_ctx: Ctx
) -> None:
    """Keys set by an earlier step (AWS_* variables), wrong: refused, masked, not shown."""
    key_id, secret, token = random_key_id(), random_secret(), random_secret(200)
    inputs = {
        **good_inputs(site_ctx),
        "aws-access-key-id": "",
        "aws-secret-access-key": "",
    }
    env = {
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_SESSION_TOKEN": token,
        "RUNNER_DEBUG": "1",
    }
    result = run_action(make_workspace(tmp_path), inputs, extra_env=env)
    assert result.returncode != 0, result.describe()
    assert {secret, token} <= masked(result), "ambient secrets are not masked"
    assert_no_leak(result, secret, token, key_id)


def test_session_token_against_moto(tmp_path: Path, moto_aws: Server) -> None:
    """moto accepts any keys and token: a missing bucket, then a missing distribution."""
    key_id, secret, token = random_key_id(), random_secret(), random_secret(300)
    s3 = moto_aws.client("s3")
    bucket = f"moto-{secrets.token_hex(6)}"
    s3.create_bucket(Bucket=bucket)
    endpoints = {"s3": moto_aws.endpoint, "cloudfront": moto_aws.endpoint}
    base = {
        "aws-access-key-id": key_id,
        "aws-secret-access-key": secret,
        "aws-session-token": token,
        "bucket": bucket,
        "source-dir": "site",
    }
    for number, extra in enumerate(
        [{"bucket": bucket + "-missing"}, {"distribution-id": "E0NOSUCHDIST01"}]
    ):
        result = run_entrypoint(
            make_workspace(tmp_path / str(number)),
            {**base, **extra},
            endpoints=endpoints,
            extra_env={"RUNNER_DEBUG": "1"},
            runner_dir=tmp_path / f"runner-{number}",
        )
        assert result.returncode != 0, result.describe()
        assert {secret, token} <= masked(result)
        assert_no_leak(result, secret, token, key_id)


@pytest.fixture
def jwt_endpoint() -> Iterator[tuple[str, str]]:
    """A fake GitHub OIDC token endpoint answering a random (unsigned) JWT: (url, jwt)."""
    jwt = ".".join(secrets.token_urlsafe(n).rstrip("=") for n in (24, 90, 40))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"value": jwt}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token?api-version=2.0", jwt
    finally:
        server.shutdown()
        server.server_close()


def test_oidc_tokens_stay_hidden(
    run_action: RunAction, tmp_path: Path, site_ctx: Ctx, jwt_endpoint: tuple[str, str]
) -> None:
    """The OIDC request token and the JWT: token endpoint down; JWT useless for S3."""
    request_token = random_secret(60)
    inputs = {
        **good_inputs(site_ctx),
        "aws-access-key-id": "",
        "aws-secret-access-key": "",
        "role-to-assume": "arn:aws:iam::123456789012:role/deploy-site",
    }
    down = f"http://127.0.0.1:{free_port()}/token?api-version=2.0"
    for number, url in enumerate([down, jwt_endpoint[0]]):
        env = {
            "ACTIONS_ID_TOKEN_REQUEST_URL": url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": request_token,
            "RUNNER_DEBUG": "1",
        }
        result = run_action(make_workspace(tmp_path / str(number)), inputs, extra_env=env)
        # Down: no token. Up: moto's STS issues keys that SeaweedFS does not know.
        assert result.returncode != 0, result.describe()
        assert_no_leak(result, request_token, jwt_endpoint[1])


@pytest.mark.parametrize("where", ["stdout", "stderr", "summary", "outputs"])
def test_the_leak_check_sees_every_channel(where: str) -> None:
    """The checker itself: a secret (or a piece of it) anywhere but `::add-mask::` is caught."""
    secret = random_secret()
    fields: dict[str, object] = {
        "returncode": 1,
        "stdout": f"::add-mask::{secret}\nok",
        "stderr": "",
        "outputs": {},
        "summary": "",
    }
    leaked = f"key {secret[3:23]} here"
    fields[where] = {"changed-keys": leaked} if where == "outputs" else leaked
    result = ActionResult(**fields)  # type: ignore[arg-type]
    with pytest.raises(AssertionError):
        assert_no_leak(result, secret)
    assert_no_leak(ActionResult(1, f"::add-mask::{secret}\n", "", {}, ""), secret)


def test_local_cli_with_dotenv_never_prints_the_secret(
    run_action: RunAction, tmp_path: Path, site_ctx: Ctx, seaweed: Server
) -> None:
    """Outside Actions there is no `::add-mask::`: the secret must appear nowhere at all."""
    secret, token = random_secret(), random_secret(160)
    workspace = make_workspace(tmp_path)
    cases = {
        "wrong secret": f"AWS_ACCESS_KEY_ID={seaweed.access_key}\nAWS_SECRET_ACCESS_KEY={secret}\n",
        "with a token": (
            f"AWS_ACCESS_KEY_ID={seaweed.access_key}\nAWS_SECRET_ACCESS_KEY={secret}\n"
            f"AWS_SESSION_TOKEN={token}\n"
        ),
        "partial keys": f"AWS_SECRET_ACCESS_KEY={secret}\n",
    }
    for name, dotenv in cases.items():
        (workspace / ".env").write_text(
            f"S3CFD_BUCKET={site_ctx.bucket}\nS3CFD_SOURCE_DIR=site\n{dotenv}"
        )
        inputs = {"aws-access-key-id": "", "aws-secret-access-key": "", "bucket": ""}
        env = {"GITHUB_ACTIONS": "", "S3CFD_DEBUG": "1"}
        result = run_action(workspace, inputs, extra_env=env)
        assert result.returncode != 0, (name, result.describe())
        expected = "AWS_ACCESS_KEY_ID" if name == "partial keys" else "S3 "
        assert expected in result.stdout + result.stderr, (name, result.describe())
        assert "::add-mask::" not in result.stdout
        assert_no_leak(result, secret, token)
