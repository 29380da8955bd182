"""Forges behind one interface (dispatcher/forge/base.py): GitHub's REST API and a local stand-in.

`forge_from_payload(payload)` builds the one a task needs from its payload's `forge` object, as
nightshift.forge_of_repository writes it into pr-review payloads:
    {"kind": "github", "full_name": "owner/name", "api_url": "https://ghe.example/api/v3" | null,
     "token_ref": "env:GITHUB_TOKEN" | "file:/path"}
    {"kind": "local", "repository_id": 5, "remote": "/srv/git/infra.git", "pull_requests": [...]}
A payload carries a token's *reference*, never its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dispatcher.config import SecretError, resolve_secret
from dispatcher.forge.base import (
    ChangedFile,
    Comment,
    Forge,
    ForgeError,
    ForgeForbidden,
    ForgeNotFound,
    ForgeRateLimited,
    PullRequest,
    hidden_marker,
)

__all__ = ["ChangedFile", "Comment", "Forge", "ForgeError", "ForgeForbidden", "ForgeNotFound",
           "ForgeRateLimited", "PullRequest", "forge_from_payload", "hidden_marker"]

FORGE_KINDS = ("github", "local")


def forge_from_payload(spec: Mapping[str, Any] | None, *, git_dir: Path | None = None) -> Forge:
    """The forge a payload's `forge` object describes; ForgeError saying what is missing otherwise."""
    if not isinstance(spec, Mapping):
        raise ForgeError("the task payload has no forge (kind, repository, token reference)")
    kind = spec.get("kind")
    if kind == "github":
        from dispatcher.forge.github import GitHubForge

        full_name, token_ref = spec.get("full_name"), spec.get("token_ref")
        if not full_name:
            raise ForgeError("the GitHub forge needs the repository's full_name (owner/name)")
        if not token_ref:
            raise ForgeError("the GitHub forge needs a token reference (repositories.forge_token_ref, "
                             "env:NAME or file:/path)")
        try:
            token = resolve_secret(str(token_ref))
        except SecretError as exc:
            raise ForgeError(f"GitHub token: {exc}") from None
        return GitHubForge(str(full_name), token, api_url=spec.get("api_url"))
    if kind == "local":
        from dispatcher.forge.local import LocalForge

        if spec.get("repository_id") is None or not spec.get("remote"):
            raise ForgeError("the local forge needs the repository id and its git remote")
        return LocalForge(int(spec["repository_id"]), str(spec["remote"]),
                          pull_requests=list(spec.get("pull_requests") or []), git_dir=git_dir)
    raise ForgeError(f"unknown forge kind {kind!r}; known: {', '.join(FORGE_KINDS)}")
