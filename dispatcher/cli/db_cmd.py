"""`nightshift db start|stop|status|url|psql`: the embedded PostgreSQL with pg_cron."""

from __future__ import annotations

import argparse
import os
import shutil

from dispatcher.cli.options import port
from dispatcher.errors import EXIT_NOT_FOUND
from dispatcher.localpg import LocalCluster, LocalPostgresError, find_bindir


def register(subparsers: argparse._SubParsersAction) -> None:
    db = subparsers.add_parser(
        "db",
        help="run the embedded PostgreSQL (with pg_cron) that Nightshift manages itself",
        description="Create, start and stop a local PostgreSQL cluster with pg_cron preloaded. "
        "It listens on 127.0.0.1 only, with a generated password kept in DATA_DIR/password (0600). "
        "As root, the cluster runs as the unprivileged system user 'nightshift'.",
    )
    _where(db, default=None)
    # the same options after the action too (`db start --port 6000`); SUPPRESS keeps the value
    # given before the action when they are not repeated after it
    where = argparse.ArgumentParser(add_help=False)
    _where(where, default=argparse.SUPPRESS)
    actions = db.add_subparsers(title="actions", metavar="ACTION", required=True)
    actions.add_parser(
        "start", parents=[where], help="create the cluster on first use, start it, create the database"
    ).set_defaults(func=start)
    actions.add_parser("stop", parents=[where], help="stop the cluster (fast shutdown)").set_defaults(
        func=stop
    )
    actions.add_parser(
        "status", parents=[where], help="say whether it runs, where, and on which port"
    ).set_defaults(func=status)
    actions.add_parser(
        "url", parents=[where], help="print the database URL (contains the password)"
    ).set_defaults(func=url)
    psql = actions.add_parser(
        "psql", help="open psql on the Nightshift database",
        description="Run psql on the Nightshift database. Every argument after `psql` goes to psql "
        "unchanged (`nightshift db psql -c 'select 1'`); the password reaches it through its "
        "environment, never its command line. --data-dir and --port go before `psql`.")
    psql.add_argument("psql_args", nargs=argparse.REMAINDER, metavar="PSQL_ARG",
                      help="arguments for psql, e.g. -c 'SELECT 1' or -f file.sql")
    psql.set_defaults(func=run_psql, passthrough="psql_args")


def _where(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--data-dir", default=default,
        help="cluster directory (default: $NIGHTSHIFT_DATA_DIR, else the nearest .nightshift/postgres "
        "in this directory or a parent, else a new one in ./.nightshift/postgres)",
    )
    parser.add_argument(
        "--port", type=port, default=default,
        help="TCP port on 127.0.0.1 (default: $NIGHTSHIFT_PG_PORT or 54329)",
    )


def _cluster(args: argparse.Namespace) -> LocalCluster:
    return LocalCluster.from_env(data_dir=args.data_dir, port=args.port)


def start(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    started = cluster.start()
    print(f"{'started' if started else 'already running'}: PostgreSQL with pg_cron on "
          f"127.0.0.1:{cluster.live_port()}, data in {cluster.data}")
    return 0


def stop(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    print("stopped" if cluster.stop() else "not running")
    return 0


_ORIGIN = {
    "chosen": "set by --data-dir or $NIGHTSHIFT_DATA_DIR",
    "found": "found in this directory or a parent",
    "new": "no cluster in this directory or its parents",
}


def status(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    if not cluster.initialized():
        print(f"not created: {cluster.root} ({_ORIGIN[cluster.origin]}; run `nightshift db start` "
              "to create it there, or set NIGHTSHIFT_DATA_DIR)")
        return EXIT_NOT_FOUND
    running = cluster.running()
    port = cluster.live_port() if running else cluster.port
    print(f"{'running' if running else 'stopped'}: 127.0.0.1:{port} database {cluster.database}, "
          f"data in {cluster.data} ({_ORIGIN[cluster.origin]})")
    return 0 if running else EXIT_NOT_FOUND  # the LSB status convention: 3 = not running


def url(args: argparse.Namespace) -> int:
    print(_cluster(args).url())
    return 0


def run_psql(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    psql = shutil.which("psql") or str(find_bindir() / "psql")
    if not os.path.exists(psql):
        raise LocalPostgresError("psql not found: apt-get install postgresql-client-15")
    extra = args.psql_args[1:] if args.psql_args[:1] == ["--"] else args.psql_args
    env = {**os.environ, "PGPASSWORD": cluster.password()}
    os.execvpe(psql, [psql, "--dbname", cluster.url_without_password(), *extra], env)
