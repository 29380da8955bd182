"""`nightshift serve`: the HTTP intake (GitHub webhooks, the external schedulers' trigger, health)."""

from __future__ import annotations

import argparse
import logging
import os

from dispatcher.cli import add_database_url
from dispatcher.config import SecretError, resolve_secret, resolve_url
from dispatcher.errors import NightshiftError

SECRET_ENV = "NIGHTSHIFT_WEBHOOK_SECRET_REF"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the HTTP intake: GitHub webhooks and the trigger endpoint for external schedulers",
        description="Serve POST /webhooks/github (signed GitHub deliveries: pull requests become "
        "pr-review tasks), POST /api/v1/internal/scheduled-tasks/{kind} (bearer token from `nightshift "
        "tokens create`: runs enqueue_due(kind), for Kubernetes CronJobs, EventBridge, Azure timers), "
        "GET /healthz, /readyz and /metrics. SIGTERM/SIGINT: stop accepting, finish the requests in "
        "progress within --shutdown-timeout, close the database pool.",
    )
    add_database_url(parser)
    parser.add_argument("--host", default="127.0.0.1", metavar="ADDR",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=8080,
                        help="port to listen on (default 8080; 0: any free port)")
    parser.add_argument("--webhook-secret", metavar="REF", default=os.environ.get(SECRET_ENV),
                        help="reference to the global GitHub webhook secret, env:NAME or file:/path "
                        f"(default ${SECRET_ENV}); a repository's webhook_secret_ref overrides it")
    parser.add_argument("--max-body-bytes", type=int, default=25 * 1024 * 1024, metavar="N",
                        help="larger bodies are refused with 413 (default 25 MiB, GitHub's cap)")
    parser.add_argument("--request-timeout", type=float, default=9.0, metavar="SECONDS",
                        help="answer 503 past this (default 9: GitHub gives up after 10)")
    parser.add_argument("--shutdown-timeout", type=int, default=15, metavar="SECONDS",
                        help="on SIGTERM, how long requests in progress may finish (default 15)")
    parser.add_argument("--pool-size", type=int, default=10, metavar="N",
                        help="database connections at most (default 10)")
    parser.add_argument("--forwarded-allow-ips", metavar="IPS",
                        help="comma-separated proxy addresses whose X-Forwarded-For/-Proto are trusted "
                        "(default: none, the headers are ignored)")
    parser.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dispatcher import logs
    from dispatcher.intake.app import IntakeConfig
    from dispatcher.intake.server import ServerOptions, serve

    logs.configure(args.log_json, logging.getLogger().level)
    if args.webhook_secret:
        try:  # fail at start, not at the first delivery; the value is not kept (resolved when used)
            empty = not resolve_secret(args.webhook_secret)
        except SecretError as exc:
            raise NightshiftError(f"--webhook-secret: {exc}") from None
        if empty:
            logging.getLogger("nightshift.intake").warning(
                "the global webhook secret %s is empty: deliveries are refused unless their repository "
                "has its own webhook_secret_ref", args.webhook_secret)
    for name in ("max_body_bytes", "pool_size"):
        if getattr(args, name) < 1:
            raise NightshiftError(f"--{name.replace('_', '-')} must be at least 1")
    if args.request_timeout <= 0:
        raise NightshiftError("--request-timeout must be positive")
    config = IntakeConfig(
        database_url=resolve_url(args.database_url), webhook_secret_ref=args.webhook_secret,
        max_body_bytes=args.max_body_bytes, request_timeout=args.request_timeout,
        pool_min=min(2, args.pool_size), pool_max=args.pool_size,
    )
    options = ServerOptions(host=args.host, port=args.port, shutdown_timeout=args.shutdown_timeout,
                            forwarded_allow_ips=args.forwarded_allow_ips)
    try:
        serve(config, options)
    except OSError as exc:
        raise NightshiftError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    return 0
