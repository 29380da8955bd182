"""Which remediation branches a drift scan's shallow checkout of the default branch has merged
(dispatcher/agents/merges.py), on a real bare git remote: a merge commit, a fast-forward, a squash
merge (not contained: that is the forge's to say), a branch still open, and names that must never reach
git as arguments."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from dispatcher.agents.base import AgentContext, Task
from dispatcher.agents.merges import merged_remediations
from dispatcher.agents.workspace import Steps, checkout
from tests.support.remediation_support import git

OPENED = "2026-01-01T00:00:00+00:00"


def remote_with_branches(root: Path) -> tuple[Path, dict[str, str]]:
    """main with: fix-merged (merge commit), fix-ff (fast-forwarded), fix-squashed, fix-open."""
    remote, work = root / "remote.git", root / "work"
    git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    git(root, "clone", "--quiet", str(remote), str(work))
    git(work, "checkout", "--quiet", "-b", "main")
    heads = {}

    def commit(name: str) -> None:
        (work / name).write_text(name + "\n")
        git(work, "add", name)
        git(work, "commit", "--quiet", "-m", name)

    commit("base")
    for branch in ("fix-ff", "fix-merged", "fix-squashed", "fix-open"):
        git(work, "checkout", "--quiet", "-b", branch, "main")
        commit(branch)
        heads[branch] = git(work, "rev-parse", "HEAD").strip()
        if branch == "fix-ff":
            git(work, "checkout", "--quiet", "main")
            git(work, "merge", "--quiet", "--ff-only", branch)
    git(work, "checkout", "--quiet", "main")
    commit("docs")
    git(work, "merge", "--quiet", "--no-ff", "-m", "merge fix-merged", "fix-merged")
    heads["merge"] = git(work, "log", "-1", "--format=%cI", "HEAD").strip()
    git(work, "merge", "--quiet", "--squash", "fix-squashed")
    git(work, "commit", "--quiet", "-m", "fix-squashed (squash)")
    git(work, "push", "--quiet", "origin", "main", "fix-open")
    return remote, heads


def seen(tmp_path: Path, remote: Path, remediations: list[dict[str, Any]]) -> tuple[list[Any], list[str]]:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": "/dev/null"}
    ctx = AgentContext(task=Task(id=1, kind="drift-scan", subject="pipeline/1", payload={}, attempt=1,
                                 max_attempts=1),
                       workdir=tmp_path, deadline=time.monotonic() + 120,
                       targets={"remediations": remediations, "forge": {"kind": "local"}})
    tmp_path.mkdir(exist_ok=True)
    steps, src = Steps(), tmp_path / "src"

    async def go() -> Any:
        await checkout(remote.as_uri(), "main", src, env, ctx, steps)  # depth 1, as the scan does
        return await merged_remediations(ctx, steps, src, remote.as_uri(), "main", env)

    return asyncio.run(go())


def test_merge_commits_and_fast_forwards_are_seen_squashes_and_open_branches_are_not(tmp_path: Path) -> None:
    remote, heads = remote_with_branches(tmp_path)
    listed = [{"id": n, "branch": b, "commit": heads[b], "pr_number": n, "opened_at": OPENED}
              for n, b in enumerate(("fix-ff", "fix-merged", "fix-squashed", "fix-open"), 1)]
    listed += [{"id": 9, "branch": "x", "commit": "--upload-pack=touch /tmp/owned", "opened_at": OPENED},
               {"id": 10, "branch": "y", "commit": "0" * 40, "opened_at": OPENED}]
    merged, notes = seen(tmp_path / "scan", remote, listed)
    assert notes == []
    assert [(m["remediation_id"], m["how"], m["commit"]) for m in merged] == [
        (1, "contained", heads["fix-ff"]),
        (2, "contained", heads["fix-merged"]),
    ]
    fast_forward, merge = merged
    assert fast_forward["merged_at"] is None  # a fast-forward keeps no trace of when
    assert merge["merged_at"] == heads["merge"]  # the merge commit's time
    assert "the scanned head of the default branch" in merge["evidence"]


def test_nothing_open_runs_no_git_at_all(tmp_path: Path) -> None:
    remote, _ = remote_with_branches(tmp_path)
    assert seen(tmp_path / "scan", remote, []) == ([], [])
