"""Connections opened before the inputs are validated (`early.py`), over a link with a
delay (bench's relay in front of SeaweedFS, plain and TLS): the wire that goes where they
do uses them and opens no more; a wire that goes elsewhere leaves them closed."""

from __future__ import annotations

import threading
import time
from concurrent.futures import wait
from pathlib import Path

import pytest

from bench.relay import DelayRelay
from deployer import early
from deployer.s3wire import Wire
from devtools.faultproxy import FaultProxy
from devtools.servers import Server
from tests.integration.test_s3store import local_file, make_store
from tests.integration.test_wire_failures import (  # noqa: F401 - fixtures
    certificate,
    https_seaweed,
    no_ca_settings,
)

ONE_WAY_S = 0.05


def raw_inputs(bucket: str, endpoint: str) -> tuple[dict[str, str | None], dict[str, str]]:
    flags: dict[str, str | None] = {"bucket": bucket, "endpoint-url": endpoint}
    env = {"AWS_ACCESS_KEY_ID": "AKIDEARLY", "AWS_REGION": "us-east-1"}
    return flags, env


def fast_path(store: object) -> Wire:
    wire = store._fast_path()  # type: ignore[attr-defined]
    assert isinstance(wire, Wire)
    return wire


def put_at_once(store: object, tmp_path: Path, count: int) -> list[str]:
    files = [local_file(tmp_path, f"e{i}.html", f"<p>{i}</p>".encode()) for i in range(count)]
    etags: list[str] = []
    threads = [
        threading.Thread(target=lambda f=f: etags.append(store.put_file(f)))  # type: ignore[attr-defined]
        for f in files
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(etags) == sorted(f.md5 for f in files)
    return etags


def test_the_wire_uses_the_connections_opened_early(
    seaweed: Server, bucket: str, tmp_path: Path
) -> None:
    host, port = seaweed.endpoint.removeprefix("http://").rsplit(":", 1)
    with DelayRelay(host, int(port), ONE_WAY_S) as relay:
        flags, env = raw_inputs(bucket, relay.url())
        opened = early.open_early(flags, env, count=3)
        assert opened is not None
        store = make_store(seaweed, bucket, tmp_path, endpoint=relay.url())
        wire = fast_path(store)
        opened.hand_over(wire)
        for _ in range(3):
            store.prepare()  # stands in for `deploy`'s FIRST: none of these opens one
        put_at_once(store, tmp_path, 3)
        assert relay.connections == 3  # the three opened early, and no other
        # The link's time counts the early connection's opening and the request: at
        # least the request's round trip (the relay connects onwards within it).
        took = store.link_time()
        assert took is not None and took >= 2 * ONE_WAY_S * 0.9


def test_connections_opened_early_for_another_address_are_closed(
    seaweed: Server, bucket: str, tmp_path: Path
) -> None:
    """Guessed from the raw inputs, the address can differ from the validated one (here:
    the relay, while the wire goes to the server itself): nothing is adopted, and the
    early connections are closed once open."""
    host, port = seaweed.endpoint.removeprefix("http://").rsplit(":", 1)
    with DelayRelay(host, int(port), ONE_WAY_S) as relay:
        flags, env = raw_inputs(bucket, relay.url())
        opened = early.open_early(flags, env, count=2)
        assert opened is not None
        store = make_store(seaweed, bucket, tmp_path)  # straight to SeaweedFS
        wire = fast_path(store)
        opened.hand_over(wire)
        wait(opened.opening, timeout=10)
        time.sleep(0.05)  # the done-callbacks ran
        assert all(f.result().sock is None for f in opened.opening)  # closed
        assert not wire._idle and wire._opening == 0 and wire._early == 0
        put_at_once(store, tmp_path, 1)
        assert relay.connections == 2  # only the early ones went to the relay


@pytest.fixture
def trusted_https(
    no_ca_settings: None,  # noqa: F811 - a fixture
    https_seaweed: FaultProxy,  # noqa: F811 - a fixture
    certificate: tuple[Path, Path],  # noqa: F811 - a fixture
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[FaultProxy, Path]:
    """SeaweedFS over TLS, and its CA given as `AWS_CA_BUNDLE` (no other CA setting)."""
    monkeypatch.setenv("AWS_CA_BUNDLE", str(certificate[0]))
    return https_seaweed, certificate[0]


def test_tls_connections_opened_early_are_used(
    seaweed: Server, bucket: str, tmp_path: Path, trusted_https: tuple[FaultProxy, Path]
) -> None:
    """Over TLS the early connections verify the server with the same CA bundle as the
    wire (`AWS_CA_BUNDLE` here) and are adopted handshake and all."""
    server, ca = trusted_https
    host, port = server.url.removeprefix("https://").rsplit(":", 1)
    with DelayRelay(host, int(port), ONE_WAY_S) as relay:
        flags, env = raw_inputs(bucket, relay.url("https"))
        opened = early.open_early(flags, env, count=2)
        assert opened is not None and opened.ca_file == str(ca)
        wait(opened.opening, timeout=10)
        assert all(f.exception() is None for f in opened.opening)  # handshakes done
        store = make_store(seaweed, bucket, tmp_path, endpoint=relay.url("https"))
        opened.hand_over(fast_path(store))
        put_at_once(store, tmp_path, 2)
        assert relay.connections == 2


def test_later_tls_connections_resume_the_session_of_an_early_one(
    seaweed: Server, bucket: str, tmp_path: Path, trusted_https: tuple[FaultProxy, Path]
) -> None:
    """The wire takes the early connections' TLS context with them, so the connections
    it opens after the first answer resume that answer's TLS session (an abbreviated
    handshake: no certificate to sign and check) instead of a full handshake each."""
    server, _ = trusted_https
    flags, env = raw_inputs(bucket, server.url)
    opened = early.open_early(flags, env, count=2)
    assert opened is not None
    store = make_store(seaweed, bucket, tmp_path, endpoint=server.url)
    wire = fast_path(store)
    opened.hand_over(wire)
    assert store.list_objects("") == []  # the first answer, on an early connection
    for _ in range(2 + 3):
        store.prepare()  # the first 2 stand in for the early ones; 3 are opened
    put_at_once(store, tmp_path, 5)
    idle = list(wire._idle)
    assert len(idle) == 5
    resumed = sorted(conn.sock.session_reused for conn in idle)  # type: ignore[union-attr]
    assert resumed == [False, False, True, True, True]  # the 2 early ones made it full


def test_without_early_connections_the_wire_resumes_its_own_first_session(
    seaweed: Server, bucket: str, tmp_path: Path, trusted_https: tuple[FaultProxy, Path]
) -> None:
    server, _ = trusted_https
    store = make_store(seaweed, bucket, tmp_path, endpoint=server.url)
    wire = fast_path(store)
    assert store.list_objects("") == []  # on a connection of its own: a full handshake
    for _ in range(3):
        store.prepare()
    put_at_once(store, tmp_path, 4)
    resumed = sorted(conn.sock.session_reused for conn in wire._idle)  # type: ignore[union-attr]
    assert resumed == [False, True, True, True]
