"""The project's own exceptions. The CLI prints these as one clear line instead of a traceback."""

from __future__ import annotations


class NightshiftError(Exception):
    """Base class: an error the user can act on; its message says how."""


class DatabaseUnavailable(NightshiftError):
    """The database could not be reached."""


class StoreError(NightshiftError):
    """The database refused a statement (a constraint, a missing function, bad input)."""


class PgCronMissing(NightshiftError):
    """pg_cron is not installed, not preloaded, or lives in another database."""
