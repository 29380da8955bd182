"""Real git repositories made in a test: a bare remote, a working clone that commits and pushes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_NAME": "Test",
           "GIT_COMMITTER_EMAIL": "test@example.com", "GIT_CONFIG_GLOBAL": "/dev/null",
           "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                            env={**os.environ, **GIT_ENV}, check=False)
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout.strip()


class Remote:
    """A bare repository (the "forge's" remote) and a clone to make commits in."""

    def __init__(self, root: Path, files: dict[str, str], branch: str = "main") -> None:
        self.bare = root / "remote.git"
        self.work = root / "work"
        git(root, "init", "--quiet", "--bare", f"--initial-branch={branch}", str(self.bare))
        git(root, "init", "--quiet", f"--initial-branch={branch}", str(self.work))
        git(self.work, "remote", "add", "origin", str(self.bare))
        self.commit(files, "base")
        git(self.work, "push", "--quiet", "origin", branch)

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def commit(self, files: dict[str, str | None], message: str) -> str:
        for name, content in files.items():
            path = self.work / name
            if content is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        git(self.work, "add", "-A")
        git(self.work, "commit", "--quiet", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def branch(self, name: str, start: str = "main") -> None:
        git(self.work, "checkout", "--quiet", "-B", name, start)

    def push(self, branch: str, *, force: bool = False) -> str:
        git(self.work, "push", "--quiet", *(["--force"] if force else []), "origin", branch)
        return git(self.work, "rev-parse", branch)

    def delete_branch(self, name: str) -> None:
        git(self.work, "push", "--quiet", "origin", "--delete", name)
