"""Helpers of the pr-review tests and bench: a repository on a bare remote with a pull request on it
(GitHub's refs/pull/N/head made by pushing there too), the loopback GitHub, and the agent run the way
the dispatcher runs it."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from dispatcher.agents.base import AgentContext, AgentResult, Task
from dispatcher.agents.pr_review import PrReviewAgent
from tests.support.git_repos import Remote, git

FULL_NAME = "acme/infra"
TOKEN = "ghp_prreviewtoken0123456789abcdef"
TOKEN_ENV = "NIGHTSHIFT_TEST_GITHUB_TOKEN"


class PullRequestRepo(Remote):
    """A bare remote with `main` and pull requests pushed as branches and as refs/pull/N/head."""

    def open(self, number: int, branch: str, files: dict[str, str | None], message: str = "change") -> str:
        self.branch(branch)
        sha = self.commit(files, message)
        self.push_pull(number, branch)
        return sha

    def push_pull(self, number: int, branch: str, *, force: bool = False) -> str:
        sha = self.push(branch, force=force)
        git(self.work, "push", "--quiet", "--force", "origin", f"{branch}:refs/pull/{number}/head")
        return sha

    def forget_unreachable(self) -> None:
        """What a forge does eventually: objects no ref reaches are gone (a force-push's old head)."""
        git(self.bare, "reflog", "expire", "--expire=now", "--all")
        git(self.bare, "gc", "--quiet", "--prune=now")


def payload(repo: PullRequestRepo, number: int, head_sha: str, branch: str, api_url: str, *,
            clone_url: str | None = None, head_clone_url: str | None = None,
            forge: dict[str, Any] | None = None) -> dict[str, Any]:
    """What enqueue_pr_review puts in the task (from a webhook, plus the repository's forge)."""
    return {"number": number, "head_sha": head_sha, "head_ref": branch, "base_ref": "main",
            "clone_url": clone_url or repo.url, "head_clone_url": head_clone_url or clone_url or repo.url,
            "forge": forge or {"kind": "github", "full_name": FULL_NAME, "api_url": api_url,
                               "token_ref": f"env:{TOKEN_ENV}"}}


def review(task_payload: dict[str, Any], *, number: int = 1, timeout: float = 600.0,
           task_id: int = 1) -> AgentResult:
    task = Task(id=task_id, kind="pr-review", subject=f"pr/1/{number}", payload=task_payload, attempt=1,
                max_attempts=3)
    with tempfile.TemporaryDirectory(prefix="nightshift-task-") as workdir:
        ctx = AgentContext(task=task, workdir=Path(workdir), deadline=time.monotonic() + timeout)
        return asyncio.run(PrReviewAgent().run(ctx))
