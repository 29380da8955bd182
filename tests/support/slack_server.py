"""A real HTTP server on loopback that answers like a Slack incoming webhook (and like any webhook
receiver), for the notification tests. Not a mock of the client: httpx talks to it over TCP.

The path picks the behaviour, so one server plays many channels:
  /ok/...          200 "ok" (text/plain), as Slack answers a delivered message
  /ratelimit/N/... 429 with Retry-After: 1 for the first N requests to that path, then 200 "ok"
  /gone/...        404 "channel_not_found"
  /archived/...    410 "channel_is_archived"
  /error/...       500 "rollup_error"
  /slow/...        answers after SLOW_SECONDS (longer than the client's timeout in the tests)
  /html/...        200 with an HTML page (a captive portal, a wrong URL)
  /huge/...        500 with a 50 MB body (only the first bytes are ever read by the sender)
Every request is recorded (path, headers, body) in `requests`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SLOW_SECONDS = 3.0
HUGE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = 0.0  # time.monotonic() when it arrived

    def json(self) -> Any:
        return json.loads(self.body)


class SlackLike(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def received(self, prefix: str = "/") -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith(prefix)]


class _Handler(BaseHTTPRequestHandler):
    server: SlackLike
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        with self.server.lock:
            request = Request(self.path, dict(self.headers.items()), body, time.monotonic())
            self.server.requests.append(request)
            self.server.counts[self.path] = count = self.server.counts.get(self.path, 0) + 1
        kind = self.path.strip("/").split("/")[0]
        if kind == "ok":
            self._answer(200, b"ok")
        elif kind == "ratelimit":
            limit = int(self.path.strip("/").split("/")[1])
            if count <= limit:
                self._answer(429, b"rate_limited", {"Retry-After": "1"})
            else:
                self._answer(200, b"ok")
        elif kind == "gone":
            self._answer(404, b"channel_not_found")
        elif kind == "archived":
            self._answer(410, b"channel_is_archived")
        elif kind == "error":
            self._answer(500, b"rollup_error")
        elif kind == "slow":
            time.sleep(SLOW_SECONDS)
            self._answer(200, b"ok")
        elif kind == "html":
            self._answer(200, b"<!DOCTYPE html><html><body>Sign in to continue</body></html>",
                         {"Content-Type": "text/html; charset=utf-8"})
        elif kind == "huge":
            self.send_response(500)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(HUGE_BYTES))
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(HUGE_BYTES // len(chunk)):
                    self.wfile.write(chunk)
            except OSError:
                pass  # the client stopped reading, as it should
        else:
            self._answer(404, b"no_service")

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass


@contextmanager
def slack_server() -> Iterator[SlackLike]:
    server = SlackLike()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
