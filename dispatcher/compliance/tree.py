"""The content hash of an IaC tree: what decides that a pipeline's code did not change since its last scan.

sha256 over every regular file below the root, in sorted path order, of (relative path, size, sha256 of
the content), plus symlinks by their target. `.git`, `.terraform` and `.terragrunt-cache` are left out:
they are checkout and tool state, not code. File modes and times are left out too, so a fresh clone of
the same commit hashes the same.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

IGNORED_DIRS = frozenset({".git", ".terraform", ".terragrunt-cache"})


def tree_hash(root: Path) -> tuple[str, int]:
    """(hex digest, number of files) of the tree below `root`."""
    digest = hashlib.sha256()
    files = 0
    for path in sorted(_walk(root)):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            digest.update(f"L\0{relative}\0{os.readlink(path)}\0".encode())
            continue
        content = hashlib.sha256()
        size = 0
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                content.update(chunk)
                size += len(chunk)
        digest.update(f"F\0{relative}\0{size}\0{content.hexdigest()}\0".encode())
        files += 1
    return digest.hexdigest(), files


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for directory, dirs, names in os.walk(root):
        dirs[:] = [name for name in dirs if name not in IGNORED_DIRS]
        here = Path(directory)
        found.extend(here / name for name in names)
        # symlinked directories are not followed (os.walk default) but are part of the tree
        found.extend(here / name for name in dirs if (here / name).is_symlink())
    return found
