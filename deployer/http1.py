"""One HTTP/1.1 exchange on a connected socket: the request in one `sendall`, the answer
read with as few `recv` calls as it arrives in.

Why not `http.client`'s `request()` and `getresponse()`: on a cold deploy every file is
one small PUT, and up to 256 run at once on threads that share the GIL. `http.client`
sends the head and the body in two system calls, reads the answer through a buffered
file made per response, one `readline` per header, and parses the headers with the
`email` package: measured single-threaded against SeaweedFS on loopback, 5 KB PUTs
through `s3wire.Wire` (signing, retries and the connection pool included), 298 us of CPU
per PUT with it and 186 us with this exchange. Every system call also gives the GIL up
and takes it back, which with 256 threads is a wait of its own.

What it speaks is what S3 answers: a status line, headers, and a body delimited by
`Content-Length`, by chunks (`Transfer-Encoding: chunked`, as S3 keeps a long
CompleteMultipartUpload alive) or by the end of the connection; interim `1xx` answers
are skipped. Errors are `http.client`'s own exceptions (`RemoteDisconnected`,
`BadStatusLine`, `IncompleteRead`...) or `OSError`, so callers handle them as before.

The connections themselves (TCP, TLS, timeouts) stay `http.client.HTTPConnection`
objects (`s3wire.py`); this module only uses their socket.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

# A body up to this size goes out with its head in one `sendall` (one copy of it, cheap
# next to a system call); larger ones are sent after the head, unchanged.
JOIN_LIMIT = 256 * 1024
BLOCK_SIZE = 256 * 1024  # bytes per `sendall` when streaming a file-like body
MAX_HEAD = 64 * 1024  # an answer's status line and headers (http.client: 100 headers)
# Bytes asked of each `recv` until the answer's length is known. `recv` allocates what it
# is asked for before it waits, and up to 256 threads wait at once: 4 KiB holds a PUT's
# whole answer (a head of ~400 bytes, no body) and comes to 1 MiB at 256, where 64 KiB
# would be 16 MiB (arithmetic, not a measured peak: that peak's cause was the
# concurrency controller, see BENCHMARKS.md). Bodies are received in reads of up to what
# is left of them.
RECV_SIZE = 4 * 1024
BODY_RECV = 1 << 20  # at most this much asked of one `recv` for a body
# What a header name or value must not contain: a line break would start a new header
# (http.client refuses the same with ValueError).
_ILLEGAL = re.compile(r"[\r\n\0]")
_NO_BODY = frozenset({204, 304})


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


Sock = socket.socket | ssl.SSLSocket


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes
    will_close: bool  # the connection cannot carry another request


def encode_head(method: str, url: str, headers: Mapping[str, str]) -> bytes:
    """The request line and headers, ready to send. `url` is already encoded (path and
    query); ValueError for a header that would break the head (as `http.client`), and
    UnicodeEncodeError for one not in Latin-1 (likewise)."""
    lines = [f"{method} {url} HTTP/1.1\r\n"]
    for name, value in headers.items():
        text = str(value)
        if _ILLEGAL.search(name) or _ILLEGAL.search(text):
            raise ValueError(f"invalid header {name!r}")
        lines.append(f"{name}: {text}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def send(
    sock: Sock, head: bytes, body: bytes | Readable | None, *, block_size: int = BLOCK_SIZE
) -> None:
    """Send the head and the body: one `sendall` for a body up to `JOIN_LIMIT` bytes;
    a file-like body is read and sent `block_size` bytes at a time until it ends."""
    if body is None:
        sock.sendall(head)
        return
    if isinstance(body, bytes):
        if len(body) <= JOIN_LIMIT:
            sock.sendall(head + body)
        else:
            sock.sendall(head)
            sock.sendall(body)
        return
    sock.sendall(head)
    while True:
        block = body.read(block_size)
        if not block:
            return
        sock.sendall(block)


class _Reader:
    """The bytes of one answer as they arrive: a buffer over `recv`."""

    def __init__(self, recv: Callable[[int], bytes]) -> None:
        self._recv = recv
        self.buffer = b""
        self.received = 0  # bytes received in all, to tell "nothing at all" from "cut"

    def more(self) -> bool:
        """Receive what has arrived (waiting for at least one byte); False at the end."""
        data = self._recv(RECV_SIZE)
        if not data:
            return False
        self.received += len(data)
        self.buffer += data
        return True

    def until(self, mark: bytes, limit: int) -> bytes | None:
        """The buffer's bytes up to `mark` (removed with it); None if the stream ends first."""
        start = 0
        while True:
            at = self.buffer.find(mark, start)
            if at >= 0:
                found, self.buffer = self.buffer[:at], self.buffer[at + len(mark) :]
                return found
            if len(self.buffer) > limit:
                raise http.client.LineTooLong("answer head")
            start = max(0, len(self.buffer) - len(mark) + 1)
            if not self.more():
                return None

    def exactly(self, size: int) -> bytes:
        """The next `size` bytes; IncompleteRead if the stream ends first."""
        if len(self.buffer) < size:
            parts = [self.buffer]
            have = len(self.buffer)
            while have < size:
                data = self._recv(max(RECV_SIZE, min(size - have, BODY_RECV)))
                if not data:
                    raise http.client.IncompleteRead(b"".join(parts), size - have)
                self.received += len(data)
                parts.append(data)
                have += len(data)
            self.buffer = b"".join(parts)
        found, self.buffer = self.buffer[:size], self.buffer[size:]
        return found

    def rest(self) -> bytes:
        """Everything until the stream ends."""
        parts = [self.buffer]
        while data := self._recv(BODY_RECV):
            self.received += len(data)
            parts.append(data)
        self.buffer = b""
        return b"".join(parts)


