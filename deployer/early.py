"""The deploy's first connections to S3, opened while the program is still starting.

Before the first request can be signed, Python spends ~0.2 s importing pydantic and
building the settings model; over a far link the first request's connection then spends
one round trip on TCP and one or two on TLS (160-540 ms at 80-180 ms round trips). One
waits on the CPU and the other on the network, so they can overlap: from the raw inputs
(flags and environment, before validation) the bucket's address is worked out exactly as
the validated settings will give it (`endpoints.s3_target`), and the first connections
(`ahead.FIRST` for the uploads, and one for each of the two requests every deploy starts
with: the listing's first page and the record) are opened to it on threads of their own
while the imports run.

The deploy's wire adopts them only if its address (scheme, host and port) and CA bundle
are the ones guessed (`Early.hand_over`); otherwise they are closed unused. Nothing is sent
on them before the inputs are valid: a TCP and a TLS handshake (the host name in SNI) are
all the server sees, so bad input still ends with its one error and nothing changed.

Not opened early: when the keys are not known up front (a role to assume, OIDC, the
standard chain: the wire is not used then), without a bucket, when an HTTP proxy is set
for the address (botocore then carries every request), or when the address needs botocore.
"""

from __future__ import annotations

import http.client
import os
import ssl
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass

from deployer import concurrency, endpoints
from deployer.ahead import FIRST
from deployer.awsconfig import BlankCABundleError, ca_bundle
from deployer.interface import pick, region_input
from deployer.s3wire import Target, Wire, WireCABundleError, new_connection, tls_context

Opening = Future[http.client.HTTPConnection]
FIRST_REQUESTS = 2  # the listing's first page and the record, asked at once


@dataclass(frozen=True, slots=True)
class RawPlace:
    """Where the bucket is, from the inputs as given (trimmed as validation trims them)."""

    aws_region: str
    bucket: str
    endpoint_url: str | None


def guess(flags: Mapping[str, str | None], env: Mapping[str, str]) -> Target | None:
    """The bucket's address from the raw inputs, when the deploy will use its own wire
    with keys known up front; None otherwise (see the module doc)."""
    bucket = (pick("bucket", flags, env) or "").strip()
    if not bucket or pick("role-to-assume", flags, env) is not None:
        return None
    if pick("aws-access-key-id", flags, env) is None and not env.get("AWS_ACCESS_KEY_ID"):
        return None
    region = region_input(flags, env)
    endpoint = pick("endpoint-url", flags, env)
    place = RawPlace(region.strip(), bucket, endpoint.strip().rstrip("/") if endpoint else None)
    target = endpoints.s3_target(place, env)
    if target is None or endpoints.behind_proxy(target):
        return None
    return target


@dataclass(frozen=True, slots=True)
class Early:
    """Connections being opened to `target` before the deploy's wire exists."""

    target: Target
    ca_file: str | None
    opening: tuple[Opening, ...]
    context: ssl.SSLContext | None = None  # over TLS: the one they were opened with

    def hand_over(self, wire: Wire | None) -> None:
        """Give the connections to `wire` if it goes where they do; else close them."""
        if (
            wire is not None
            and (wire.target.scheme, wire.target.netloc) == (self.target.scheme, self.target.netloc)
            and wire.ca_file == self.ca_file
        ):
            # FIRST: the ones `deploy` prepares; the context: their TLS sessions resume.
            wire.adopt(self.opening, stands_in=FIRST, context=self.context)
            return
        for future in self.opening:
            future.add_done_callback(_close)


def open_early(
    flags: Mapping[str, str | None], env: Mapping[str, str], count: int = FIRST + FIRST_REQUESTS
) -> Early | None:
    """Start opening `count` connections to the guessed address; None when there is none
    (or its CA bundle cannot be read: the deploy reports that itself).

    Never raises: the inputs are not validated yet, and a malformed one (a bucket written
    `s3://site/x`, an endpoint `http://[::1`) must get its one clear error from the
    settings, not an exception from here."""
    try:
        target = guess(flags, env)
        if target is not None:
            http.client.HTTPConnection(target.netloc)  # raises for an unusable host:port
    except Exception:  # any malformed input: no early connections, the settings say why
        return None
    if target is None:
        return None
    ca_file = None
    context = None
    if target.scheme == "https":
        try:
            ca_file = ca_bundle(os.environ).path  # the process's, as `s3.make_wire` reads it
            context = tls_context(ca_file)
        except (BlankCABundleError, WireCABundleError):
            return None
    concurrency.limit_malloc_arenas()  # before the first thread (see there)
    opening: list[Opening] = []
    for _ in range(count):
        future: Opening = Future()
        conn = new_connection(
            target, context, endpoints.CONNECT_TIMEOUT_S, endpoints.READ_TIMEOUT_S
        )
        # Daemon threads: a run that ends on bad input does not wait for a handshake.
        threading.Thread(target=_open, args=(conn, future), daemon=True).start()
        opening.append(future)
    return Early(target, ca_file, tuple(opening), context)


def _open(conn: http.client.HTTPConnection, future: Opening) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        conn.connect()
    except (OSError, http.client.HTTPException) as err:  # the deploy meets it again
        conn.close()
        future.set_exception(err)
    else:
        future.set_result(conn)


def _close(future: Opening) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()
