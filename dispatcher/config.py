"""Where settings come from: the database URL (flag, environment, embedded cluster) and secret
references.

Secrets (webhook URLs, tokens, HMAC keys, SMTP passwords) are never stored in readable columns or
task payloads: what is stored is a reference, `env:NAME` or `file:/path`, resolved here when the
secret is used. A reference is safe to log; the value it resolves to never is.
"""

from __future__ import annotations

import os
from pathlib import Path

from dispatcher.errors import NightshiftError

URL_ENV = "NIGHTSHIFT_DATABASE_URL"

# URLs this process resolved to the embedded cluster: only for those does an error message suggest
# `nightshift db start` (for a URL the user gave, that hint would send them the wrong way)
_embedded_urls: set[str] = set()


def resolve_url(explicit: str | None = None) -> str:
    """The database to use: --database-url, else $NIGHTSHIFT_DATABASE_URL, else the embedded cluster."""
    if explicit:
        return explicit
    if env := os.environ.get(URL_ENV):
        return env
    from dispatcher.localpg import LocalCluster  # only when the embedded cluster is meant

    return LocalCluster.from_env().url()


def mark_embedded(url: str) -> str:
    """Remember that `url` is the embedded cluster's (LocalCluster.url calls this); returns it."""
    _embedded_urls.add(url)
    return url


def is_embedded_url(url: str) -> bool:
    """Whether `url` came from the embedded cluster rather than from the user."""
    return url in _embedded_urls


def cache_dir() -> Path:
    """Where a dispatcher keeps what it may fetch again (provider schemas): $NIGHTSHIFT_CACHE_DIR, else
    $XDG_CACHE_HOME/nightshift, else ~/.cache/nightshift."""
    if explicit := os.environ.get("NIGHTSHIFT_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nightshift"


class SecretError(NightshiftError):
    """A secret reference that is malformed or cannot be resolved (the message never holds the value)."""


def resolve_secret(reference: str) -> str:
    """The value a secret reference points to: `env:NAME` or `file:/path` (trailing newline dropped)."""
    scheme, sep, name = reference.partition(":")
    if not sep or not name:
        raise SecretError(f"not a secret reference: expected env:NAME or file:/path, got {scheme!r}…"
                          if sep else "not a secret reference: expected env:NAME or file:/path")
    if scheme == "env":
        value = os.environ.get(name)
        if value is None:
            raise SecretError(f"secret {reference}: the environment variable {name} is not set")
        return value
    if scheme == "file":
        try:
            return Path(name).read_text().removesuffix("\n")
        except OSError as exc:
            raise SecretError(f"secret {reference}: cannot read the file: {exc.strerror}") from None
    raise SecretError(f"secret reference with unknown scheme {scheme!r}: use env:NAME or file:/path")
