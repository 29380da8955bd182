"""An independent check of Slack message bodies against Block Kit's documented limits.

The limits are those of ../shared/corpora/slack/README.md (Slack's docs and the constants of Slack's
own SDK); test_notify_render.py checks this table against that file when it is present. Written
apart from dispatcher/notify/channels/slack.py on purpose: the code under test does not grade itself.
"""

from __future__ import annotations

from typing import Any

LIMITS = {
    "blocks per message": 50,
    "header text": 150,
    "section text": 3000,
    "section fields": 10,
    "field text": 2000,
    "block_id": 255,
    "actions elements": 25,
    "context elements": 10,
    "button text": 75,
    "button url": 3000,
}
# Not documented by Slack; reported as `msg_blocks_too_long` near 13,000 characters of blocks.
TOTAL_BLOCK_TEXT = 13_000


def problems(body: dict[str, Any]) -> list[str]:
    """Every way `body` breaks the limits (empty: Slack would take it)."""
    found: list[str] = []
    blocks = body.get("blocks")
    if not isinstance(body.get("text"), str) or not body["text"]:
        found.append("no top-level text fallback")
    if not isinstance(blocks, list) or not blocks:
        return [*found, "no blocks"]
    if len(blocks) > LIMITS["blocks per message"]:
        found.append(f"{len(blocks)} blocks > 50")
    total = 0
    for index, block in enumerate(blocks):
        where = f"block {index} ({block.get('type')})"
        if len(block.get("block_id", "")) > LIMITS["block_id"]:
            found.append(f"{where}: block_id too long")
        kind = block.get("type")
        if kind == "header":
            text = block.get("text", {})
            if text.get("type") != "plain_text":
                found.append(f"{where}: header text must be plain_text")
            if not 1 <= len(text.get("text", "")) <= LIMITS["header text"]:
                found.append(f"{where}: header text length {len(text.get('text', ''))}")
            total += len(text.get("text", ""))
        elif kind == "section":
            text = block.get("text")
            fields = block.get("fields")
            if text is None and not fields:
                found.append(f"{where}: neither text nor fields")
            if text is not None:
                if text.get("type") not in ("mrkdwn", "plain_text"):
                    found.append(f"{where}: text type {text.get('type')}")
                if not 1 <= len(text.get("text", "")) <= LIMITS["section text"]:
                    found.append(f"{where}: text length {len(text.get('text', ''))}")
                total += len(text.get("text", ""))
            if fields:
                if len(fields) > LIMITS["section fields"]:
                    found.append(f"{where}: {len(fields)} fields")
                for field in fields:
                    if len(field.get("text", "")) > LIMITS["field text"]:
                        found.append(f"{where}: field text too long")
        elif kind == "context":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= LIMITS["context elements"]:
                found.append(f"{where}: {len(elements)} elements")
            total += sum(len(e.get("text", "")) for e in elements)
        elif kind == "actions":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= LIMITS["actions elements"]:
                found.append(f"{where}: {len(elements)} elements")
            for element in elements:
                if element.get("type") == "button":
                    if not 1 <= len(element.get("text", {}).get("text", "")) <= LIMITS["button text"]:
                        found.append(f"{where}: button text length")
                    if len(element.get("url", "")) > LIMITS["button url"]:
                        found.append(f"{where}: button url too long")
        elif kind != "divider":
            found.append(f"{where}: unexpected block type")
    if total > TOTAL_BLOCK_TEXT:
        found.append(f"{total} characters of block text > {TOTAL_BLOCK_TEXT}")
    return found


def unescaped(body: dict[str, Any]) -> list[str]:
    """mrkdwn texts with a raw '<' or '>' that is not part of a link Nightshift made (<url|open>)."""
    import re

    bad = []
    for block in body.get("blocks", []):
        texts = [block.get("text", {})] if block.get("type") == "section" else block.get("elements", [])
        for text in texts:
            if text.get("type") != "mrkdwn":
                continue
            stripped = re.sub(r"<https?://[^<>|\s]+\|open>", "", text.get("text", ""))
            if "<" in stripped or ">" in stripped:
                bad.append(stripped[:200])
    return bad
