"""The `nightshift` command line: one module per command group, each with a register() function."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from dispatcher import __version__
from dispatcher.errors import NightshiftError

# Each module defines register(subparsers) and sets a `func` default on its parsers.
COMMAND_MODULES = (
    "dispatcher.cli.db_cmd",
    "dispatcher.cli.migrate_cmd",
    "dispatcher.cli.demo_cmd",
    "dispatcher.cli.cron_cmd",
    "dispatcher.cli.schedule_cmd",
    "dispatcher.cli.drift_cmd",
    "dispatcher.cli.dispatcher_cmd",
    "dispatcher.cli.tasks_cmd",
    "dispatcher.cli.cost_cmd",
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
        "(`nightshift db start`). Run `nightshift COMMAND --help` for each command.",
    )
    parser.add_argument("--version", action="version", version=f"nightshift {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def add_database_url(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="PostgreSQL URL (postgresql://, postgresql+psycopg:// or postgresql+pg8000://); "
        "default: $NIGHTSHIFT_DATABASE_URL, else the embedded cluster",
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines say nothing to users
    try:
        return int(args.func(args) or 0)
    except NightshiftError as exc:
        print(f"nightshift: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
