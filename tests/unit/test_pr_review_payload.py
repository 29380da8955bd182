"""The pr-review agent refuses payloads it cannot trust before anything runs: a clear ERROR scan."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from dispatcher.agents.base import AgentContext, Task
from dispatcher.agents.pr_review import PrReviewAgent

LOCAL = {"kind": "local", "repository_id": 1, "remote": "/nonexistent/remote.git", "pull_requests": []}


def run(payload: dict[str, Any], workdir: Path) -> Any:
    task = Task(id=1, kind="pr-review", subject="pr/1/1", payload=payload, attempt=1, max_attempts=1)
    ctx = AgentContext(task=task, workdir=workdir, deadline=time.monotonic() + 60)
    return asyncio.run(PrReviewAgent().run(ctx))


@pytest.mark.parametrize(("payload", "says"), [
    ({}, "no pull request number or head SHA"),
    ({"number": 1, "head_sha": "--upload-pack=touch /tmp/x"}, "no pull request number or head SHA"),
    ({"number": 1, "head_sha": "a" * 40, "forge": {"kind": "gitlab"}}, "unknown forge kind 'gitlab'"),
    ({"number": 1, "head_sha": "a" * 40, "forge": LOCAL, "base_ref": "main",
      "clone_url": "--upload-pack=evil"}, "neither a git URL nor an absolute path"),
    ({"number": 1, "head_sha": "a" * 40, "forge": LOCAL, "base_ref": "main", "head_ref": "-x/../y",
      "clone_url": "/srv/git/infra.git"}, "not a branch name git accepts"),
])
def test_refused_payloads(payload: dict[str, Any], says: str, tmp_path: Path) -> None:
    result = run(payload, tmp_path)
    assert result.ok and result.scan is not None and result.scan.status == "ERROR"
    assert says in str(result.scan.error)
    assert result.scan.artifacts["steps"] == []  # nothing ran
