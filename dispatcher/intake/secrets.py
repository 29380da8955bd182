"""Webhook secrets from their references (env:NAME, file:/path), resolved when used.

Resolved values are kept for a few seconds: a delivery burst does not read a file per request, and a
rotated secret (a remounted Kubernetes Secret) is picked up within the TTL. Values are never logged.
"""

from __future__ import annotations

import time

from dispatcher.config import SecretError, resolve_secret


class SecretCache:
    def __init__(self, ttl: float = 10.0) -> None:
        self.ttl = ttl
        self._values: dict[str, tuple[float, bytes]] = {}

    def get(self, reference: str) -> bytes | None:
        """The secret's bytes, or None when the reference cannot be resolved (the caller refuses)."""
        now = time.monotonic()
        cached = self._values.get(reference)
        if cached and now - cached[0] < self.ttl:
            return cached[1]
        try:
            value = resolve_secret(reference).encode()
        except SecretError:
            self._values.pop(reference, None)
            return None
        if not value:
            return None  # an empty secret would verify anybody's signature made with an empty key
        self._values[reference] = (now, value)
        return value
