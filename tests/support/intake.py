"""A real `nightshift serve` on a loopback port, and what tests need to talk to it like GitHub does."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.pgserver import ROOT

CORPUS = ROOT.parent / "shared" / "corpora" / "github-webhooks"
# the secret GitHub's documentation uses, with which the corpus manifest's signatures were computed
TEST_SECRET = "It's a Secret to Everybody"
SECRET_ENV = "NIGHTSHIFT_TEST_WEBHOOK_SECRET"


def corpus() -> Path:
    if not (CORPUS / "manifest.json").is_file():
        pytest.skip(f"the shared GitHub webhook corpus is absent ({CORPUS}): these tests use GitHub's real "
                    "payloads and need ../shared/corpora/github-webhooks next to the repository")
    return CORPUS


def manifest() -> dict[str, dict[str, Any]]:
    data = json.loads((corpus() / "manifest.json").read_text())
    return {entry["file"]: entry for entry in data["payloads"]}


def sign(body: bytes, secret: str = TEST_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class IntakeServer:
    process: subprocess.Popen
    url: str
    lines: list[str] = field(default_factory=list)  # everything it logged so far

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def deliver(self, body: bytes, event: str, delivery: str, *, signature: str | None = None,
                content_type: str = "application/json", client: httpx.Client | None = None) -> httpx.Response:
        headers = {"Content-Type": content_type, "X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
                   "X-Hub-Signature-256": signature if signature is not None else sign(body),
                   "User-Agent": "GitHub-Hookshot/test"}
        if client is not None:
            return client.post("/webhooks/github", content=body, headers=headers)
        with self.client() as own:
            return own.post("/webhooks/github", content=body, headers=headers)

    def metric(self, name: str, **labels: str) -> float:
        """A sample of /metrics (0 when the series does not exist yet)."""
        with self.client() as client:
            text = client.get("/metrics").text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0

    def log_text(self) -> str:
        return "\n".join(self.lines)

    def terminate(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


@contextmanager
def run_server(database_url: str, *args: str, env: dict[str, str] | None = None) -> Iterator[IntakeServer]:
    """`nightshift serve --port 0 ...` in a subprocess; yields once it listens, stops it (SIGTERM) after."""
    environment = {**os.environ, SECRET_ENV: TEST_SECRET, **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "serve", "--database-url", database_url, "--port", "0",
         "--webhook-secret", f"env:{SECRET_ENV}", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment, cwd=ROOT,
    )
    assert process.stderr is not None
    server = IntakeServer(process, url="")
    ready = threading.Event()

    def read() -> None:  # keep draining stderr, so the server never blocks on a full pipe
        assert process.stderr is not None
        for line in process.stderr:
            server.lines.append(line.rstrip("\n"))
            if match := re.search(r"listening on (http://\S+)", line):
                server.url = match.group(1)
            if "Application startup complete" in line:
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while not ready.wait(0.1):
        assert time.monotonic() < deadline, "nightshift serve did not start:\n" + server.log_text()
    assert process.poll() is None and server.url, "nightshift serve exited:\n" + server.log_text()
    try:
        yield server
    finally:
        server.terminate()
        reader.join(timeout=10)
        process.stderr.close()
