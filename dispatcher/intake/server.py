"""Run the intake under uvicorn: bind, say where, serve until SIGTERM/SIGINT, then drain.

Graceful shutdown is uvicorn's: on the first SIGTERM/SIGINT it stops accepting connections, lets the
requests in progress finish (at most shutdown_timeout seconds), then runs the app's lifespan end, which
closes the database pool. Each delivery is one transaction, so a request cut short by the timeout
leaves nothing half-done: GitHub redelivers it, and the delivery id has not been recorded.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

import uvicorn

from dispatcher import eventloop
from dispatcher.intake.app import IntakeConfig, create_app

log = logging.getLogger("nightshift.intake")


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    shutdown_timeout: int = 15
    keepalive_timeout: int = 5  # below the idle timeout of the usual load balancers (60 s): they close first
    forwarded_allow_ips: str | None = None  # proxies whose X-Forwarded-For/-Proto are believed
    limit_concurrency: int | None = 1000  # past this many connections+requests, 503 instead of queueing


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _DropColorMessage(logging.Filter):
    """uvicorn passes a terminal-coloured copy of each message as an extra field: not for our logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)
        return True


def serve(config: IntakeConfig, options: ServerOptions) -> None:
    logging.getLogger("uvicorn.error").addFilter(_DropColorMessage())
    sock = bind(options.host, options.port)
    uv_config = uvicorn.Config(
        create_app(config),
        loop=eventloop.loop_name(),
        lifespan="on",
        log_config=None,  # our logging (text or --log-json) stays in charge
        access_log=False,  # AccessLayer writes the access log, without query strings or headers
        server_header=False,
        proxy_headers=options.forwarded_allow_ips is not None,
        forwarded_allow_ips=options.forwarded_allow_ips,
        timeout_keep_alive=options.keepalive_timeout,
        timeout_graceful_shutdown=options.shutdown_timeout,
        limit_concurrency=options.limit_concurrency,
    )
    host, port = sock.getsockname()[:2]
    log.info("listening on http://%s:%d", host, port,
             extra={"event": "listening", "host": host, "port": port})
    uvicorn.Server(uv_config).run(sockets=[sock])
