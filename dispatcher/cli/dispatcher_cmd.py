"""`nightshift dispatcher run`: the long-running daemon that turns queued tasks into agent runs.

Its settings come from, first to last: the command line, the environment (NIGHTSHIFT_CONCURRENCY,
NIGHTSHIFT_LEASE, ...), the [dispatcher] table of a config file (--config, $NIGHTSHIFT_CONFIG, else
./nightshift.toml when it exists), the defaults. Every source goes through the same checks.
"""

from __future__ import annotations

import argparse
import logging
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatcher.cli import add_database_url
from dispatcher.cli.options import kind_list, non_empty, port, positive_float, positive_int
from dispatcher.config import resolve_url
from dispatcher.errors import UsageError

CONFIG_ENV = "NIGHTSHIFT_CONFIG"
DEFAULT_CONFIG = "nightshift.toml"


@dataclass(frozen=True)
class Setting:
    """One dispatcher setting: its option, its check, its default and what it means."""

    name: str  # the key in nightshift.toml; the option is --<name with - for _>
    check: Callable[[str], Any]
    default: Any
    help: str
    metavar: str | None = None

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "NIGHTSHIFT_" + self.name.upper()


def _bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


SETTINGS = (
    Setting("concurrency", positive_int, 16, "agent runs at once (default 16)", "N"),
    Setting("kinds", kind_list, None, "only claim these task kinds, comma-separated (default: every kind)",
            "KIND[,KIND...]"),
    Setting("poll_interval", positive_float, 2.0,
            "claim (and requeue expired leases) this often without a NOTIFY (default 2)", "SECONDS"),
    Setting("lease", positive_float, 30.0,
            "lease length; heartbeats renew it every third of it; more than 0 (default 30)", "SECONDS"),
    Setting("shutdown_timeout", positive_float, 30.0,
            "on SIGTERM, how long running tasks may finish (default 30)", "SECONDS"),
    Setting("worker", non_empty, None, "worker name recorded in locked_by (default host:pid)", "NAME"),
    Setting("metrics_port", port, None, "serve Prometheus /metrics and /healthz on this port (1-65535)",
            "PORT"),
    Setting("notify", _bool, True,
            "also deliver the notification outbox to its channels (default true; false when a separate "
            "`nightshift notify run` does it)", "true|false"),
    Setting("metrics_host", non_empty, "127.0.0.1",
            "address of the metrics endpoint (default 127.0.0.1; 0.0.0.0 in a container)", "ADDR"),
)
# the lease must outlive at least one heartbeat round: heartbeats run every lease/3
MIN_LEASE = 1.0


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
        epilog="Each setting is taken from the option, else the environment variable NIGHTSHIFT_<NAME> "
        "(NIGHTSHIFT_CONCURRENCY, NIGHTSHIFT_METRICS_PORT, ...), else the [dispatcher] table of the "
        f"config file (--config, ${CONFIG_ENV}, else ./{DEFAULT_CONFIG} if it exists), else its default. "
        "Example nightshift.toml: [dispatcher] concurrency = 8, kinds = [\"drift-scan\"], "
        "metrics_port = 9464, allow_command = [\"/opt/agents/*\"].",
    )
    add_database_url(run_parser)
    run_parser.add_argument("--config", metavar="FILE",
                            help=f"a TOML file with a [dispatcher] table (default: ${CONFIG_ENV}, else "
                            f"./{DEFAULT_CONFIG} when it exists)")
    for setting in SETTINGS:
        flags = [setting.option, "-c"] if setting.name == "concurrency" else [setting.option]
        run_parser.add_argument(*flags, dest=setting.name, type=setting.check, metavar=setting.metavar,
                                help=setting.help)
    run_parser.add_argument("--allow-command", action="append", default=None, metavar="GLOB",
                            help="executables the `command` agent may run (absolute path glob; "
                            "repeatable; also $NIGHTSHIFT_COMMAND_ALLOW)")
    run_parser.add_argument("--log-json", action="store_true", default=None,
                            help="log one JSON object per line (also NIGHTSHIFT_LOG_JSON=1)")
    run_parser.set_defaults(func=run)


def settings_from(args: argparse.Namespace, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Every dispatcher setting, from the option, else the environment, else the file, else the default."""
    environ = dict(os.environ if environ is None else environ)
    table = _config_table(args.config or environ.get(CONFIG_ENV))
    known = {s.name for s in SETTINGS} | {"allow_command", "log_json", "database_url"}
    if unknown := sorted(set(table) - known):
        raise UsageError(f"unknown setting(s) in the [dispatcher] table: {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        given = getattr(args, setting.name)
        if given is not None:
            values[setting.name] = given
        elif setting.env in environ:
            values[setting.name] = _checked(setting.check, environ[setting.env], setting.env)
        elif setting.name in table:
            raw = table[setting.name]
            if setting.name == "kinds" and isinstance(raw, list):
                raw = ",".join(str(k) for k in raw)
            values[setting.name] = _checked(setting.check, str(raw), f"{setting.name} in the config file")
        else:
            values[setting.name] = setting.default
    values["log_json"] = args.log_json if args.log_json is not None else _checked(
        _bool, environ.get("NIGHTSHIFT_LOG_JSON", str(table.get("log_json", False))), "log_json")
    allowed = table.get("allow_command", [])
    if not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed):
        raise UsageError("allow_command in the config file must be a list of path globs")
    values["allow_command"] = [*allowed, *(args.allow_command or [])]
    values["database_url"] = args.database_url or (
        None if "NIGHTSHIFT_DATABASE_URL" in environ else table.get("database_url"))
    if values["lease"] < MIN_LEASE:
        raise UsageError(f"--lease must be at least {MIN_LEASE:g} second (heartbeats renew it every third)")
    return values


def _checked(check: Callable[[str], Any], raw: str, where: str) -> Any:
    try:
        return check(raw)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"{where}: {exc}") from None


def _config_table(path: str | None) -> dict[str, Any]:
    if path is None:
        if not Path(DEFAULT_CONFIG).is_file():
            return {}
        path = DEFAULT_CONFIG
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise UsageError(f"cannot read the config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"the config file {path} is not valid TOML: {exc}") from None
    table = document.get("dispatcher", {})
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [dispatcher] must be a table")
    return table


def run(args: argparse.Namespace) -> int:
    from dispatcher import eventloop, logs
    from dispatcher.agents.command import ALLOW_ENV
    from dispatcher.daemon import Dispatcher, DispatcherConfig, default_worker_name

    values = settings_from(args)
    logs.configure(values["log_json"], logging.getLogger().level)
    if values["allow_command"]:
        existing = [p for p in os.environ.get(ALLOW_ENV, "").split(os.pathsep) if p]
        os.environ[ALLOW_ENV] = os.pathsep.join([*existing, *values["allow_command"]])
    config = DispatcherConfig(
        url=resolve_url(values["database_url"]), worker=values["worker"] or default_worker_name(),
        concurrency=values["concurrency"], kinds=values["kinds"], poll_interval=values["poll_interval"],
        lease=values["lease"], shutdown_timeout=values["shutdown_timeout"],
        metrics_port=values["metrics_port"], metrics_host=values["metrics_host"], notify=values["notify"],
    )
    eventloop.run(Dispatcher(config).run())
    return 0
