"""Outgoing HTTP of the slack and webhook channels: one POST with a timeout, a bounded response,
Retry-After honoured, and every answer sorted into sent / retry later / failed for good.

The URL is a secret (a Slack webhook URL is its own credential), so no text built here contains it:
errors name what went wrong, not where. Redirects are not followed (a webhook that moved is an
error for the operator to see, and following one would send the body somewhere unchecked).
"""

from __future__ import annotations

import email.utils
import functools
import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import httpx

from dispatcher import __version__
from dispatcher.notify.channels import Delivery

MAX_RESPONSE_BYTES = 64 * 1024   # read no more of an answer than this (a 50 MB error page is not read)
MAX_RETRY_AFTER = 3600.0         # a Retry-After further out than an hour is capped to the hour
USER_AGENT = f"nightshift/{__version__}"

# 4xx answers that a later try can fix: timeout, too early, too many requests
RETRYABLE_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True)
class Answer:
    status: int
    body: str            # at most MAX_RESPONSE_BYTES, decoded leniently
    truncated: bool
    retry_after: float | None
    content_type: str


def check_url(url: str) -> str | None:
    """Why `url` cannot be posted to (None when it can); never repeats the URL."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return "malformed URL (cannot be parsed)"
    if parts.scheme not in ("http", "https"):
        return f"malformed URL: scheme must be https or http, not {parts.scheme or 'missing'!r}"
    if not parts.hostname:
        return "malformed URL: no host"
    return None


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context (certifi's CAs, as httpx uses) for every channel's client: loading
    the CA bundle takes ~70 ms, which per channel would cost seconds for a hundred channels."""
    return ssl.create_default_context(cafile=certifi.where())


def client(timeout: float) -> httpx.AsyncClient:
    # httpx logs every request's full URL at INFO (httpcore its connections at DEBUG), and a Slack
    # webhook URL is a credential: those loggers only speak of warnings here.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        verify=tls_context(),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        trust_env=False,  # no proxy from the environment: a secret URL goes where it says
    )


async def post(http: httpx.AsyncClient, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
    """POST body; read at most MAX_RESPONSE_BYTES of the answer. httpx errors propagate."""
    async with http.stream("POST", url.strip(), content=body, headers=dict(headers)) as response:
        chunks: list[bytes] = []
        size = 0
        truncated = False
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                truncated = True
                break  # leaving the block closes the connection: the rest is never read
        raw = b"".join(chunks)[:MAX_RESPONSE_BYTES]
        return Answer(
            status=response.status_code,
            body=raw.decode("utf-8", errors="replace"),
            truncated=truncated,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            content_type=response.headers.get("content-type", ""),
        )


async def deliver(http: httpx.AsyncClient, url: str, body: bytes, headers: Mapping[str, str]) -> Delivery:
    """post() with every outcome, errors included, as a Delivery (messages never hold the URL)."""
    problem = check_url(url)
    if problem:
        return Delivery.failed(problem, retry=False)
    try:
        answer = await post(http, url, body, headers)
    except httpx.TimeoutException as exc:
        return Delivery.failed(f"no answer within the timeout ({type(exc).__name__})", retry=True)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        return Delivery.failed("malformed URL (refused by the HTTP client)", retry=False)
    except httpx.HTTPError as exc:
        return Delivery.failed(f"connection failed ({type(exc).__name__})", retry=True)
    return classify(answer)


def classify(answer: Answer) -> Delivery:
    """2xx: sent. 429/408/425/5xx: retry (after Retry-After when given). Other 4xx, 3xx: failed."""
    response = summary(answer)
    if 200 <= answer.status < 300:
        return Delivery(ok=True, response=response)
    error = f"HTTP {answer.status}: {response}" if response else f"HTTP {answer.status}"
    if answer.status in RETRYABLE_4XX or answer.status >= 500:
        return Delivery.failed(error, retry=True, response=response, retry_after=answer.retry_after)
    if 300 <= answer.status < 400:
        error += " (redirects are not followed: point the channel at the final URL)"
    return Delivery.failed(error, retry=False, response=response)


def summary(answer: Answer) -> str:
    """The answer in one short line: its body, or what kind of body it was."""
    if answer.truncated:
        kind = answer.content_type or "no content type"
        return f"a response larger than {MAX_RESPONSE_BYTES // 1024} KiB ({kind}), not read"
    text = answer.body.strip()
    if "html" in answer.content_type.lower() or text[:15].lower().startswith(("<!doctype", "<html")):
        return f"an HTML page ({len(answer.body)} bytes), not an API answer"
    text = " ".join(text.split())
    return text[:200] + ("…" if len(text) > 200 else "")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; capped at an hour."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
