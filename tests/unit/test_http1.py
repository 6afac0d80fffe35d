"""The HTTP/1.1 exchange (`deployer/http1.py`) against scripted byte streams: how answers
are delimited, split anywhere between `recv` calls, and how broken ones fail."""

from __future__ import annotations

import http.client
import io
import random
from typing import cast

import pytest

from deployer import http1


class Stream:
    """A socket stand-in: `recv` gives the scripted bytes in pieces of at most `piece`."""

    def __init__(self, data: bytes, piece: int = 1 << 20) -> None:
        self.data = data
        self.piece = piece
        self.sent: list[bytes] = []
        self.recvs = 0

    def recv(self, size: int) -> bytes:
        self.recvs += 1
        out, self.data = self.data[: min(size, self.piece)], self.data[min(size, self.piece) :]
        return out

    def sendall(self, data: bytes) -> None:
        self.sent.append(bytes(data))


def read(data: bytes, piece: int = 1 << 20) -> http1.Answer:
    return http1.read_answer(cast("http1.Sock", Stream(data, piece)))


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
OK = b'HTTP/1.1 200 OK\r\nETag: "abc"\r\nContent-Length: 5\r\nx-amz-id-2: A:B\r\n\r\nhello'


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 64, 1 << 20])
def test_an_answer_split_anywhere_reads_the_same(piece: int) -> None:
    answer = read(OK, piece)
    assert answer == http1.Answer(
        200, {"etag": '"abc"', "content-length": "5", "x-amz-id-2": "A:B"}, b"hello", False
    )


def test_a_small_answer_arriving_at_once_takes_one_recv() -> None:
    stream = Stream(OK)
    http1.read_answer(cast("http1.Sock", stream))
    assert stream.recvs == 1


@pytest.mark.parametrize("piece", [1, 5, 1 << 20])
def test_chunked_bodies_with_extensions_and_trailers(piece: int) -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\n<Comp\r\n"
        b"a\r\nleteResult\r\n"
        b"1\r\n>\r\n"
        b"0\r\nX-Trailer: yes\r\n\r\n"
    )
    answer = read(data, piece)
    assert answer.body == b"<CompleteResult>"
    assert not answer.will_close


def test_interim_answers_are_skipped() -> None:
    answer = read(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
    assert (answer.status, answer.body) == (200, b"hello")


@pytest.mark.parametrize(
    ("data", "body", "will_close"),
    [
        # no length: the body runs to the end of the connection
        (b"HTTP/1.1 200 OK\r\n\r\nto the end", b"to the end", True),
        (b"HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno", b"no", True),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok", True),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", b"ok", False),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b"", False),
        # bytes after the answer: the connection is out of step and not kept
        (OK + b"HTTP/1.1 200", b"hello", True),
        # a status line without a reason phrase
        (b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", b"", False),
    ],
)
def test_how_the_body_ends_and_whether_the_connection_is_kept(
    data: bytes, body: bytes, will_close: bool
) -> None:
    answer = read(data)
    assert (answer.body, answer.will_close) == (body, will_close)


def test_a_connection_closed_before_any_byte_is_remote_disconnected() -> None:
    with pytest.raises(http.client.RemoteDisconnected) as caught:
        read(b"")
    assert isinstance(caught.value, ConnectionResetError)  # retried as a reset


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Le", http.client.IncompleteRead),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", http.client.IncompleteRead),
        (CHUNKED + b"5\r\nab", http.client.IncompleteRead),
        (b"SSH-2.0-OpenSSH\r\n\r\n", http.client.BadStatusLine),
        (b"HTTP/1.1 2xx OK\r\n\r\n", http.client.BadStatusLine),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", http.client.HTTPException),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", http.client.HTTPException),
        (CHUNKED + b"zz\r\n", http.client.HTTPException),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * (http1.MAX_HEAD + 10), http.client.LineTooLong),
    ],
)
def test_broken_answers_raise_http_client_errors(
    data: bytes, error: type[http.client.HTTPException]
) -> None:
    with pytest.raises(error):
        read(data)


def test_random_bodies_and_splits_round_trip() -> None:
    rng = random.Random(7)
    for _ in range(200):
        body = rng.randbytes(rng.randrange(0, 3000))
        if rng.random() < 0.5:
            data = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        else:
            cuts = sorted(rng.sample(range(len(body) + 1), min(3, len(body) + 1)))
            pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p)
            data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
        assert read(data, rng.randrange(1, 700)).body == body


def test_the_head_is_one_block_of_latin_1_lines() -> None:
    head = http1.encode_head("PUT", "/b/k%20x?partNumber=1", {"Host": "h:9", "Content-Length": "3"})
    assert head == b"PUT /b/k%20x?partNumber=1 HTTP/1.1\r\nHost: h:9\r\nContent-Length: 3\r\n\r\n"


@pytest.mark.parametrize(
    "headers",
    [{"X-Amz-Meta-A": "ok\r\nInjected: yes"}, {"Bad\nName": "x"}, {"X-Null": "a\0b"}],
)
def test_a_header_that_would_break_the_head_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="invalid header"):
        http1.encode_head("PUT", "/k", headers)


def test_a_header_outside_latin_1_is_refused_as_http_client_does() -> None:
    with pytest.raises(UnicodeEncodeError):
        http1.encode_head("PUT", "/k", {"X-Amz-Meta-Name": "안녕"})


def test_a_small_body_goes_with_its_head_in_one_send() -> None:
    stream = Stream(b"")
    http1.send(cast("http1.Sock", stream), b"HEAD\r\n\r\n", b"body")
    assert stream.sent == [b"HEAD\r\n\r\nbody"]


def test_large_and_file_bodies_follow_the_head() -> None:
    big = b"x" * (http1.JOIN_LIMIT + 1)
    stream = Stream(b"")
    http1.send(cast("http1.Sock", stream), b"H", big)
    assert stream.sent == [b"H", big]
    stream = Stream(b"")
    http1.send(cast("http1.Sock", stream), b"H", io.BytesIO(b"abcdefg"), block_size=3)
    assert stream.sent == [b"H", b"abc", b"def", b"g"]
    stream = Stream(b"")
    http1.send(cast("http1.Sock", stream), b"H", None)
    assert stream.sent == [b"H"]
