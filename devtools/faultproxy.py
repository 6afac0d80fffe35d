"""A fault-injecting HTTP reverse proxy for S3 traffic, on 127.0.0.1.

Put it between the program and a real S3 server (SeaweedFS, rclone serve s3) and
point the program's endpoint at `proxy.url`. Per request whose method is in
`Faults.methods` (by default only writes: PUT, POST, DELETE) it draws once and,
at the configured rates, answers instead of the server:

- `slowdown`: 503 with an S3 `SlowDown` XML error body,
- `internal`: 500 with an S3 `InternalError` XML error body,
- `reset`: reads the whole request, then closes the socket abruptly (TCP RST),
- `lost`: forwards the request (it takes effect), then resets instead of answering,
- `delay`: waits `delay_s` and then forwards the request normally;
- `custom`: answers `custom_error` (status, code, message), by default CloudFront's
  400 `TooManyInvalidationsInProgress` (the proxy works in front of moto too).

`fail_keys` is a regular expression: every write (in `methods`) to a key that it
matches (`re.search` over the decoded key, bucket excluded) fails every time with
`fail_with` (one of the error kinds above, or `denied` for a 403 AccessDenied).
`max_faults_per_key` caps the random faults per (method, key), so that a client
with enough retry attempts is guaranteed to get through: a transient fault.

Requests are forwarded byte for byte: the body (fixed length or chunked) is
relayed exactly as received, and the `Host` header is kept unchanged, because
SigV4 signs it and SeaweedFS verifies it (a rewritten Host gives
SignatureDoesNotMatch). Only hop-by-hop headers (`Connection`, `Keep-Alive`,
`Expect`, ...) are dropped; none of them is signed.

`response_hook(method, path, status, body) -> body` may rewrite what the server
answered (a malformed listing, say); Content-Length follows the new body.

`tls` (a server-side `ssl.SSLContext`) makes it serve HTTPS: an endpoint with a
certificate of one's choosing in front of a plain-HTTP server.

`proxy.stats` counts what happened (thread-safe snapshot): requests per method,
faults injected per kind, writes that landed (2xx from the server), and the keys
whose PUT landed, in order. Run it by hand with
`python -m devtools.faultproxy --upstream http://127.0.0.1:8333 --slowdown 0.1`.
"""

from __future__ import annotations

import argparse
import http.client
import io
import random
import re
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from botocore.exceptions import ClientError

from devtools.action import run_entrypoint
from devtools.servers import create_distribution, moto_server, seaweedfs

FaultKind = Literal["slowdown", "internal", "reset", "lost", "delay", "denied", "custom"]
WRITE_METHODS = frozenset({"PUT", "POST", "DELETE"})
ALL_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE"})

# Hop-by-hop headers: meaningful for one connection only, never signed by SigV4.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "expect"}
)

_ERRORS: dict[str, tuple[int, str, str]] = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "internal": (500, "InternalError", "We encountered an internal error. Please try again."),
    "denied": (403, "AccessDenied", "Access Denied"),
}


