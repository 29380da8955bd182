"""`nightshift dispatcher run`: the long-running daemon that turns queued tasks into agent runs."""

from __future__ import annotations

import argparse
import logging
import os

from dispatcher.cli import add_database_url
from dispatcher.config import URL_ENV, resolve_url


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dispatcher",
        help="run the dispatcher daemon",
        description="The dispatcher claims queued tasks and runs their agents.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    run_parser = commands.add_parser(
        "run",
        help="claim and run tasks until SIGTERM/SIGINT",
        description="Claim queued tasks (woken by NOTIFY, else every --poll-interval) and run their "
        "agents concurrently; heartbeats keep the leases; results are stored one transaction per "
        "task. Survives database restarts. SIGTERM/SIGINT: stop claiming, finish running tasks "
        "within --shutdown-timeout, then kill and release them; a second signal exits at once.",
    )
    add_database_url(run_parser)
    run_parser.add_argument("--concurrency", "-c", type=int, default=16, metavar="N",
                            help="agent runs at once (default 16)")
    run_parser.add_argument("--kinds", metavar="KIND[,KIND...]",
                            help="only claim these task kinds (default: every kind)")
    run_parser.add_argument("--poll-interval", type=float, default=2.0, metavar="SECONDS",
                            help="claim (and requeue expired leases) this often without a NOTIFY "
                            "(default 2)")
    run_parser.add_argument("--lease", type=float, default=30.0, metavar="SECONDS",
                            help="lease length; heartbeats renew it every third of it (default 30)")
    run_parser.add_argument("--shutdown-timeout", type=float, default=30.0, metavar="SECONDS",
                            help="on SIGTERM, how long running tasks may finish (default 30)")
    run_parser.add_argument("--worker", metavar="NAME",
                            help="worker name recorded in locked_by (default host:pid)")
    run_parser.add_argument("--metrics-port", type=int, metavar="PORT",
                            help="serve Prometheus /metrics and /healthz on this port")
    run_parser.add_argument("--metrics-host", default="127.0.0.1", metavar="ADDR",
                            help="address of the metrics endpoint (default 127.0.0.1)")
    run_parser.add_argument("--allow-command", action="append", default=[], metavar="GLOB",
                            help="executables the `command` agent may run (absolute path glob; "
                            "repeatable; also $NIGHTSHIFT_COMMAND_ALLOW)")
    run_parser.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    run_parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dispatcher import eventloop, logs
    from dispatcher.agents.command import ALLOW_ENV
    from dispatcher.daemon import Dispatcher, DispatcherConfig, default_worker_name

    if args.concurrency < 1:
        raise SystemExit("nightshift: error: --concurrency must be at least 1")
    logs.configure(args.log_json, logging.getLogger().level)
    if args.allow_command:
        existing = [p for p in os.environ.get(ALLOW_ENV, "").split(os.pathsep) if p]
        os.environ[ALLOW_ENV] = os.pathsep.join([*existing, *args.allow_command])
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip()) if args.kinds else None
    config = DispatcherConfig(
        url=resolve_url(args.database_url), worker=args.worker or default_worker_name(),
        concurrency=args.concurrency, kinds=kinds, poll_interval=args.poll_interval, lease=args.lease,
        shutdown_timeout=args.shutdown_timeout, metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
    )
    # agents that read the database themselves (cost-analysis) use the dispatcher's
    os.environ[URL_ENV] = config.url
    eventloop.run(Dispatcher(config).run())
    return 0
