"""Start and stop real S3 / CloudFront servers on loopback, for tests, the demo and bench.

Each context manager picks free 127.0.0.1 ports, starts the server as a child
process with its output in a log file under `workdir`, waits until it answers,
yields a `Server` (endpoint and credentials), and on exit stops it with SIGTERM,
then SIGKILL after a timeout.

    with seaweedfs(tmp) as s3, moto_server(tmp) as aws:
        s3.client("s3").create_bucket(Bucket="site")

Binaries are looked up next to `sys.executable` first (`.venv/bin/weed`), then on PATH.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
import botocore.exceptions
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_cloudfront import CloudFrontClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sts import STSClient

LOOPBACK = "127.0.0.1"
REGION = "us-east-1"
# SeaweedFS opens port+10000 for gRPC beside every HTTP port: keep both below 65535.
_SEAWEED_PORT_RANGE = (20000, 55534)
_GRPC_OFFSET = 10000
_reserved: set[int] = set()
_reserve_lock = threading.Lock()


class ServerError(RuntimeError):
    """A server did not start (the message names its log file)."""


@dataclass(frozen=True)
class Server:
    """A running server: where it listens and the credentials it accepts."""

    name: str
    endpoint: str
    access_key: str
    secret_key: str
    log_path: Path
    pid: int
    region: str = REGION
    extra: dict[str, str] = field(default_factory=dict)

    def boto_kwargs(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": self.region,
        }

    @overload
    def client(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    def client(self, service: Literal["cloudfront"]) -> CloudFrontClient: ...
    @overload
    def client(self, service: Literal["sts"]) -> STSClient: ...
    def client(self, service: str) -> Any:
        """A boto3 client for `service` against this server (path-style addressing)."""
        config = Config(
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=30,
        )
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            config=config,
            **self.boto_kwargs(),
        )


def create_distribution(cloudfront: Server, bucket: str) -> str:
    """A CloudFront distribution (on moto) whose S3 origin is `bucket`; returns its ID.

    The origin domain is `<bucket>.s3.amazonaws.com` with an empty origin path, the
    shape of a real S3-backed site.
    """
    response = cloudfront.client("cloudfront").create_distribution(
        DistributionConfig={
            "CallerReference": secrets.token_hex(8),
            "Comment": f"site in {bucket}",
            "Enabled": True,
            "DefaultRootObject": "index.html",
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "site",
                        "DomainName": f"{bucket}.s3.amazonaws.com",
                        "OriginPath": "",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "site",
                "ViewerProtocolPolicy": "redirect-to-https",
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                "MinTTL": 0,
                "TrustedSigners": {"Enabled": False, "Quantity": 0},
            },
        }
    )
    return response["Distribution"]["Id"]


def find_binary(name: str) -> str:
    """`name` next to the running interpreter (a venv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ServerError(
            f"`{name}` was not found next to {sys.executable} nor on PATH; install the dev "
            "requirements (`make test` does) or `pip install -r requirements/dev.txt`"
        )
    return found


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free loopback port chosen by the kernel, not handed out before by this process."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = int(sock.getsockname()[1])
        with _reserve_lock:
            if port not in _reserved:
                _reserved.add(port)
                return port


def seaweed_ports(count: int) -> list[int]:
    """`count` ports below 55535 whose gRPC twin (port+10000) is also free."""
    rng = random.Random()  # noqa: S311 - not security relevant
    chosen: list[int] = []
    for _ in range(10000):
        port = rng.randint(*_SEAWEED_PORT_RANGE)
        twin = port + _GRPC_OFFSET
        with _reserve_lock:
            if port in _reserved or twin in _reserved or port in chosen:
                continue
            if _port_free(port) and _port_free(twin):
                _reserved.update((port, twin))
                chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise ServerError(f"could not find {count} free port pairs for SeaweedFS")


def _http_answers(port: int, path: str = "/") -> bool:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
    try:
        conn.request("GET", path)
        conn.getresponse().read()
    except OSError:
        return False
    finally:
        conn.close()
    return True


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _wait_ready(
    proc: subprocess.Popen[bytes],
    name: str,
    log_path: Path,
    ready: Any,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(
                f"{name} exited with code {proc.returncode} while starting; log "
                f"{log_path}:\n{_log_tail(log_path)}"
            )
        if ready():
            return
        time.sleep(0.1)
    raise ServerError(
        f"{name} did not become ready within {timeout:.0f} s; log {log_path}:\n"
        f"{_log_tail(log_path)}"
    )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM, wait up to `timeout` seconds, then SIGKILL. Only this process."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def _process(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    ready: Any,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    start_timeout: float = 60.0,
    stop_timeout: float = 20.0,
) -> Iterator[subprocess.Popen[bytes]]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, not the server
        )
    try:
        _wait_ready(proc, name, log_path, ready, start_timeout)
        yield proc
    finally:
        stop_process(proc, stop_timeout)


