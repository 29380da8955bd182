"""The forge interface: what pull-request review and remediation need from GitHub (or a stand-in).

Five operations, each one request or a few (and get_pull_request(number), where the forge can say
whether a pull request was merged: a squash merge leaves no trace in the default branch's history):
    find_pull_request(head, base)      the open pull request of a branch, or None
    open_pull_request(head, base, ...) opens one; an existing one for the same branch is returned
                                       (created=False), never an error
    list_changed_files(number)         the files a pull request changes (all pages)
    upsert_comment(number, marker, body)
                                       one comment per marker: the comment whose body holds the hidden
                                       marker is updated in place, else a new one is written
    set_status(sha, state, ...)        a commit status on a head SHA (success, failure, error, pending)

Implementations: dispatcher/forge/github.py (REST over httpx) and dispatcher/forge/local.py (branches
on the git remote, pull requests as rows in nightshift.pull_requests). `forge_from_payload` picks one
from what a task's payload says (forge kind, API URL, token *reference*, repository).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from dispatcher.errors import NightshiftError

STATUS_STATES = ("success", "failure", "error", "pending")
MAX_COMMENT_CHARS = 65_536  # GitHub refuses longer issue comments (422 "body is too long")


class ForgeError(NightshiftError):
    """A forge refused or failed a request; the message is safe to store (no token, no URL credentials)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ForgeForbidden(ForgeError):
    """403 that is not a rate limit: the token lacks a permission (or the repository blocks it)."""


class ForgeNotFound(ForgeError):
    """404/410: the repository, pull request or comment does not exist (or the token cannot see it)."""


class ForgeRateLimited(ForgeError):
    """Rate limited for longer than the caller is willing to wait."""


@dataclass(frozen=True)
class PullRequest:
    number: int | None  # None: a local pull request recorded with the task's result, numbered then
    head_ref: str
    base_ref: str
    head_sha: str | None = None
    state: str = "open"
    title: str = ""
    url: str | None = None
    created: bool = False  # opened by this call (False: it already existed)
    merged_at: str | None = None  # ISO 8601, when the forge says it was merged (state is then closed)


@dataclass(frozen=True)
class ChangedFile:
    path: str
    status: str  # added, modified, removed, renamed, copied, changed, unchanged
    previous_path: str | None = None


@dataclass(frozen=True)
class Comment:
    id: int | None
    url: str | None = None
    created: bool = False  # False: an existing comment (found by its marker) was updated


def hidden_marker(name: str) -> str:
    """An HTML comment GitHub does not render: how a comment is found again on the next push."""
    if "--" in name or ">" in name:
        raise ValueError(f"a marker name cannot hold '--' or '>': {name!r}")
    return f"<!-- nightshift:{name} -->"


class Forge(ABC):
    """One repository on one forge."""

    kind: str

    @abstractmethod
    async def find_pull_request(self, head: str, base: str | None = None) -> PullRequest | None: ...

    @abstractmethod
    async def open_pull_request(self, head: str, base: str, title: str, body: str) -> PullRequest: ...

    @abstractmethod
    async def list_changed_files(self, number: int) -> list[ChangedFile]: ...

    @abstractmethod
    async def upsert_comment(self, number: int, marker: str, body: str) -> Comment: ...

    @abstractmethod
    async def set_status(self, sha: str, state: str, description: str, context: str,
                         target_url: str | None = None) -> None: ...

    async def get_pull_request(self, number: int) -> PullRequest | None:
        """Pull request `number` in any state (merged_at set when merged); None when this forge cannot
        tell (the local forge: its merges are recorded by `nightshift prs close --merged`)."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - most forges hold nothing to release
        """Release connections (the GitHub client's pool)."""

    def changes(self) -> list[dict[str, Any]]:
        """What the task's result must store for this forge (the local forge's rows); [] for GitHub."""
        return []

    async def __aenter__(self) -> Forge:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def check_status_state(state: str) -> None:
    if state not in STATUS_STATES:
        raise ValueError(f"commit status {state!r} is not one of {', '.join(STATUS_STATES)}")


def with_marker(marker: str, body: str) -> str:
    """The comment body carrying its marker on the first line, cut to the forge's limit."""
    text = f"{marker}\n{body}"
    if len(text) > MAX_COMMENT_CHARS:
        note = "\n\n… (cut: the review is longer than a comment may be)"
        text = text[: MAX_COMMENT_CHARS - len(note)] + note
    return text
