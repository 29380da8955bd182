"""`webhook`: a signed JSON POST to any URL.

Settings: {"url": "https://…" or a reference, "secret": "env:NAME" | "file:/path" (the HMAC key),
"timeout": 10}. Every request carries

    X-Nightshift-Timestamp: <unix seconds>
    X-Nightshift-Signature: sha256=<hex HMAC-SHA256(key, "<timestamp>." + body)>
    X-Nightshift-Delivery:  <first notification id>-<attempt>   (the same on a retry of the same rows)

so a receiver recomputes the signature over the exact bytes it received, compares in constant time,
and refuses timestamps older than a few minutes (replays). Without a `secret` the request is sent
unsigned. The body:

    {"channel": "...", "digest": null | "hourly" | "daily", "heading": "...",
     "notifications": [{"id", "template", "title", "text", "link", "payload"}, ...]}

`payload` is the outbox row's payload (finding summaries: addresses and attribute paths, never values).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from dispatcher.notify.channels import Channel, ChannelError, Delivery, Outgoing, register
from dispatcher.notify.channels.http import client, deliver

SIGNATURE_HEADER = "X-Nightshift-Signature"
TIMESTAMP_HEADER = "X-Nightshift-Timestamp"
DELIVERY_HEADER = "X-Nightshift-Delivery"


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    """The X-Nightshift-Signature value of `body` sent at `timestamp`."""
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def build_body(outgoing: Outgoing, text_of: Any) -> dict[str, Any]:
    return {
        "channel": outgoing.channel,
        "digest": outgoing.digest,
        "heading": outgoing.heading,
        "notifications": [
            {"id": m.notification_id, "template": m.template, "title": m.title, "text": text_of(m),
             "link": m.link, "payload": dict(m.payload)}
            for m in outgoing.messages
        ],
    }


@register("webhook")
class WebhookChannel(Channel):
    secret_settings = ("secret",)
    _http: httpx.AsyncClient | None = None

    def check(self) -> None:
        super().check()
        if not self.settings.get("url"):
            raise ChannelError(f"channel {self.name}: a webhook channel needs url "
                               "(https://… or env:NAME / file:/path when the URL is itself a secret)")

    async def send(self, outgoing: Outgoing) -> Delivery:
        url = self.secret("url")
        body = json.dumps(
            build_body(outgoing, lambda m: self.renderer.render_document("message.txt.j2", [m], m.title)),
            ensure_ascii=False, default=str, separators=(",", ":"),
        ).encode()
        headers = {"Content-Type": "application/json; charset=utf-8",
                   DELIVERY_HEADER: outgoing.delivery_id or str(outgoing.messages[0].notification_id)}
        if self.settings.get("secret"):
            timestamp = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(self.secret("secret").encode(), timestamp, body)
        if self._http is None:
            self._http = client(float(self.settings.get("timeout", 10)))
        return self.scrubbed(await deliver(self._http, url, body, headers))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
