"""The `nightshift` command line: one module per command group, each with a register() function.

Every command ends with one line on stderr when something goes wrong, never a traceback (`-v` shows
it), and an exit status from the table in dispatcher/errors.py: 0 ok, 1 failure, 2 usage, 3 not
found / not running / database unreachable or not migrated, 130 interrupted, 141 output closed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback

from dispatcher import __version__
from dispatcher.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    NightshiftError,
)

# Each module defines register(subparsers) and sets a `func` default on its parsers.
COMMAND_MODULES = (
    "dispatcher.cli.db_cmd",
    "dispatcher.cli.migrate_cmd",
    "dispatcher.cli.demo_cmd",
    "dispatcher.cli.cron_cmd",
    "dispatcher.cli.schedule_cmd",
    "dispatcher.cli.inventory_cmd",
    "dispatcher.cli.findings_cmd",
    "dispatcher.cli.drift_cmd",
    "dispatcher.cli.dispatcher_cmd",
    "dispatcher.cli.tasks_cmd",
    "dispatcher.cli.cost_cmd",
    "dispatcher.cli.scanners_cmd",
    "dispatcher.cli.frameworks_cmd",
    "dispatcher.cli.channels_cmd",
    "dispatcher.cli.notify_cmd",
    "dispatcher.cli.serve_cmd",
    "dispatcher.cli.tokens_cmd",
    "dispatcher.cli.report_cmd",
    "dispatcher.cli.prs_cmd",
    "dispatcher.cli.remediations_cmd",
    "dispatcher.cli.completion_cmd",
)

EXIT_STATUS_HELP = (
    "exit status: 0 ok; 1 failure (the command ran and something failed); 2 usage (bad options, "
    "arguments or input); 3 not found or not running (no such row, database unreachable or not "
    "migrated); 130 interrupted; 141 the reader of the output went away"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nightshift",
        description=(
            "Nightshift runs infrastructure checks (drift, compliance, cost, PR reviews) on schedules "
            "kept in PostgreSQL. Postgres is the scheduler, the queue and the record; this command "
            "manages the database and runs the dispatcher."
        ),
        epilog="Database: --database-url, else $NIGHTSHIFT_DATABASE_URL, else the embedded cluster "
        "(`nightshift db start`). Run `nightshift COMMAND --help` for each command. " + EXIT_STATUS_HELP,
    )
    parser.add_argument("--version", action="version", version=f"nightshift {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    for leaf in _leaves(parser):
        # `nightshift tasks list -v` as well as `nightshift -v tasks list`; SUPPRESS keeps the value
        # given before the command when it is not repeated after it
        leaf.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                          help="log debug detail (and tracebacks) to stderr")
    return parser


def _leaves(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers that run a command (no sub-commands of their own)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [parser]
    seen: dict[int, argparse.ArgumentParser] = {}
    for action in subs:
        for child in action.choices.values():
            for leaf in _leaves(child):
                seen[id(leaf)] = leaf  # aliases map several names to one parser
    return list(seen.values())


def add_database_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="PostgreSQL URL (postgresql://, postgresql+psycopg:// or postgresql+pg8000://); "
        "default: $NIGHTSHIFT_DATABASE_URL, else the embedded cluster",
    )


# Commands whose arguments after the command word go to another program unchanged (`db psql -c ...`):
# argparse would take `-c` for an option of ours.
PASSTHROUGH = {("db", "psql"): "psql_args"}
_DB_OPTIONS_WITH_VALUE = ("--data-dir", "--port")


def _split_passthrough(argv: list[str]) -> tuple[list[str], list[str] | None]:
    for (group, command), _dest in PASSTHROUGH.items():
        if group not in argv:
            continue
        start = argv.index(group)
        for i in range(start + 1, len(argv)):
            if argv[i] == command and argv[i - 1] not in _DB_OPTIONS_WITH_VALUE:
                return argv[: i + 1], argv[i + 1:]
    return argv, None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    _enable_completion(parser)
    head, passthrough = _split_passthrough(argv)
    args = parser.parse_args(head)
    if passthrough is not None and (dest := getattr(args, "passthrough", None)):
        setattr(args, dest, passthrough)
    verbose = bool(getattr(args, "verbose", False))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines say nothing to users
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that left shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _reader_left()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        message, code = describe(exc)
        if verbose:
            traceback.print_exc()
        _say(f"nightshift: error: {message}")
        return code


def describe(exc: BaseException) -> tuple[str, int]:
    """One line and an exit status for any error a command can end with."""
    import psycopg

    database_error = next((e for e in _chain(exc) if isinstance(e, psycopg.Error)), None)
    if isinstance(database_error, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedFunction
                  | psycopg.errors.InvalidSchemaName):
        from dispatcher.db import first_line

        return (f"the database is not migrated ({first_line(database_error)}): run `nightshift migrate`",
                EXIT_NOT_FOUND)
    if isinstance(exc, NightshiftError):
        return _one_line(str(exc)), exc.exit_code
    if isinstance(database_error, psycopg.OperationalError):
        from dispatcher.db import first_line

        return f"lost the connection to the database: {first_line(database_error)}", EXIT_NOT_FOUND
    if isinstance(database_error, psycopg.errors.DataError | psycopg.errors.RaiseException
                  | psycopg.errors.IntegrityError):
        return _database_message(database_error), EXIT_USAGE
    if database_error is not None:
        return _database_message(database_error), EXIT_FAILURE
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}", EXIT_FAILURE
    return f"{type(exc).__name__}: {exc} (run with -v for the traceback)", EXIT_FAILURE


def _database_message(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    message = (diag.message_primary if diag else None) or str(exc)
    if diag is not None and diag.message_hint:
        message += f" (hint: {diag.message_hint})"
    return _one_line(message)


def _one_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return " ".join(lines) if lines else "failed"


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr)
    except (BrokenPipeError, ValueError):
        pass


def _reader_left() -> int:
    """`nightshift ... | head`: stop quietly; point stdout at /dev/null so the interpreter's final
    flush does not raise a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_BROKEN_PIPE


def _enable_completion(parser: argparse.ArgumentParser) -> None:
    """Answer the shell's completion request (argcomplete); a no-op on an ordinary run."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    argcomplete.autocomplete(parser)


def run() -> None:
    """The console script."""
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["EXIT_FAILURE", "EXIT_USAGE", "add_database_url", "build_parser", "main"]
