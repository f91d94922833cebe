"""A small HTTP proxy in front of a real Prometheus, for the failure modes a real server cannot show.

It can demand a bearer token or basic auth (Prometheus' own basic auth needs bcrypt
hashes) and hold requests
until the test releases a gate (a slow cluster, without any sleep).
"""

from __future__ import annotations

import base64
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server: _ProxyServer

    def do_GET(self) -> None:
        proxy = self.server
        proxy.requests += 1
        if proxy.expected_auth is not None and self.headers.get("Authorization") != proxy.expected_auth:
            self._reply(401, b"Unauthorized\n")
            return
        proxy.gate.wait(timeout=60)  # released by the test; bounded so a failing test cannot hang
        try:
            with urllib.request.urlopen(proxy.upstream + self.path, timeout=30) as resp:
                self._reply(resp.status, resp.read())
        except urllib.error.HTTPError as exc:
            self._reply(exc.code, exc.read())

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, expected_auth: str | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.expected_auth = expected_auth
        self.gate = threading.Event()
        self.gate.set()
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def proxy(upstream: str, token: str | None = None, basic: tuple[str, str] | None = None) -> Iterator[_ProxyServer]:
    """``token``: demand ``Authorization: Bearer <token>``; ``basic``: demand HTTP basic auth."""
    expected = f"Bearer {token}" if token is not None else None
    if basic is not None:
        expected = "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
    server = _ProxyServer(upstream, expected)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.gate.set()
        server.shutdown()
        server.server_close()
