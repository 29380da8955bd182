"""Which open remediation pull requests a drift scan's checkout of the default branch has merged.

The scan's targets list the pipeline's remediations whose pull request is open (nightshift.task_targets:
id, branch, the head commit Nightshift pushed, the pull request's number). For each, this module says
whether the code the scan is about to plan contains it:

contained  the pushed head commit is an ancestor of the scanned commit (`git merge-base --is-ancestor`):
           a merge commit or a fast-forward. The clone is shallow, so history back to a day before the
           oldest pull request was opened is fetched first (`--shallow-since`): the pushed commit is
           younger than that. merged_at is the merge commit's time when there is one, else unknown.
forge      not contained, and the forge says the pull request was merged (a squash or rebase merge
           writes new commits): GitHub's `merged_at`. The local forge cannot tell; its merges are
           recorded by `nightshift prs close --merged`.

The agent only reports what it saw (the result's "merged" section); nightshift.remediations_seen_merged
decides what to mark. Nothing here may fail the scan: a fetch or a forge that fails leaves a note in
the scan's summary, and the pull request stays open until the next scan or the webhook.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dispatcher.agents.base import AgentContext
from dispatcher.agents.workspace import GIT_URL, StepFailed, Steps, step
from dispatcher.forge import ForgeError, forge_from_payload

MARGIN = timedelta(days=1)  # clocks of the dispatcher and the database may disagree
SHA = re.compile(r"^[0-9a-f]{7,64}$")


async def merged_remediations(
    ctx: AgentContext, steps: Steps, src: Path, source: str, branch: str, env: Mapping[str, str],
) -> tuple[list[dict[str, Any]], list[str]]:
    """(what was seen merged, notes on what could not be checked)."""
    listed = ctx.targets.get("remediations") or []
    open_prs = [r for r in listed if isinstance(r, Mapping) and r.get("branch")]
    if not open_prs:
        return [], []
    merged: list[dict[str, Any]] = []
    notes: list[str] = []
    git = shutil.which("git")
    if GIT_URL.match(source) and git is not None and (src / ".git").exists():
        try:
            merged += await _contained(ctx, steps, git, src, branch, env, open_prs)
        except StepFailed as exc:
            notes.append(f"merged remediation branches not checked in git: {str(exc).splitlines()[0][:300]}")
    seen = {m["remediation_id"] for m in merged}
    rest = [r for r in open_prs if r.get("id") not in seen and isinstance(r.get("pr_number"), int)]
    forge = ctx.targets.get("forge")
    if rest and isinstance(forge, Mapping) and forge.get("kind") == "github":
        try:
            merged += await _merged_on_forge(forge, rest)
        except ForgeError as exc:
            notes.append(f"the forge could not say which pull requests were merged: {str(exc)[:300]}")
    return merged, notes


async def _contained(
    ctx: AgentContext, steps: Steps, git: str, src: Path, branch: str, env: Mapping[str, str],
    open_prs: list[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    async def run_git(name: str, *args: str, ok: tuple[int, ...] = (0,)) -> Any:
        return await step(steps, ctx, name, [git, *args], src, env, ok=ok)

    # a commit is a hex object name, never something git could read as an option
    with_commit = [r for r in open_prs if isinstance(r.get("commit"), str) and SHA.match(r["commit"])]
    if not with_commit:
        return []
    since = _oldest(with_commit)
    deepen = [f"--shallow-since={since:%Y-%m-%dT%H:%M:%S}+00:00"] if since is not None else ["--unshallow"]
    await run_git("fetch-history", "fetch", "--quiet", "--no-tags", *deepen, "origin", branch, ok=(0, 1, 128))
    head = (await run_git("rev-parse", "rev-parse", "HEAD")).text().strip()
    found = []
    for remediation in with_commit:
        commit = str(remediation["commit"])
        # 0: an ancestor; 1: not one; 128: an object this clone does not have (not merged here)
        answer = await run_git("is-ancestor", "merge-base", "--is-ancestor", commit, "HEAD", ok=(0, 1, 128))
        if answer.returncode != 0:
            continue
        found.append({
            "remediation_id": int(remediation["id"]),
            "branch": str(remediation["branch"]),
            "commit": commit,
            "how": "contained",
            "merged_at": await _merge_time(run_git, commit),
            "evidence": f"{commit[:12]} is in {head[:12]}, the scanned head of the default branch",
        })
    return found


async def _merge_time(run_git: Any, commit: str) -> str | None:
    """The time of the merge commit that brought `commit` into the first-parent line of HEAD (the
    oldest commit of that line descending from it), or None: a fast-forward keeps no trace of when."""
    line = await run_git("rev-list", "rev-list", "--first-parent", "--ancestry-path", f"{commit}..HEAD",
                         ok=(0, 128))
    commits = line.text().split()
    if line.returncode != 0 or not commits:
        return None  # HEAD is the pushed commit itself
    shown = await run_git("merge-commit", "log", "-1", "--format=%cI %P", commits[-1], ok=(0, 128))
    parts = shown.text().split()
    # a merge commit (two parents or more) whose first parent is not the pushed commit: that one
    # was on the line already (a fast-forward), and this commit merged something else
    if shown.returncode != 0 or len(parts) < 3 or parts[1] == commit:
        return None
    return parts[0]


def _oldest(remediations: list[Mapping[str, Any]]) -> datetime | None:
    times = []
    for remediation in remediations:
        try:
            opened = datetime.fromisoformat(str(remediation.get("opened_at")))
        except ValueError:
            return None  # a pull request without its time: fetch the whole history
        if opened.tzinfo is None:
            return None
        times.append(opened)
    return (min(times) - MARGIN).astimezone(UTC) if times else None


async def _merged_on_forge(
    spec: Mapping[str, Any], remediations: list[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    found = []
    async with forge_from_payload(spec) as forge:
        for remediation in remediations:
            pull = await forge.get_pull_request(int(remediation["pr_number"]))
            if pull is None or pull.merged_at is None or pull.head_ref != remediation["branch"]:
                continue
            found.append({
                "remediation_id": int(remediation["id"]),
                "branch": str(remediation["branch"]),
                "pr_number": pull.number,
                "how": "forge",
                "merged_at": pull.merged_at,
                "evidence": f"the forge says pull request #{pull.number} was merged at {pull.merged_at}",
            })
    return found
