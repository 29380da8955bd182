"""`email`: SMTP, one email per send with a text and an HTML part.

Settings: {"host": "smtp.example.com", "port": 587, "security": "starttls" | "tls" | "none",
"username": "nightshift", "password": "env:NAME" | "file:/path", "from": "nightshift@example.com",
"to": ["ops@example.com"], "timeout": 20, "ca_file": "/path/ca.pem" (optional)}.
Port defaults: 587 for starttls, 465 for tls, 25 for none. Certificates are verified (system store,
or ca_file). smtplib runs in a thread: sending one email is a handful of round trips.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from dispatcher.notify.channels import Channel, ChannelError, Delivery, Outgoing, register

DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


@register("email")
class EmailChannel(Channel):
    secret_settings = ("password",)

    def check(self) -> None:
        super().check()
        missing = [key for key in ("host", "from", "to") if not self.settings.get(key)]
        if missing:
            raise ChannelError(f"channel {self.name}: an email channel needs {', '.join(missing)}")
        if self.settings.get("security", "starttls") not in DEFAULT_PORTS:
            raise ChannelError(f"channel {self.name}: security must be starttls, tls or none")
        if self.settings.get("password") and not self.settings.get("username"):
            raise ChannelError(f"channel {self.name}: a password needs a username")

    def compose(self, outgoing: Outgoing) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = outgoing.heading[:200]
        message["From"] = str(self.settings["from"])
        message["To"] = ", ".join(self._recipients())
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="nightshift")
        render = self.renderer.render_document
        message.set_content(render("message.txt.j2", outgoing.messages, outgoing.heading))
        html = render("message.html.j2", outgoing.messages, outgoing.heading)
        message.add_alternative(html, subtype="html")
        return message

    async def send(self, outgoing: Outgoing) -> Delivery:
        message = self.compose(outgoing)
        password = self.secret("password") if self.settings.get("password") else None
        try:
            refused = await asyncio.to_thread(self._send, message, password)
        except smtplib.SMTPAuthenticationError as exc:
            return self.scrubbed(Delivery.failed(f"SMTP authentication refused: {exc.smtp_code}",
                                                 retry=False))
        except smtplib.SMTPRecipientsRefused as exc:
            return self.scrubbed(Delivery.failed(
                f"every recipient refused: {', '.join(sorted(exc.recipients))}", retry=False))
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc)
            # 4xx: the server asks to try later; 5xx: it will not take this message
            return self.scrubbed(Delivery.failed(f"SMTP {exc.smtp_code}: {text[:200]}",
                                                 retry=400 <= exc.smtp_code < 500))
        except (smtplib.SMTPException, OSError) as exc:
            return self.scrubbed(Delivery.failed(f"SMTP connection failed: {type(exc).__name__}: {exc}",
                                                 retry=True))
        if refused:
            return Delivery(ok=True, response=f"accepted; refused: {', '.join(sorted(refused))}")
        return Delivery(ok=True, response=f"accepted for {len(self._recipients())} recipient(s)")

    def _send(self, message: EmailMessage, password: str | None) -> dict[str, tuple[int, bytes]]:
        security = str(self.settings.get("security", "starttls"))
        host = str(self.settings["host"])
        port = int(self.settings.get("port") or DEFAULT_PORTS[security])
        timeout = float(self.settings.get("timeout", 20))
        context = ssl.create_default_context(cafile=self.settings.get("ca_file"))
        smtp: smtplib.SMTP
        if security == "tls":
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            if security == "starttls":
                smtp.starttls(context=context)
            if password is not None:
                smtp.login(str(self.settings["username"]), password)
            return smtp.send_message(message, to_addrs=self._recipients())

    def _recipients(self) -> list[str]:
        to = self.settings.get("to")
        return [to] if isinstance(to, str) else [str(address) for address in to or []]
