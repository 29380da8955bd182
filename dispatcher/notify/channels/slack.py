"""`slack`: a Slack incoming webhook, one Block Kit message per send.

Settings: {"webhook_url": "env:NAME" | "file:/path"} — the URL is the credential, so only a
reference is stored. The message is built here, in Python, within Slack's documented limits
(../shared/corpora/slack/README.md): at most 50 blocks, a header of 150 characters, section texts of
3000, a button text of 75 and URL of 3000; and, since Slack reports `msg_blocks_too_long` somewhere
near 13,000 characters of blocks without documenting it, at most TEXT_BUDGET characters in all.
What does not fit is cut with "…and N more", so Slack never rejects a message for its size.
Text from findings is escaped for mrkdwn (&, <, >), so a resource name cannot become a link or a
mention.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from dispatcher.notify.channels import Channel, ChannelError, Delivery, Outgoing, register
from dispatcher.notify.channels.http import check_url, client, deliver
from dispatcher.notify.render import Message, Section

MAX_BLOCKS = 50
HEADER_MAX = 150
SECTION_MAX = 3000
CONTEXT_ELEMENTS_MAX = 10
BUTTON_TEXT_MAX = 75
URL_MAX = 3000
TEXT_MAX = 3000        # the top-level `text`, the notification fallback
TEXT_BUDGET = 11_000   # all block texts together, below the ~13,000 where Slack starts refusing


def escape(text: str) -> str:
    """Slack mrkdwn escaping: the three characters Slack asks apps to escape."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int, marker: str = "…") -> str:
    """`text` escaped and at most `limit` characters, never cutting through an escape sequence."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    raw = text[: max(limit - len(marker), 0)]
    while raw and len(escape(raw)) + len(marker) > limit:
        raw = raw[: len(raw) - max(1, (len(escape(raw)) + len(marker) - limit))]
    return escape(raw) + marker


def list_text(heading: str, lines: Sequence[str], more: int, limit: int) -> str:
    """'*heading*' then '• line' rows, as many as fit in `limit`, then '…and N more'."""
    text = f"*{cut(heading, 200)}*"
    for index, line in enumerate(lines):
        rest = len(lines) - index + more
        tail = f"\n…and {rest} more"
        row = "\n• " + cut(line, 500)
        if len(text) + len(row) + (len(tail) if rest > 1 else 0) > limit:
            return text + tail
        text += row
    if more:
        text += f"\n…and {more} more"
    return text


def build_payload(outgoing: Outgoing) -> dict[str, Any]:
    """The webhook body: Block Kit blocks plus the `text` fallback Slack recommends."""
    if len(outgoing.messages) == 1 and not outgoing.digest:
        blocks = _single(outgoing.messages[0])
    else:
        blocks = _grouped(outgoing)
    fallback = outgoing.heading
    if len(outgoing.messages) > 1:
        fallback += ": " + "; ".join(m.title for m in outgoing.messages)
    return {"text": cut(fallback, TEXT_MAX), "blocks": blocks}


def _single(message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [_header(message.title)]
    budget = TEXT_BUDGET - len(message.title)
    if message.intro:
        blocks.append(_section(cut(message.intro, SECTION_MAX)))
        budget -= len(blocks[-1]["text"]["text"])
    for index, section in enumerate(message.sections):
        room = max(min(SECTION_MAX, budget // (len(message.sections) - index)), 100)
        blocks.append(_section(list_text(section.heading, section.lines, section.more, room)))
        budget -= len(blocks[-1]["text"]["text"])
        if len(blocks) >= MAX_BLOCKS - 3:
            break
    if button := _button(message):
        blocks.append({"type": "actions", "elements": [button]})
    blocks.append(_context(message.context))
    return blocks


def _grouped(outgoing: Outgoing) -> list[dict[str, Any]]:
    messages = outgoing.messages
    blocks: list[dict[str, Any]] = [_header(outgoing.heading)]
    budget = TEXT_BUDGET - len(outgoing.heading) - 200
    listed = 0
    for index, message in enumerate(messages):
        remaining = len(messages) - index
        # keep room for the last two blocks: "…and N more updates" and the context line
        if len(blocks) >= MAX_BLOCKS - 2 or budget < 300:
            break
        room = max(min(SECTION_MAX, budget // min(remaining, MAX_BLOCKS - 2 - len(blocks))), 300)
        text = _compact(message, min(room, budget))
        blocks.append(_section(text))
        budget -= len(text)
        listed += 1
    if listed < len(messages):
        blocks.append(_section(f"…and {len(messages) - listed} more updates"))
    kinds = sorted({str(m.payload.get("task_kind")) for m in messages if m.payload.get("task_kind")})
    blocks.append(_context(" · ".join(["Nightshift", f"{len(messages)} updates", *kinds])))
    return blocks


def _compact(message: Message, limit: int) -> str:
    """One message as one section: bold title, intro, then its lists, cut to `limit`."""
    head = f"*{cut(message.title, 300)}*"
    if message.link and check_url(message.link) is None and len(message.link) <= URL_MAX:
        head += f"  <{escape(message.link)}|open>"
    if message.intro:
        head += "\n" + cut(message.intro, max(limit // 3, 100))
    text = head
    for index, section in enumerate(message.sections):
        room = (limit - len(text) - 1) // (len(message.sections) - index)
        if room < 40:
            hidden = sum(len(s.lines) + s.more for s in message.sections[index:])
            return text + f"\n…and {hidden} more"
        text += "\n" + list_text(section.heading, section.lines, section.more, room)
    return text[:limit]


def _header(title: str) -> dict[str, Any]:
    # header blocks take plain_text only: no mrkdwn, so no escaping, just the length
    text = " ".join(title.split()) or "Nightshift"
    if len(text) > HEADER_MAX:
        text = text[: HEADER_MAX - 1] + "…"
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn[:SECTION_MAX] or " "}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text or "Nightshift", 2000)}]}


def _button(message: Message) -> dict[str, Any] | None:
    if not message.link or check_url(message.link) is not None or len(message.link) > URL_MAX:
        return None
    label = "Open the pull request" if message.payload.get("pr_url") else "Open the scan"
    return {"type": "button", "text": {"type": "plain_text", "text": label[:BUTTON_TEXT_MAX]},
            "url": message.link}


@register("slack")
class SlackChannel(Channel):
    secret_settings = ("webhook_url",)
    _http: httpx.AsyncClient | None = None

    def check(self) -> None:
        super().check()
        if not self.settings.get("webhook_url"):
            raise ChannelError(f"channel {self.name}: a slack channel needs webhook_url "
                               "(env:NAME or file:/path holding the incoming webhook's URL)")

    async def send(self, outgoing: Outgoing) -> Delivery:
        url = self.secret("webhook_url")
        body = json.dumps(build_payload(outgoing), ensure_ascii=False).encode()
        if self._http is None:
            self._http = client(float(self.settings.get("timeout", 10)))
        delivery = await deliver(self._http, url, body, {"Content-Type": "application/json; charset=utf-8"})
        if delivery.ok and delivery.response.startswith("an HTML page"):
            # a captive portal or a wrong URL answers 200 with a page; Slack answers "ok"
            delivery = Delivery.failed(f"answered 200 with {delivery.response}: is the URL a Slack "
                                       "incoming webhook?", retry=False, response=delivery.response)
        return self.scrubbed(delivery)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


__all__ = ["Section", "SlackChannel", "build_payload", "escape"]
