"""A local fake of GitHub's OIDC ID-token service, for tests that assume a role with it.

The runner exposes it to a job as `ACTIONS_ID_TOKEN_REQUEST_URL` and
`ACTIONS_ID_TOKEN_REQUEST_TOKEN`; `GET $URL&audience=X` with `Authorization: Bearer
$TOKEN` answers `{"value": JWT}`. This one binds 127.0.0.1, records every request and
answers 401 to a wrong bearer (or `status` to a right one, to play a failing service).
"""

from __future__ import annotations

import base64
import http.server
import json
import secrets
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SUB = "repo:octo-org/octo-site:ref:refs/heads/main"


def make_jwt(claims: dict[str, Any]) -> str:
    """A JWT-shaped token (header.claims.signature); the signature is random bytes."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    header = part(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    return f"{header}.{part(json.dumps(claims).encode())}.{part(secrets.token_bytes(48))}"


@dataclass
class TokenEndpoint:
    """GitHub's ID token service as a job sees it."""

    url: str
    bearer: str
    jwt: str
    status: int = 200
    requests: list[dict[str, str]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.bearer,
        }

    @property
    def audiences(self) -> list[str]:
        """The audiences asked for by requests that carried the right bearer."""
        expected = f"Bearer {self.bearer}"
        return [r["audience"] for r in self.requests if r["authorization"] == expected]


@contextmanager
def token_endpoint(claims: dict[str, Any] | None = None) -> Iterator[TokenEndpoint]:
    """Serve tokens on a free loopback port until the block ends."""
    endpoint = TokenEndpoint(
        url="",
        bearer="ghs_" + secrets.token_urlsafe(24),
        jwt=make_jwt(
            claims or {"sub": DEFAULT_SUB, "aud": "sts.amazonaws.com", "jti": secrets.token_hex(16)}
        ),
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
            endpoint.requests.append(
                {
                    "authorization": self.headers.get("Authorization", ""),
                    "audience": query.get("audience", ""),
                    "api-version": query.get("api-version", ""),
                }
            )
            ok = self.headers.get("Authorization") == f"Bearer {endpoint.bearer}"
            status = endpoint.status if ok else 401
            body = json.dumps({"value": endpoint.jwt} if status == 200 else {"message": "no"})
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/_apis/idtoken?api-version=2.0"
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
