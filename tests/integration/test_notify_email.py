"""The email channel against a real SMTP server on loopback (aiosmtpd): plain with AUTH, and
STARTTLS with a certificate made for the test. The received email is parsed: a text and an HTML part."""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from tests.support.outbox import add_channel, add_rows, rows, send_outbox

PASSWORD = "smtp-Pa55word-n0t-for-logs"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        parsed = email.message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        self.messages.append((envelope, parsed))
        return "250 Message accepted for delivery"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"nightshift" \
        and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def smtp_server(inbox: Inbox, **kwargs: Any) -> Iterator[int]:
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def payload() -> dict[str, Any]:
    return {"subject": "pipeline/7", "target": "acme/infra/net<&>", "task_kind": "drift-scan", "scan_id": 3,
            "scan_status": "DRIFTED", "counts": {"new": 2, "open": 2},
            "new": [{"id": 1, "kind": "drift", "address": "aws_security_group.web", "change": "update",
                     "attributes": ["ingress"]},
                    {"id": 2, "kind": "drift", "address": "aws_s3_bucket.logs", "change": "update",
                     "attributes": ["tags.env"]}]}


def parts(message: email.message.EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_email_with_auth_has_text_and_html_parts(db_url: str, conn: psycopg.Connection,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    inbox = Inbox()
    monkeypatch.setenv("NS_TEST_SMTP_PASSWORD", PASSWORD)
    for port in smtp_server(inbox, auth_require_tls=False):
        add_channel(conn, "mail", "email", {
            "host": "127.0.0.1", "port": port, "security": "none", "username": "nightshift",
            "password": "env:NS_TEST_SMTP_PASSWORD", "from": "nightshift@example.com",
            "to": ["ops@example.com", "oncall@example.com"]})
        [nid] = add_rows(conn, "mail", [payload()])
        asyncio.run(send_outbox(db_url))
    [(envelope, message)] = inbox.messages
    assert envelope.rcpt_tos == ["ops@example.com", "oncall@example.com"]
    assert message["Subject"] == "Drift: 2 new on acme/infra/net<&>"
    text, html = parts(message)
    assert "aws_security_group.web (update: ingress)" in text and "aws_s3_bucket.logs" in text
    assert "<li>aws_security_group.web (update: ingress)</li>" in html
    assert "acme/infra/net&lt;&amp;&gt;" in html  # autoescaped
    row = rows(conn)[nid]
    assert row["status"] == "sent" and row["response"] == "accepted for 2 recipient(s)"
    assert PASSWORD not in caplog.text


def test_email_wrong_password_fails_without_retry(db_url: str, conn: psycopg.Connection,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = Inbox()
    monkeypatch.setenv("NS_TEST_SMTP_PASSWORD", "wrong-" + PASSWORD)
    for port in smtp_server(inbox, auth_require_tls=False):
        add_channel(conn, "mail", "email", {
            "host": "127.0.0.1", "port": port, "security": "none", "username": "nightshift",
            "password": "env:NS_TEST_SMTP_PASSWORD", "from": "n@example.com", "to": "ops@example.com"})
        [nid] = add_rows(conn, "mail", [payload()])
        asyncio.run(send_outbox(db_url))
    row = rows(conn)[nid]
    assert row["status"] == "failed" and row["last_error"].startswith("SMTP authentication refused: 535")
    assert PASSWORD not in str(row) and inbox.messages == []


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("no `openssl` binary to make the STARTTLS test's certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_email_over_starttls(db_url: str, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch,
                             certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    monkeypatch.setenv("NS_TEST_SMTP_PASSWORD", PASSWORD)
    for port in smtp_server(inbox, tls_context=context, require_starttls=True):
        add_channel(conn, "mail", "email", {
            "host": "127.0.0.1", "port": port, "security": "starttls", "username": "nightshift",
            "password": "env:NS_TEST_SMTP_PASSWORD", "from": "n@example.com", "to": ["ops@example.com"],
            "ca_file": str(cert)})
        add_channel(conn, "untrusted", "email", {
            "host": "127.0.0.1", "port": port, "security": "starttls", "from": "n@example.com",
            "to": ["ops@example.com"]})
        ok = add_rows(conn, "mail", [payload()])[0]
        refused = add_rows(conn, "untrusted", [payload()])[0]
        asyncio.run(send_outbox(db_url))
    after = rows(conn)
    assert after[ok]["status"] == "sent"
    assert after[refused]["status"] == "pending"  # an unverified certificate is a (retried) failure
    assert "CERTIFICATE_VERIFY_FAILED" in after[refused]["last_error"]
    [(_, message)] = inbox.messages
    assert parts(message)[0].startswith("Drift: 2 new")


def test_email_over_implicit_tls_with_auth(db_url: str, conn: psycopg.Connection,
                                           monkeypatch: pytest.MonkeyPatch,
                                           certificate: tuple[Path, Path]) -> None:
    """security "tls" (SMTPS, port 465 by default): TLS from the first byte, then AUTH."""
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    monkeypatch.setenv("NS_TEST_SMTP_PASSWORD", PASSWORD)
    # aiosmtpd only knows of TLS it started itself (STARTTLS): on an implicit-TLS socket it would not
    # offer AUTH unless told that TLS is not required for it (the socket is TLS all the same)
    for port in smtp_server(inbox, ssl_context=context, auth_require_tls=False):
        add_channel(conn, "smtps", "email", {
            "host": "127.0.0.1", "port": port, "security": "tls", "username": "nightshift",
            "password": "env:NS_TEST_SMTP_PASSWORD", "from": "n@example.com", "to": ["ops@example.com"],
            "ca_file": str(cert)})
        sent = add_rows(conn, "smtps", [payload()])[0]
        asyncio.run(send_outbox(db_url))
    assert rows(conn)[sent]["status"] == "sent"
    [(envelope, message)] = inbox.messages
    assert envelope.rcpt_tos == ["ops@example.com"]
    text, html = parts(message)
    assert text.startswith("Drift: 2 new") and "acme/infra/net&lt;&amp;&gt;" in html
    assert PASSWORD not in str(rows(conn))