@dataclass(frozen=True, slots=True)
class Faults:
    """What to inject. Rates are probabilities per eligible request; their sum must be <= 1."""

    methods: frozenset[str] = WRITE_METHODS
    slowdown: float = 0.0
    internal: float = 0.0
    reset: float = 0.0
    lost: float = 0.0  # forwarded (it lands), then the answer is lost: a reset instead
    delay: float = 0.0
    delay_s: float = 0.5
    custom: float = 0.0  # rate of `custom_error` answers
    custom_error: tuple[int, str, str] = (
        400,
        "TooManyInvalidationsInProgress",
        "Your request contains too many invalidations in progress.",
    )
    fail_keys: str | None = None
    fail_with: FaultKind = "internal"
    max_faults_per_key: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        rates = (self.slowdown, self.internal, self.reset, self.lost, self.delay, self.custom)
        if any(r < 0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError(f"fault rates must be >= 0 and sum to at most 1, got {rates}")
        if self.fail_with == "delay":
            raise ValueError("fail_with must be an error kind, not `delay`")
        if self.fail_keys is not None:
            re.compile(self.fail_keys)


@dataclass(slots=True)
class Stats:
    """A snapshot of what the proxy saw and did."""

    requests: Counter[str] = field(default_factory=Counter)  # per method
    attempts: Counter[str] = field(default_factory=Counter)  # eligible requests per key
    injected: Counter[str] = field(default_factory=Counter)  # per fault kind
    forwarded: Counter[str] = field(default_factory=Counter)  # per method
    landed: Counter[str] = field(default_factory=Counter)  # 2xx writes per method
    landed_put_keys: list[str] = field(default_factory=list)  # PutObject (not copies/parts)
    landed_copy_keys: list[str] = field(default_factory=list)  # CopyObject targets
    failed_keys: list[str] = field(default_factory=list)  # keys hit by the `fail_keys` rule
    upstream_errors: int = 0

    @property
    def faults(self) -> int:
        """Injected failures (delays are not failures)."""
        return sum(n for kind, n in self.injected.items() if kind != "delay")


# (method, path, status, body) -> the body to send instead (e.g. a corrupted listing).
ResponseHook = Callable[[str, str, int, bytes], bytes]


def split_path(path: str) -> tuple[str, str]:
    """`/bucket/some/key?x=1` -> (`bucket`, `some/key`), decoded. Path-style addressing."""
    raw = urlsplit(path).path
    bucket, _, key = raw.lstrip("/").partition("/")
    return unquote(bucket), unquote(key)


class FaultProxy:
    """A threaded reverse proxy to `upstream` that injects `faults`. Use as a context manager."""

    def __init__(
        self,
        upstream: str,
        faults: Faults | None = None,
        *,
        port: int = 0,
        response_hook: ResponseHook | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http:// URL, got {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self._faults = faults or Faults()
        self.response_hook = response_hook
        self._rng = random.Random(self._faults.seed)  # noqa: S311 - not crypto
        self._lock = threading.Lock()
        self._stats = Stats()
        self._per_key: Counter[tuple[str, str]] = Counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _make_handler(self))
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:  # serve HTTPS (the TLS handshake happens on accept)
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="faultproxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration and counters ----------------------------------------------------
    @property
    def faults(self) -> Faults:
        return self._faults

    def configure(self, faults: Faults | None = None, **changes: object) -> None:
        """Replace the fault settings (or change some fields) while running."""
        with self._lock:
            base = faults or self._faults
            self._faults = replace(base, **changes)  # type: ignore[arg-type]
            if faults is not None and faults.seed is not None:
                self._rng = random.Random(faults.seed)  # noqa: S311

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = Stats()
            self._per_key.clear()

    @property
    def stats(self) -> Stats:
        with self._lock:
            s = self._stats
            return Stats(
                requests=Counter(s.requests),
                attempts=Counter(s.attempts),
                injected=Counter(s.injected),
                forwarded=Counter(s.forwarded),
                landed=Counter(s.landed),
                landed_put_keys=list(s.landed_put_keys),
                landed_copy_keys=list(s.landed_copy_keys),
                failed_keys=list(s.failed_keys),
                upstream_errors=s.upstream_errors,
            )

    def wait_for(self, predicate: Callable[[Stats], bool], timeout: float = 30.0) -> Stats:
        """Poll until `predicate(stats)` holds; raise TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.stats
            if predicate(snap):
                return snap
            if time.monotonic() > deadline:
                raise TimeoutError(f"proxy condition not met within {timeout}s: {snap}")
            time.sleep(0.01)

    # -- decisions (called from handler threads) --------------------------------------------
    def _decide(self, method: str, key: str) -> FaultKind | None:
        with self._lock:
            f = self._faults
            self._stats.requests[method] += 1
            if method not in f.methods:
                return None
            self._stats.attempts[key] += 1
            if f.fail_keys is not None and key and re.search(f.fail_keys, key):
                self._stats.injected[f.fail_with] += 1
                self._stats.failed_keys.append(key)
                return f.fail_with
            draw = self._rng.random()
            if f.max_faults_per_key is not None and self._per_key[(method, key)] >= (
                f.max_faults_per_key
            ):
                return None
            edge = 0.0
            kind: FaultKind
            for kind, rate in (
                ("slowdown", f.slowdown),
                ("internal", f.internal),
                ("reset", f.reset),
                ("lost", f.lost),
                ("custom", f.custom),
                ("delay", f.delay),
            ):
                edge += rate
                if draw < edge:
                    self._stats.injected[kind] += 1
                    if kind != "delay":
                        self._per_key[(method, key)] += 1
                    return kind
            return None

    def _record(
        self, method: str, path: str, key: str, status: int | None, *, copy: bool = False
    ) -> None:
        with self._lock:
            if status is None:
                self._stats.upstream_errors += 1
                return
            self._stats.forwarded[method] += 1
            if method in WRITE_METHODS and 200 <= status < 300:
                self._stats.landed[method] += 1
                query = urlsplit(path).query
                if method == "PUT" and key and not query:
                    (self._stats.landed_copy_keys if copy else self._stats.landed_put_keys).append(
                        key
                    )

    @property
    def delay_s(self) -> float:
        return self._faults.delay_s


def _read_chunked(rfile: io.BufferedIOBase) -> bytes:
    """Read a chunked body and return it raw (framing included), to relay byte for byte."""
    read_line = rfile.readline
    read = rfile.read
    raw = bytearray()
    while True:
        line: bytes = read_line(65537)
        if not line:
            raise ConnectionError("client closed the connection inside a chunked body")
        raw += line
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailers, up to the empty line
                trailer: bytes = read_line(65537)
                raw += trailer
                if trailer in (b"\r\n", b"\n", b""):
                    return bytes(raw)
        raw += read(size)
        raw += read_line(65537)  # the CRLF after the chunk


def _make_handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "faultproxy"

        def log_message(self, format: str, *args: object) -> None:
            return  # quiet

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return _read_chunked(self.rfile)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _error(self, kind: str, key: str) -> None:
            status, code, message = proxy.faults.custom_error if kind == "custom" else _ERRORS[kind]
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{code}</Code><Message>{message}</Message>"
                f"<Key>{_xml_escape(key)}</Key><RequestId>{uuid.uuid4().hex[:16]}</RequestId>"
                "</Error>"
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            if kind == "slowdown":
                self.send_header("Retry-After", "1")
            if self.command == "HEAD":
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def _reset(self) -> None:
            self.close_connection = True
            try:
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
            except OSError:
                pass

        def _handle(self) -> None:
            method = self.command
            _, key = split_path(self.path)
            try:
                body = self._body()
            except (ConnectionError, ValueError, OSError):
                self.close_connection = True
                return
            kind = proxy._decide(method, key)
            if kind == "reset":
                self._reset()
                return
            if kind in ("slowdown", "internal", "denied", "custom"):
                self._error(kind, key)
                return
            if kind == "delay":
                time.sleep(proxy.delay_s)
            self._forward(method, key, body, lose_answer=kind == "lost")

        def _forward(self, method: str, key: str, body: bytes, *, lose_answer: bool) -> None:
            headers = [
                (name, value)
                for name, value in self.headers.items()
                if name.lower() not in _HOP_BY_HOP
            ]
            conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=300)
            try:
                conn.putrequest(method, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:  # Host included, unchanged (SigV4 signs it)
                    conn.putheader(name, value)
                conn.endheaders(body if body else None)
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
                out_headers = resp.getheaders()
            except (OSError, http.client.HTTPException):
                proxy._record(method, self.path, key, None)
                self._reset()
                return
            finally:
                conn.close()
            proxy._record(method, self.path, key, status, copy="x-amz-copy-source" in self.headers)
            if lose_answer:
                self._reset()
                return
            if proxy.response_hook is not None:
                data = proxy.response_hook(method, self.path, status, data)
            self.send_response_only(status, resp.reason)
            has_length = False
            for name, value in out_headers:
                low = name.lower()
                if low in _HOP_BY_HOP or low == "transfer-encoding":
                    continue
                if low == "content-length":
                    has_length = True
                    if method != "HEAD":
                        self.send_header(name, str(len(data)))
                        continue
                self.send_header(name, value)
            if not has_length and method != "HEAD" and status not in (204, 304):
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if method != "HEAD" and data:
                self.wfile.write(data)

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle  # noqa: N815

    return Handler


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@contextmanager
def fault_proxy(upstream: str, faults: Faults | None = None) -> Iterator[FaultProxy]:
    """`with fault_proxy(url, Faults(slowdown=0.1)) as proxy: ... proxy.url ...`."""
    proxy = FaultProxy(upstream, faults)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--upstream", help="e.g. http://127.0.0.1:8333 (a proxy to run)")
    parser.add_argument(
        "--soak",
        type=int,
        metavar="FILES",
        help="instead: deploy FILES random files to a fresh SeaweedFS through the proxy "
        "with the given rates (default: a quarter of the writes failing, uncapped), "
        "`--runs` times, and check every object byte for byte",
    )
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--methods", default="PUT,POST,DELETE")
    for kind in ("slowdown", "internal", "reset", "lost", "delay"):
        parser.add_argument(f"--{kind}", type=float, default=0.0, help="rate 0-1")
    parser.add_argument("--delay-s", type=float, default=0.5)
    parser.add_argument("--fail-keys", default=None, help="regex: writes to these keys fail")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if args.soak is None and not args.upstream:
        parser.error("give --upstream URL (run a proxy) or --soak FILES")
    rates = ("slowdown", "internal", "reset", "lost", "delay")
    if args.soak is not None and not any(getattr(args, kind) for kind in rates):
        args.slowdown, args.internal, args.reset, args.lost = 0.07, 0.06, 0.06, 0.06
    faults = Faults(
        methods=frozenset(m.strip().upper() for m in args.methods.split(",") if m.strip()),
        slowdown=args.slowdown,
        internal=args.internal,
        reset=args.reset,
        lost=args.lost,
        delay=args.delay,
        delay_s=args.delay_s,
        fail_keys=args.fail_keys,
        seed=args.seed,
    )
    if args.soak is not None:
        return soak(args.soak, faults, runs=args.runs)
    with FaultProxy(args.upstream, faults, port=args.port) as proxy:
        print(f"faultproxy {proxy.url} -> {args.upstream}; Ctrl-C prints the counters", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        print(proxy.stats, flush=True)
    return 0


# -- permission faults ----------------------------------------------------------------------


def _seaweed_ports(pid: int) -> tuple[int, int]:
    """(master port, filer port) of a running `weed mini`, read from its command line."""
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    ports: dict[str, int] = {}
    for raw in args:
        text = raw.decode(errors="replace")
        for name in ("master", "filer"):
            if text.startswith(f"-{name}.port="):
                ports[name] = int(text.split("=", 1)[1])
    if set(ports) != {"master", "filer"}:
        raise RuntimeError(f"process {pid} is not a `weed mini` with -master.port/-filer.port")
    return ports["master"], ports["filer"]


def add_seaweed_identity(
    weed: str, pid: int, *, name: str, access_key: str, secret_key: str, actions: Sequence[str]
) -> None:
    """Add an S3 identity to a running SeaweedFS (`weed shell` `s3.configure -apply`).

    Used to make credentials that may only `Read`/`List` (access denied on writes).
    `weed` is the binary, `pid` the `weed mini` process (`Server.pid`).
    """
    master, filer = _seaweed_ports(pid)
    command = (
        f"s3.configure -user={name} -access_key={access_key} -secret_key={secret_key} "
        f"-actions={','.join(actions)} -apply\n"
    )
    proc = subprocess.run(
        [weed, "shell", f"-master=127.0.0.1:{master}", f"-filer=127.0.0.1:{filer}"],
        input=command,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0 or access_key not in proc.stdout:
        raise RuntimeError(f"weed shell s3.configure failed: {proc.stdout[-500:]}{proc.stderr}")


# -- soak: many files through many faults -----------------------------------------------------


def soak(files: int, faults: Faults, *, runs: int = 1) -> int:
    """Deploy `files` random files through `faults` to a fresh SeaweedFS, `runs` times.

    Prints one line per run: exit code, time, faults injected, objects checked. Returns 0
    when every run either succeeded with every object byte-identical, or failed cleanly
    (exit 1, nothing deleted); 1 otherwise.
    """
    status = 0
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        root = Path(tmp)
        with seaweedfs(root) as s3, moto_server(root) as moto:
            client = s3.client("s3")
            for run in range(1, runs + 1):
                bucket = f"soak-{run}-{uuid.uuid4().hex[:8]}"
                client.create_bucket(Bucket=bucket)
                dist = create_distribution(moto, bucket)
                site = root / f"ws-{run}" / "site"
                rng = random.Random(run)  # noqa: S311 - test data
                local: dict[str, bytes] = {"index.html": b"<!doctype html>"}
                for i in range(files - 1):
                    size = rng.choice((0, 10, 1000, 20_000, 200_000))
                    local[f"d{i % 20}/f{i}.bin"] = rng.randbytes(size)
                for rel, body in local.items():
                    path = site / rel
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(body)
                inputs = {
                    "aws-access-key-id": s3.access_key,
                    "aws-secret-access-key": s3.secret_key,
                    "bucket": bucket,
                    "distribution-id": dist,
                    "source-dir": "site",
                }
                with FaultProxy(s3.endpoint, faults) as proxy:
                    started = time.monotonic()
                    result = run_entrypoint(
                        site.parent,
                        {**inputs, "endpoint-url": proxy.url},
                        endpoints={"s3": s3.endpoint, "cloudfront": moto.endpoint},
                        runner_dir=root / f"runner-{run}",
                    )
                    took = time.monotonic() - started
                    stats = proxy.stats
                identical = 0
                for key, body in local.items():
                    try:
                        got = client.get_object(Bucket=bucket, Key=key)["Body"].read()
                    except ClientError:  # missing: not identical
                        got = None
                    identical += got == body
                ok = (result.returncode == 0 and identical == len(local)) or (
                    result.returncode == 1 and "Nothing was deleted" in result.stdout
                )
                status = status or (0 if ok else 1)
                failed = [line for line in result.stdout.splitlines() if line.startswith("::error")]
                print(
                    f"run {run}: exit {result.returncode} in {took:.1f} s; "
                    f"{stats.faults} faults injected {dict(stats.injected)} over "
                    f"{sum(stats.requests.values())} requests; {identical}/{len(local)} "
                    f"objects byte-identical; most attempts on one key "
                    f"{max(stats.attempts.values(), default=0)}"
                    + (f"; {failed[0][:300]}" if failed else ""),
                    flush=True,
                )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