def _server_env() -> dict[str, str]:
    """The parent's environment without AWS_* (servers must not see real credentials)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def _remove_seaweed_sockets(ports: Sequence[int]) -> None:
    folders = {Path(tempfile.gettempdir()), Path("/tmp")}  # noqa: S108 - where weed writes them
    for folder in folders:
        for port in ports:
            for grpc_port in (port, port + _GRPC_OFFSET):
                for sock in folder.glob(f"seaweedfs-*-grpc-{grpc_port}.sock"):
                    with contextlib.suppress(OSError):
                        sock.unlink()


def _s3_ready(server: Server) -> bool:
    """True once a signed ListBuckets succeeds (the filer behind S3 is up)."""
    try:
        server.client("s3").list_buckets()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return False
    return True


@contextlib.contextmanager
def seaweedfs(
    workdir: Path,
    *,
    access_key: str | None = None,
    secret_key: str | None = None,
    tls: tuple[Path, Path] | None = None,
) -> Iterator[Server]:
    """SeaweedFS (`weed mini`) with S3 on a free loopback port and one admin identity.

    With `tls` (certificate file, key file) S3 is also served over HTTPS on a second
    port: `extra["https"]` is its `https://` endpoint.

    The secret key is random unless given, so tests can check that it never leaks.
    SIGTERM usually stops it in 3-12 s; its data is throwaway, so SIGKILL follows after 8 s.
    """
    weed = find_binary("weed")
    root = Path(workdir) / f"seaweedfs-{secrets.token_hex(3)}"
    (root / "data").mkdir(parents=True)
    (root / "logs").mkdir()
    access_key = access_key or "AKSW" + secrets.token_hex(8).upper()
    secret_key = secret_key or secrets.token_urlsafe(30)
    config = {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    s3_json = root / "s3.json"
    s3_json.write_text(json.dumps(config))
    s3_json.chmod(0o600)
    ports = seaweed_ports(6 if tls else 5)
    s3_port, master_port, volume_port, filer_port, admin_port = ports[:5]
    argv = [
        weed,
        f"-logdir={root / 'logs'}",
        "mini",
        f"-dir={root / 'data'}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        "-master.telemetry=false",
        f"-s3.port={s3_port}",
        f"-s3.config={s3_json}",
        f"-master.port={master_port}",
        f"-volume.port={volume_port}",
        f"-filer.port={filer_port}",
        f"-admin.port={admin_port}",
        # One volume per bucket: `weed mini` sizes its volume limit from the free disk
        # (65 here), and a test session makes more buckets than that, after which every
        # write is an InternalError ("no free volumes left"). Volume files are sparse.
        "-volume.max=2000",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-filer.localSocket={root / 'filer.sock'}",
        f"-s3.localSocket={root / 's3.sock'}",
    ]
    extra: dict[str, str] = {}
    if tls is not None:
        argv += [f"-s3.port.https={ports[5]}", f"-s3.cert.file={tls[0]}", f"-s3.key.file={tls[1]}"]
        extra["https"] = f"https://{LOOPBACK}:{ports[5]}"
    log_path = root / "weed.log"
    proc_pid: list[int] = []

    def make_server() -> Server:
        return Server(
            name="seaweedfs",
            endpoint=f"http://{LOOPBACK}:{s3_port}",
            access_key=access_key,
            secret_key=secret_key,
            log_path=log_path,
            pid=proc_pid[0] if proc_pid else 0,
            extra=extra,
        )

    def ready() -> bool:
        return _http_answers(s3_port, "/healthz") and _s3_ready(make_server())

    env = _server_env()
    if tls is not None:
        # Amazon S3 speaks HTTP/1.1 only (its TLS endpoints pick `http/1.1` in ALPN), but a Go
        # server offers HTTP/2 over TLS by default: a Go client (s5cmd) would then send all
        # its requests down one connection with one handshake, which no client gets from S3.
        env["GODEBUG"] = ",".join(filter(None, (env.get("GODEBUG"), "http2server=0")))
    try:
        with _process(
            "SeaweedFS", argv, log_path, ready, env=env, cwd=root, stop_timeout=8
        ) as proc:
            proc_pid.append(proc.pid)
            yield make_server()
    finally:
        _remove_seaweed_sockets(ports)


@contextlib.contextmanager
def moto_server(workdir: Path | None = None) -> Iterator[Server]:
    """moto server (S3, CloudFront, STS in memory); accepts any credentials."""
    port = free_port()
    root = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="moto-"))
    log_path = root / f"moto-{port}.log"
    argv = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
    env = _server_env()
    env.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")
    with _process(
        "moto server", argv, log_path, lambda: _http_answers(port, "/moto-api/"), env=env
    ) as proc:
        yield Server(
            name="moto",
            endpoint=f"http://{LOOPBACK}:{port}",
            access_key="testing",
            secret_key="testing",  # noqa: S106 - moto accepts anything
            log_path=log_path,
            pid=proc.pid,
        )


@contextlib.contextmanager
def rclone_s3(
    workdir: Path, *, access_key: str | None = None, secret_key: str | None = None
) -> Iterator[Server]:
    """`rclone serve s3` over a folder: a second S3 implementation with its own quirks."""
    rclone = find_binary("rclone")
    port = free_port()
    root = Path(workdir) / f"rclone-{port}"
    (root / "data").mkdir(parents=True)
    access_key = access_key or "AKRC" + secrets.token_hex(8).upper()
    secret_key = secret_key or secrets.token_urlsafe(30)
    log_path = root / "rclone.log"
    argv = [
        rclone,
        "serve",
        "s3",
        "--addr",
        f"{LOOPBACK}:{port}",
        "--auth-key",
        f"{access_key},{secret_key}",
        str(root / "data"),
    ]
    env = _server_env()
    env["RCLONE_CONFIG"] = "/dev/null"
    with _process("rclone serve s3", argv, log_path, lambda: _http_answers(port), env=env) as p:
        yield Server(
            name="rclone",
            endpoint=f"http://{LOOPBACK}:{port}",
            access_key=access_key,
            secret_key=secret_key,
            log_path=log_path,
            pid=p.pid,
            extra={"data_dir": str(root / "data")},
        )
