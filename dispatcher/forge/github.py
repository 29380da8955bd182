"""The GitHub forge: REST API v3 over async httpx, held to GitHub's OpenAPI description in the tests.

- The token comes from a secret reference (env:NAME, file:/path), resolved by the caller; it travels
  only in the Authorization header, never in a URL, and is masked out of every error message.
- GitHub Enterprise: `api_url` (else $GITHUB_API_URL, else https://api.github.com).
- Pagination: `Link: <...>; rel="next"` is followed, only to the API's own origin (the token is never
  sent to another host a response names).
- Rate limits: a 403 or 429 that says so (`x-ratelimit-remaining: 0` with `x-ratelimit-reset`, or
  `Retry-After`) is waited out and retried, unless the wait is longer than `max_wait` seconds
  (ForgeRateLimited). Other 403s are ForgeForbidden; 404/410 ForgeNotFound.
- 5xx and transport errors are retried a few times with backoff; responses are capped in size.
- 422 "A pull request already exists for owner:branch" on open_pull_request is "found", not an error.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from dispatcher.forge.base import (
    ChangedFile,
    Comment,
    Forge,
    ForgeError,
    ForgeForbidden,
    ForgeNotFound,
    ForgeRateLimited,
    PullRequest,
    check_status_state,
    with_marker,
)
from dispatcher.redact import mask

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
USER_AGENT = "nightshift-forge"
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
MAX_PAGES = 100  # 100 items a page: GitHub lists at most 3,000 files of a pull request anyway
SERVER_RETRIES = 3
DEFAULT_MAX_WAIT = 120.0  # seconds a rate limit may hold one request up
MAX_STATUS_DESCRIPTION = 140  # GitHub's limit on a commit status description
EXISTS = "a pull request already exists"

Sleep = Callable[[float], Awaitable[None]]


def api_url_from_env(explicit: str | None = None) -> str:
    return (explicit or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")


class GitHubForge(Forge):
    kind = "github"

    def __init__(self, full_name: str, token: str, *, api_url: str | None = None,
                 client: httpx.AsyncClient | None = None, max_wait: float = DEFAULT_MAX_WAIT,
                 sleep: Sleep = asyncio.sleep, timeout: float = 30.0) -> None:
        owner, sep, repo = full_name.partition("/")
        if not sep or not owner or not repo or "/" in repo:
            raise ForgeError(f"a GitHub repository is named owner/name, got {full_name!r}")
        self.owner, self.repo = owner, repo
        self.api_url = api_url_from_env(api_url)
        scheme = urlsplit(self.api_url).scheme
        if scheme not in ("https", "http"):
            raise ForgeError(f"the GitHub API URL must be http(s), got {scheme or 'none'!r}")
        self._origin = _origin(self.api_url)
        self._token = token
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._max_wait = max_wait
        self._sleep = sleep

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    # --- the interface -------------------------------------------------------------------------------

    async def find_pull_request(self, head: str, base: str | None = None) -> PullRequest | None:
        params = {"head": f"{self.owner}:{head}", "state": "open", "per_page": "100"}
        if base:
            params["base"] = base
        async for item in self._pages("GET", self._repo_path("pulls"), params):
            if item.get("head", {}).get("ref") == head:
                return _pull_request(item)
        return None

    async def get_pull_request(self, number: int) -> PullRequest | None:
        try:
            data = await self._json("GET", self._repo_path(f"pulls/{int(number)}"))
        except ForgeNotFound:
            return None
        return _pull_request(data)

    async def open_pull_request(self, head: str, base: str, title: str, body: str) -> PullRequest:
        try:
            data = await self._json("POST", self._repo_path("pulls"),
                                    body={"title": title, "head": head, "base": base, "body": body})
        except ForgeError as exc:
            if exc.status == 422 and EXISTS in str(exc).lower():
                found = await self.find_pull_request(head, base)
                if found is not None:
                    return found
            raise
        return _pull_request(data, created=True)

    async def list_changed_files(self, number: int) -> list[ChangedFile]:
        return [ChangedFile(path=item["filename"], status=item.get("status", "modified"),
                            previous_path=item.get("previous_filename"))
                async for item in self._pages("GET", self._repo_path(f"pulls/{int(number)}/files"),
                                              {"per_page": "100"})]

    async def upsert_comment(self, number: int, marker: str, body: str) -> Comment:
        text = with_marker(marker, body)
        path = self._repo_path(f"issues/{int(number)}/comments")
        async for item in self._pages("GET", path, {"per_page": "100"}):
            if marker in (item.get("body") or ""):
                data = await self._json("PATCH", self._repo_path(f"issues/comments/{int(item['id'])}"),
                                        body={"body": text})
                return Comment(id=data.get("id"), url=data.get("html_url"), created=False)
        data = await self._json("POST", path, body={"body": text})
        return Comment(id=data.get("id"), url=data.get("html_url"), created=True)

    async def set_status(self, sha: str, state: str, description: str, context: str,
                         target_url: str | None = None) -> None:
        check_status_state(state)
        body: dict[str, Any] = {"state": state, "context": context,
                                "description": description[:MAX_STATUS_DESCRIPTION]}
        if target_url:
            body["target_url"] = target_url
        await self._json("POST", self._repo_path(f"statuses/{quote(sha, safe='')}"), body=body)

    # --- HTTP ----------------------------------------------------------------------------------------

    def _repo_path(self, rest: str) -> str:
        return f"/repos/{quote(self.owner, safe='')}/{quote(self.repo, safe='')}/{rest}"

    async def _json(self, method: str, path: str, *, body: Any = None,
                    params: dict[str, str] | None = None) -> Any:
        _, content = await self._request(method, self.api_url + path, body=body, params=params)
        return _decode(content, method, path)

    async def _pages(self, method: str, path: str, params: dict[str, str]) -> Any:
        url: str | None = self.api_url + path
        query: dict[str, str] | None = params
        for _ in range(MAX_PAGES):
            assert url is not None
            response, content = await self._request(method, url, params=query)
            items = _decode(content, method, path)
            if not isinstance(items, list):
                raise ForgeError(f"GitHub answered {method} {path} with a {type(items).__name__}, "
                                 "not a list")
            for item in items:
                yield item
            url, query = response.links.get("next", {}).get("url"), None
            if not url:
                return
            if _origin(url) != self._origin:  # never send the token to a host a response names
                raise ForgeError(f"GitHub's next page of {path} is on another host ({_origin(url)})")
        raise ForgeError(f"{path}: more than {MAX_PAGES} pages")

    async def _request(self, method: str, url: str, *, body: Any = None,
                       params: dict[str, str] | None = None) -> tuple[httpx.Response, bytes]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
                   "User-Agent": USER_AGENT, "Authorization": f"Bearer {self._token}"}
        path = urlsplit(url).path
        failures = 0
        while True:
            try:
                async with self._client.stream(method, url, params=params, headers=headers,
                                               json=body) as response:
                    content = await _read_capped(response, method, path)
            except httpx.HTTPError as exc:
                failures += 1
                if failures > SERVER_RETRIES:
                    raise ForgeError(self._mask(f"GitHub {method} {path}: {type(exc).__name__}: {exc}")) \
                        from None
                await self._sleep(_backoff(failures))
                continue
            status = response.status_code
            if status < 300:
                return response, content
            wait = _rate_limit_wait(response, content)
            if wait is not None:
                if wait > self._max_wait:
                    raise ForgeRateLimited(
                        f"GitHub rate limit on {method} {path}: retry in {wait:.0f}s, longer than the "
                        f"{self._max_wait:.0f}s this run may wait", status=status)
                await self._sleep(wait)
                continue
            if status >= 500 and failures < SERVER_RETRIES:
                failures += 1
                await self._sleep(_backoff(failures))
                continue
            raise self._error(method, path, status, content)

    def _error(self, method: str, path: str, status: int, content: bytes) -> ForgeError:
        message = _message(content)
        text = self._mask(f"GitHub {method} {path}: {status} {message}")
        if status == 403:
            return ForgeForbidden(text + " (the token lacks a permission this needs: pull requests, "
                                  "issues and commit statuses read/write)", status=status)
        if status in (404, 410):
            return ForgeNotFound(text, status=status)
        return ForgeError(text, status=status)

    def _mask(self, text: str) -> str:
        return mask(text, [self._token])


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


async def _read_capped(response: httpx.Response, method: str, path: str) -> bytes:
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > MAX_RESPONSE_BYTES:
            raise ForgeError(f"GitHub's answer to {method} {path} exceeds {MAX_RESPONSE_BYTES} bytes")
    return bytes(data)


def _decode(content: bytes, method: str, path: str) -> Any:
    try:
        return json.loads(content) if content else {}
    except ValueError:
        raise ForgeError(f"GitHub answered {method} {path} with something that is not JSON") from None


def _message(content: bytes) -> str:
    """GitHub's `message`, plus each error's own message (where 'already exists' is said)."""
    try:
        doc = json.loads(content)
    except ValueError:
        return content[:200].decode("utf-8", "replace")
    if not isinstance(doc, dict):
        return ""
    parts = [str(doc.get("message") or "")]
    for error in doc.get("errors") or []:
        if isinstance(error, dict):
            parts.append(str(error.get("message") or error.get("code") or ""))
    return ": ".join(p for p in parts if p)[:1000]


def _rate_limit_wait(response: httpx.Response, content: bytes) -> float | None:
    """Seconds to wait when a 403/429 is a rate limit (primary or secondary), else None."""
    if response.status_code not in (403, 429):
        return None
    retry_after = response.headers.get("retry-after")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            return 60.0
    if response.headers.get("x-ratelimit-remaining") == "0":
        try:
            return max(0.0, float(response.headers.get("x-ratelimit-reset", "")) - time.time()) + 1.0
        except ValueError:
            return 60.0
    if response.status_code == 429 or "rate limit" in _message(content).lower():
        return 60.0  # GitHub: "wait at least one minute" when a secondary limit names no time
    return None


def _backoff(failures: int) -> float:
    return min(10.0, 0.5 * 2 ** (failures - 1)) * (0.5 + random.random() / 2)


def _pull_request(item: dict[str, Any], *, created: bool = False) -> PullRequest:
    return PullRequest(number=int(item["number"]), head_ref=item["head"]["ref"],
                       base_ref=item["base"]["ref"], head_sha=item["head"].get("sha"),
                       state=item.get("state", "open"), title=item.get("title") or "",
                       url=item.get("html_url"), created=created,
                       merged_at=item.get("merged_at") if isinstance(item.get("merged_at"), str) else None)
