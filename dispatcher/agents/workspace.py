"""What agents that work on a checkout share: a private working copy of a repository, commands run
one step at a time under the task's deadline, and diagnostics fit to store.

Used by drift-scan and, next, by compliance-scan (Checkov over the code), pr-review and
drift-remediation. An agent records its steps in a `Steps` (argv and timings, never output, secrets
masked), raises `StepFailed` with what the team should read, and turns it into an ERROR scan or a
failed task as suits it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from dispatcher.agents.base import AgentContext
from dispatcher.agents.process import DEFAULT_MAX_OUTPUT, KILL_GRACE_SECONDS, ProcessResult, run_process
from dispatcher.redact import mask

GIT_PROTOCOLS = "https:ssh:git:file"  # GIT_ALLOW_PROTOCOL for clones: no ext::, no fd::
# git URL forms: scheme://..., or scp-like user@host:path
GIT_URL = re.compile(r"^(?:(?:https?|ssh|git|file)://|[\w.-]+@[\w.-]+:)")
_COPY_IGNORE = shutil.ignore_patterns(".git", ".terraform", ".terraform.tfstate.lock.info")

MAX_ERROR_CHARS = 16_000
# Commands are killed this long before the task's deadline, so that the kill (SIGTERM, grace, SIGKILL)
# completes and the agent reports before the dispatcher's own timeout cancels the run.
DEADLINE_RESERVE_SECONDS = KILL_GRACE_SECONDS + 1.0


class StepFailed(Exception):
    """Ends the agent's work; the message is what the team reads (the tool's diagnostics)."""


@dataclass
class Steps:
    """The steps of one run, for the summary and artifacts (argv and timings, never output)."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)

    def add(self, name: str, argv: list[str], result: ProcessResult) -> None:
        # stored with the scan: a git URL's token or an allow-listed secret must not be
        self.steps.append({"step": name, "argv": [mask(a, self.secrets) for a in argv],
                           "exit_code": result.returncode,
                           "timed_out": result.timed_out, "seconds": round(result.seconds, 3)})


async def checkout(
    source: str, branch: str, dest: Path, env: Mapping[str, str], ctx: AgentContext, steps: Steps,
) -> None:
    """A private working copy: `git clone --depth 1` of `branch` for a git URL, a copy of the directory
    (without .git, .terraform and state lock files) for a local path."""
    if GIT_URL.match(source):
        git = shutil.which("git")
        if git is None:
            raise StepFailed(f"git not found on PATH: cannot clone {source}")
        argv = [git, "clone", "--quiet", "--depth", "1", "--single-branch", "--no-tags",
                "--branch", branch, "--", source, str(dest)]
        await step(steps, ctx, "clone", argv, ctx.workdir, env)
        return
    local = Path(source).expanduser()
    if not local.is_dir():
        raise StepFailed(f"repository {source} is neither a git URL nor a local directory "
                         f"(relative paths are taken from the dispatcher's directory, {Path.cwd()})")
    try:
        # a thread: copying a large tree must not stall the dispatcher's event loop (heartbeats)
        await asyncio.to_thread(shutil.copytree, local, dest, symlinks=True, ignore=_COPY_IGNORE)
    except OSError as exc:
        raise StepFailed(f"cannot copy {local}: {exc}") from None


def inside(root: Path, relative: str, what: str) -> Path:
    """root/relative, refusing absolute paths, `..` and symlinks that lead out of root."""
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts:
        raise StepFailed(f"{what} {relative!r} must be a relative path inside the repository")
    target = (root / path).resolve()
    if not target.is_relative_to(root.resolve()):
        raise StepFailed(f"{what} {relative!r} leads out of the repository")
    if not target.exists():
        raise StepFailed(f"{what} {relative!r} does not exist in the repository")
    return target


async def step(
    steps: Steps, ctx: AgentContext, name: str, argv: list[str], cwd: Path, env: Mapping[str, str],
    *, ok: tuple[int, ...] = (0,), max_output: int | None = None,
) -> ProcessResult:
    """Run one command under the task's deadline; anything but an `ok` exit status ends the run."""
    timeout = ctx.remaining() - DEADLINE_RESERVE_SECONDS
    if timeout <= 0:
        raise StepFailed(f"the deadline passed before `{name}` could start")
    result = await run_process(argv, cwd=cwd, env=env, timeout=timeout,
                               max_output=max_output or DEFAULT_MAX_OUTPUT)
    steps.add(name, argv, result)
    if result.timed_out:
        raise StepFailed(f"`{_show(argv)}` was killed at the deadline after {result.seconds:.0f}s\n"
                         + diagnostics(result))
    if result.returncode not in ok:
        raise StepFailed(f"`{_show(argv)}` failed with exit status {result.returncode}\n"
                         + diagnostics(result))
    return result


def _show(argv: list[str]) -> str:
    return " ".join([Path(argv[0]).name, *argv[1:3]])


def diagnostics(result: ProcessResult) -> str:
    """A tool's diagnostics ("Error: ...") are on stderr: its beginning, then the end of stdout."""
    budget = MAX_ERROR_CHARS - 500  # room for the headline
    err = result.stderr.decode("utf-8", "replace").strip()
    out = result.stdout.decode("utf-8", "replace").strip()
    parts = []
    if result.stdout_truncated or result.stderr_truncated:
        parts.append("[the output exceeded the capture limit; the excess was dropped]")
    if err:
        head = err[: budget // 2 if out else budget]
        parts.append(head + ("\n[... stderr cut]" if len(head) < len(err) else ""))
        budget -= len(head)
    if out:
        tail = out[-min(budget, 4000 if err else budget):]
        parts.append(("--- end of stdout ---\n" if err else "")
                     + ("[... stdout cut]\n" if len(tail) < len(out) else "") + tail)
    return "\n".join(parts) or "(no output)"


def cap(text: str) -> str:
    """At most MAX_ERROR_CHARS, saying how much was cut."""
    if len(text) <= MAX_ERROR_CHARS:
        return text
    return text[: MAX_ERROR_CHARS - 40] + f"\n[... {len(text) - MAX_ERROR_CHARS + 40} more characters cut]"
