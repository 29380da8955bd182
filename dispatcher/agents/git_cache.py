"""A cache of bare git repositories for agents that review many commits of one repository.

The first review of a repository makes a bare repository under `<cache dir>/git/` (clone once);
later reviews fetch into it: the pull request's head and its base branch, shallow first, deepened
until their merge base is there. Each review checks its commits out into private worktrees of its
own working directory, removed when the review ends.

Secrets: a token never goes into a URL. For an https remote it travels as an `http.extraHeader`
given to git through GIT_CONFIG_* environment variables (not argv, not the repository's config file),
and it is masked out of every stored step and message all the same.
One review at a time fetches into a cached repository (an flock on its lock file): git's ref locks
would make concurrent fetches fail.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import os
import shutil
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from dispatcher.agents.base import AgentContext
from dispatcher.agents.process import ProcessResult, allowed_env
from dispatcher.agents.workspace import GIT_PROTOCOLS, StepFailed, Steps, diagnostics, step
from dispatcher.config import cache_dir
from dispatcher.redact import mask

SHALLOW_DEPTH = 50
DEEPEN_ROUNDS = 3  # then --unshallow


def git_env(home: Path, token: str | None = None) -> dict[str, str]:
    extra = {"GIT_TERMINAL_PROMPT": "0", "GIT_ALLOW_PROTOCOL": GIT_PROTOCOLS, "GIT_CONFIG_NOSYSTEM": "1",
             "GIT_CONFIG_GLOBAL": os.devnull, "GIT_LFS_SKIP_SMUDGE": "1"}
    if token:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        extra.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                      "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"})
    return allowed_env(home=home, extra=extra)


class GitCache:
    """One cached bare repository of `url`."""

    def __init__(self, url: str, ctx: AgentContext, steps: Steps, env: Mapping[str, str],
                 root: Path | None = None) -> None:
        self.url = url
        self.ctx, self.steps, self.env = ctx, steps, env
        key = hashlib.sha256(url.encode()).hexdigest()[:32]
        self.path = (root or cache_dir() / "git") / f"{key}.git"
        git = shutil.which("git")
        if git is None:
            raise StepFailed("git not found on PATH")
        self.git = git

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(".lock"), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    async def run(self, name: str, *args: str, ok: tuple[int, ...] = (0,)) -> ProcessResult:
        argv = [self.git, "-C", str(self.path), *args]
        return await step(self.steps, self.ctx, name, argv, self.ctx.workdir, self.env, ok=ok)

    async def ensure(self) -> None:
        """The bare repository, made on first use (its origin is the URL, which holds no token)."""
        if (self.path / "HEAD").is_file():
            await self.run("git-remote", "remote", "set-url", "origin", self.url)
            return
        tmp = self.path.with_name(self.path.name + ".new")
        shutil.rmtree(tmp, ignore_errors=True)
        await step(self.steps, self.ctx, "git-init", [self.git, "init", "--quiet", "--bare", str(tmp)],
                   self.ctx.workdir, self.env)
        await step(self.steps, self.ctx, "git-remote", [self.git, "-C", str(tmp), "remote", "add", "origin",
                                                        self.url], self.ctx.workdir, self.env)
        tmp.rename(self.path)

    async def fetch(self, refspecs: list[str], *, depth: int | None = SHALLOW_DEPTH,
                    deepen: int | None = None, unshallow: bool = False) -> ProcessResult:
        """`git fetch` of these refspecs; the result (exit status included) for the caller to judge."""
        args = ["fetch", "--quiet", "--no-tags", "--prune", "--no-recurse-submodules"]
        if unshallow and (self.path / "shallow").exists():
            args.append("--unshallow")
        elif deepen:
            args.append(f"--deepen={deepen}")
        elif depth:
            args.append(f"--depth={depth}")
        return await self.run("git-fetch", *args, "origin", *refspecs, ok=(0, 1, 128))

    async def has_commit(self, sha: str) -> bool:
        result = await self.run("git-cat-file", "cat-file", "-e", f"{sha}^{{commit}}", ok=(0, 1, 128))
        return result.returncode == 0

    async def rev(self, ref: str) -> str | None:
        result = await self.run("git-rev-parse", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}",
                                ok=(0, 1, 128))
        return result.text().strip() or None if result.returncode == 0 else None

    async def rev_tree(self, commit: str, path: str) -> str | None:
        """The id of the tree at `path` in `commit` (what its content is, in one hash), or None."""
        spec = f"{commit}^{{tree}}" if path in ("", ".") else f"{commit}:{path}"
        result = await self.run("git-rev-parse", "rev-parse", "--verify", "--quiet", spec, ok=(0, 1, 128))
        return result.text().strip() or None if result.returncode == 0 else None

    async def merge_base(self, base: str, head: str, refspecs: list[str]) -> str | None:
        """The merge base, deepening the shallow history until it appears (then all of it)."""
        for round_ in range(DEEPEN_ROUNDS + 2):
            result = await self.run("git-merge-base", "merge-base", base, head, ok=(0, 1))
            if result.returncode == 0:
                return result.text().strip()
            if round_ == DEEPEN_ROUNDS + 1:
                return None
            last = round_ == DEEPEN_ROUNDS
            deepen = None if last else SHALLOW_DEPTH * 4 ** round_
            fetched = await self.fetch(refspecs, depth=None, deepen=deepen, unshallow=last)
            if fetched.returncode != 0:
                return None
        return None

    async def changed_files(self, base: str, head: str) -> bytes:
        result = await self.run("git-diff", "diff", "--name-status", "-z", "--find-renames", "--no-color",
                                base, head, "--")
        return result.stdout

    async def files_at(self, sha: str) -> list[str]:
        result = await self.run("git-ls-tree", "ls-tree", "-r", "-z", "--name-only", sha)
        return [name for name in result.stdout.decode("utf-8", "surrogateescape").split("\0") if name]

    async def worktree(self, sha: str, dest: Path) -> None:
        await self.run("git-worktree", "worktree", "add", "--quiet", "--detach", "--force", str(dest), sha)

    async def remove_worktree(self, dest: Path) -> None:
        with contextlib.suppress(StepFailed):
            await self.run("git-worktree-remove", "worktree", "remove", "--force", str(dest), ok=(0, 1, 128))
        with contextlib.suppress(StepFailed):
            await self.run("git-worktree-prune", "worktree", "prune", ok=(0, 1, 128))


def fetch_error(result: ProcessResult, url: str, secrets: list[str]) -> str:
    """Why a fetch failed, in one line fit to store: git's own words, the URL without credentials."""
    text = mask(diagnostics(result), secrets)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("[")]
    reason = next((line.removeprefix("fatal: ") for line in lines if line.startswith("fatal:")),
                  lines[-1] if lines else "no output")
    return f"cannot fetch {mask(url, secrets)}: {reason}"[:1000]
