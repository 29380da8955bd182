"""Bearer tokens of external schedulers: made here, shown once, stored hashed.

A token reads `nst_<prefix>_<secret>`: the 12 hex characters of the prefix are public and find the
token's row; the sha256 of the whole token is what the row keeps, compared with hmac.compare_digest.
The token itself is never stored or logged.

Scopes say what a token may trigger: `scheduled-tasks` (any kind) or `scheduled-tasks:<kind>`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

TOKEN_PATTERN = re.compile(r"^nst_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
TRIGGER_SCOPE = "scheduled-tasks"
SCOPE_PATTERN = re.compile(rf"^{TRIGGER_SCOPE}(:[a-z0-9][a-z0-9-]*)?$")


@dataclass(frozen=True)
class NewToken:
    token: str  # shown once to whoever creates it
    prefix: str
    token_hash: str


def generate() -> NewToken:
    prefix = secrets.token_hex(6)
    token = f"nst_{prefix}_{secrets.token_urlsafe(32)}"
    return NewToken(token, prefix, hash_token(token))


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def prefix_of(token: str) -> str | None:
    """The public prefix of a well-formed token, else None."""
    match = TOKEN_PATTERN.match(token)
    return match.group(1) if match else None


@dataclass(frozen=True)
class StoredToken:
    """A row of nightshift.find_api_token()."""

    id: int
    name: str
    token_hash: str
    scopes: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None


def refusal(token: str, stored: StoredToken | None, kind: str, now: datetime | None = None) -> str | None:
    """Why `token` may not trigger `kind` (a metric label), or None when it may."""
    # hash and compare even without a row, so an unknown prefix takes as long as a wrong secret
    expected = stored.token_hash if stored else "0" * 64
    matches = hmac.compare_digest(hash_token(token), expected)
    if stored is None or not matches:
        return "unknown"
    if stored.revoked_at is not None:
        return "revoked"
    if stored.expires_at is not None and stored.expires_at <= (now or datetime.now(UTC)):
        return "expired"
    if TRIGGER_SCOPE not in stored.scopes and f"{TRIGGER_SCOPE}:{kind}" not in stored.scopes:
        return "scope"
    return None
