"""The local forge, for teams without GitHub and for the demo: branches live on the repository's git
remote (any URL git can push to, a bare directory included) and a pull request is a row of
nightshift.pull_requests, which `nightshift prs list` shows.

Agents never touch the database, so this forge reads the rows it is given (the task payload's
`forge.pull_requests`, as nightshift.forge_of_repository builds it) and *records* what it does:
`changes()` is a list of operations that the agent returns with its result (AgentResult.forge) and
that nightshift.apply_forge_changes stores in the task's completing transaction — a pull request
opened (numbered there, one per open branch), a comment upserted by its marker, a commit status set.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from dispatcher.agents.process import allowed_env, run_process
from dispatcher.forge.base import (
    ChangedFile,
    Comment,
    Forge,
    ForgeError,
    ForgeNotFound,
    PullRequest,
    check_status_state,
    with_marker,
)
from dispatcher.redact import mask

GIT_TIMEOUT = 120.0
_STATUS_LETTERS = {"A": "added", "M": "modified", "D": "removed", "R": "renamed", "C": "copied",
                   "T": "changed"}


class LocalForge(Forge):
    kind = "local"

    def __init__(self, repository_id: int, remote: str, *,
                 pull_requests: list[dict[str, Any]] | None = None, git_dir: Path | None = None) -> None:
        self.repository_id = int(repository_id)
        self.remote = remote
        self.rows = [dict(row) for row in pull_requests or []]
        self.git_dir = git_dir  # a clone holding the refs to diff (else the remote, when it is a directory)
        self._changes: list[dict[str, Any]] = []

    def changes(self) -> list[dict[str, Any]]:
        return list(self._changes)

    async def find_pull_request(self, head: str, base: str | None = None) -> PullRequest | None:
        for row in self.rows:
            if row.get("state", "open") == "open" and row.get("head_ref") == head \
                    and (base is None or row.get("base_ref") == base):
                return _pull_request(row)
        return None

    async def open_pull_request(self, head: str, base: str, title: str, body: str) -> PullRequest:
        found = await self.find_pull_request(head, base)
        if found is not None:
            return found
        head_sha = await self._remote_sha(head)
        if head_sha is None:
            raise ForgeNotFound(f"branch {head!r} is not on the remote: push it before opening "
                                "a pull request")
        row = {"repository_id": self.repository_id, "number": None, "head_ref": head, "base_ref": base,
               "head_sha": head_sha, "title": title, "body": body, "state": "open"}
        self.rows.append(row)
        self._changes.append({"op": "open", **row})
        return PullRequest(number=None, head_ref=head, base_ref=base, head_sha=head_sha, title=title,
                           created=True)

    async def list_changed_files(self, number: int) -> list[ChangedFile]:
        row = self._row(number)
        base, head = row.get("base_sha") or row["base_ref"], row.get("head_sha") or row["head_ref"]
        out = await self._git("diff", "--name-status", "-z", "--find-renames", f"{base}...{head}", "--")
        return parse_name_status(out)

    async def upsert_comment(self, number: int, marker: str, body: str) -> Comment:
        row = self._row(number)
        comments = row.setdefault("comments", {})
        created = marker not in comments
        comments[marker] = with_marker(marker, body)
        self._changes.append({"op": "comment", "repository_id": self.repository_id, "number": int(number),
                              "marker": marker, "body": comments[marker]})
        return Comment(id=None, created=created)

    async def set_status(self, sha: str, state: str, description: str, context: str,
                         target_url: str | None = None) -> None:
        check_status_state(state)
        self._changes.append({"op": "status", "repository_id": self.repository_id, "sha": sha,
                              "state": state, "description": description[:140], "context": context,
                              "target_url": target_url})

    def _row(self, number: int) -> dict[str, Any]:
        for row in self.rows:
            if row.get("number") == number:
                return row
        raise ForgeNotFound(f"local pull request #{number} of repository {self.repository_id} "
                            "does not exist")

    async def _remote_sha(self, branch: str) -> str | None:
        out = await self._git("ls-remote", "--heads", "--", self.remote, f"refs/heads/{branch}", local=False)
        for line in out.decode().splitlines():
            sha, _, ref = line.partition("\t")
            if ref == f"refs/heads/{branch}":
                return sha
        return None

    async def _git(self, *args: str, local: bool = True) -> bytes:
        git = shutil.which("git")
        if git is None:
            raise ForgeError("git not found on PATH")
        if local:
            where = self.git_dir or Path(self.remote)
            if not where.is_dir():
                raise ForgeError(f"the local forge needs a clone to diff in: {mask(self.remote)} "
                                 "is not a directory")
            argv = [git, "-C", str(where), *args]
        else:
            argv = [git, *args]
        env = allowed_env(extra={"GIT_TERMINAL_PROMPT": "0", "GIT_ALLOW_PROTOCOL": "https:ssh:git:file"})
        result = await run_process(argv, cwd=Path.cwd(), env=env, timeout=GIT_TIMEOUT)
        if result.returncode != 0:
            raise ForgeError(mask(f"`git {args[0]}` failed: {result.text('stderr').strip()[-500:]}"))
        return result.stdout


def parse_name_status(out: bytes) -> list[ChangedFile]:
    """`git diff --name-status -z`: STATUS NUL path NUL (renames and copies: two paths)."""
    fields = out.decode("utf-8", "surrogateescape").split("\0")
    files: list[ChangedFile] = []
    i = 0
    while i < len(fields) and fields[i]:
        letter = fields[i][0]
        if letter in "RC":
            files.append(ChangedFile(path=fields[i + 2], status=_STATUS_LETTERS[letter],
                                     previous_path=fields[i + 1]))
            i += 3
        else:
            files.append(ChangedFile(path=fields[i + 1], status=_STATUS_LETTERS.get(letter, "changed")))
            i += 2
    return files


def _pull_request(row: dict[str, Any]) -> PullRequest:
    return PullRequest(number=row.get("number"), head_ref=row["head_ref"], base_ref=row["base_ref"],
                       head_sha=row.get("head_sha"), state=row.get("state", "open"),
                       title=row.get("title") or "", url=None, created=False)
