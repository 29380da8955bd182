"""The project's own exceptions. The CLI prints these as one clear line instead of a traceback.

Each class carries the exit status the command line ends with (the table in the README, "Exit
status"): 1 a failure, 2 a usage error (bad options, arguments or input), 3 something that is not
there or not running (no such row, the database unreachable or never migrated).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3  # also: not running (the LSB status convention), database unreachable
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of our output left (`| head`)


class NightshiftError(Exception):
    """Base class: an error the user can act on; its message says how."""

    exit_code = EXIT_FAILURE


class UsageError(NightshiftError):
    """A bad option value, argument or input file: the command did not start its work."""

    exit_code = EXIT_USAGE


class NotFound(NightshiftError):
    """What was named does not exist (a task, an organization, a finding...)."""

    exit_code = EXIT_NOT_FOUND


class DatabaseUnavailable(NightshiftError):
    """The database could not be reached, or the connection was lost."""

    exit_code = EXIT_NOT_FOUND


class NotMigrated(NightshiftError):
    """The database has no (or an older) nightshift schema."""

    exit_code = EXIT_NOT_FOUND


class StoreError(NightshiftError):
    """The database refused a statement (a constraint, a missing function, bad input)."""


class InvalidInput(StoreError):
    """The database refused the input itself: a data exception, a check or unique constraint, or a
    function's own RAISE (unknown kind, bad interval...). A usage error to the command line."""

    exit_code = EXIT_USAGE


class PgCronMissing(NightshiftError):
    """pg_cron is not installed, not preloaded, or lives in another database."""
