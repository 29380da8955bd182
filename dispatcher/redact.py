"""The one place that hides secrets in text before it is logged, stored or shown.

- mask(): known secret values (an agent's allow-listed environment, a resolved secret reference) and
  the credentials of any URL in free text (a git remote with a token, a database URL in an error);
- redact_url(): a database URL without its password, for messages about connections.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

# scheme://user:password@host — credentials in a URL (a git remote with a token, a database URL)
_URL_CREDENTIALS = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every known secret value (longest first) and any URL's credentials with ***."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return _URL_CREDENTIALS.sub(r"\1***@", text)


def redact_url(url: str) -> str:
    """The URL without its password (SQLAlchemy's rendering, which hides it), for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable url>"