def read_answer(sock: Sock) -> Answer:
    """Read one answer to a request that was not HEAD (S3 requests never are)."""
    reader = _Reader(sock.recv)
    while True:
        status, version, headers = _read_head(reader)
        if not 100 <= status < 200 or status == 101:
            break  # interim answers (100 Continue, 103 Early Hints) are skipped
    connection = headers.get("connection", "").lower()
    will_close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
    if status in _NO_BODY:
        body = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body = _read_chunked(reader)
    elif "content-length" in headers:
        length = _length(headers["content-length"])
        body = reader.exactly(length)
    else:
        body, will_close = reader.rest(), True
    if reader.buffer:  # bytes past the answer: the connection is out of step
        will_close = True
    return Answer(status, headers, body, will_close)


def _read_head(reader: _Reader) -> tuple[int, str, dict[str, str]]:
    head = reader.until(b"\r\n\r\n", MAX_HEAD)
    if head is None:
        if reader.received == 0:
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
        raise http.client.IncompleteRead(reader.buffer)
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/") or not code.isdigit() or rest[3:4] not in ("", " "):
        raise http.client.BadStatusLine(lines[0][:100])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            raise http.client.HTTPException(f"malformed header line {line[:100]!r}")
        headers[name.strip().lower()] = value.strip()
    return int(code), version, headers


def _length(text: str) -> int:
    if not text.strip().isdigit():
        raise http.client.HTTPException(f"bad Content-Length {text[:40]!r}")
    return int(text)


def _read_chunked(reader: _Reader) -> bytes:
    parts: list[bytes] = []
    while True:
        line = reader.until(b"\r\n", MAX_HEAD)
        if line is None:
            raise http.client.IncompleteRead(b"".join(parts))
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise http.client.HTTPException(f"bad chunk size {size_text[:20]!r}") from None
        if size == 0:
            break
        parts.append(reader.exactly(size))
        if reader.exactly(2) != b"\r\n":
            raise http.client.HTTPException("a chunk does not end with CRLF")
    while True:  # trailers, up to the empty line
        line = reader.until(b"\r\n", MAX_HEAD)
        if not line:  # the empty line (or the stream's end, which ends them too)
            return b"".join(parts)
