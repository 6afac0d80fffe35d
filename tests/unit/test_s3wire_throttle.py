"""Throttling answers are retried longer than other failures, and reported to the caller's
window before each retry (a scripted loopback server: S3 answers as scripted)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from deployer.credentials import Keys
from deployer.s3wire import THROTTLE_EXTRA_ATTEMPTS, Target, Wire, WireError

SLOWDOWN = b"<Error><Code>SlowDown</Code></Error>"
INTERNAL = b"<Error><Code>InternalError</Code></Error>"


class Script:
    def __init__(self, answers: list[tuple[int, bytes]]) -> None:
        self.answers = answers
        self.seen = 0


@pytest.fixture
def server() -> Iterator[tuple[Script, str]]:
    script = Script([])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status, body = script.answers[min(script.seen, len(script.answers) - 1)]
            script.seen += 1
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if status == 200:
                self.send_header("ETag", '"abc"')
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield script, f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def wire(netloc: str, reasons: list[str]) -> Wire:
    return Wire(
        Target("http", netloc, "/bucket", "us-east-1"),
        Keys("AKIDEXAMPLE", "secret"),
        attempts=6,
        connect_timeout=5,
        read_timeout=5,
        user_agent="test",
        sleep=lambda s: None,
        on_retry=reasons.append,
    )


def test_slowdown_is_retried_beyond_the_attempts_and_reported(
    server: tuple[Script, str],
) -> None:
    """8 SlowDown answers, then 200: more than the 6 attempts of other failures, and the
    window heard of each throttle before its retry."""
    script, netloc = server
    script.answers = [(503, SLOWDOWN)] * 8 + [(200, b"")]
    reasons: list[str] = []
    assert wire(netloc, reasons).put("k", b"x", 1, {}) == '"abc"'
    assert script.seen == 9
    assert reasons == ["throttled"] * 8


def test_throttling_has_a_limit_too(server: tuple[Script, str]) -> None:
    script, netloc = server
    script.answers = [(503, SLOWDOWN)]
    with pytest.raises(WireError) as caught:
        wire(netloc, []).put("k", b"x", 1, {})
    assert caught.value.code == "SlowDown"
    assert script.seen == 6 + THROTTLE_EXTRA_ATTEMPTS


def test_other_failures_keep_their_six_attempts(server: tuple[Script, str]) -> None:
    """500 InternalError is not throttling: 6 attempts, and no back-off of the window."""
    script, netloc = server
    script.answers = [(500, INTERNAL)]
    reasons: list[str] = []
    with pytest.raises(WireError):
        wire(netloc, reasons).put("k", b"x", 1, {})
    assert script.seen == 6
    assert reasons == []
