"""Issue 11: docker-compose and the systemd unit, tested without Docker: the compose file is parsed and
every command it runs is run here, against a real database, as the containers would run it."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from dispatcher import cron
from dispatcher.cli import build_parser
from tests.support.pgserver import ROOT

NIGHTSHIFT = [sys.executable, "-m", "dispatcher"]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_every_compose_command_is_a_valid_nightshift_command() -> None:
    parser = build_parser()
    for service in SERVICES.values():
        if service.get("build", {}).get("target") == "app" and "command" in service:
            parser.parse_args(service["command"])  # SystemExit (a test error) when it is not
    assert "--install-cron" in SERVICES["migrate"]["command"]


def test_compose_migrate_installs_the_pg_cron_jobs(db_url: str) -> None:
    """The migrate service's command, as the container runs it: the schema, then the jobs, so that
    enqueue_due runs every minute under compose."""
    proc = subprocess.run(
        [*NIGHTSHIFT, *SERVICES["migrate"]["command"]],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "NIGHTSHIFT_DATABASE_URL": db_url},
    )
    try:
        assert proc.returncode == 0, proc.stderr
        jobs = cron.status(db_url, runs=0)
        assert jobs and all(job.installed is not None and job.up_to_date for job in jobs)
        assert {"nightshift-enqueue-due", "nightshift-maintenance"} <= {
            j.spec.jobname.split("@")[0] for j in jobs
        }
    finally:
        cron.uninstall(db_url)


def test_compose_metrics_are_published_and_the_dispatcher_healthcheck_is_real(db_url: str) -> None:
    """The dispatcher's command listens on every interface (a container's loopback is not reachable
    from the published port), and its healthcheck command answers from /healthz."""
    command = SERVICES["dispatcher"]["command"]
    assert command[command.index("--metrics-host") + 1] == "0.0.0.0"
    published = SERVICES["dispatcher"]["ports"][0].split(":")
    port = int(command[command.index("--metrics-port") + 1])
    assert int(published[-1]) == port
    local = free_port()
    args = [a if a != str(port) else str(local) for a in command]
    daemon = subprocess.Popen(
        [*NIGHTSHIFT, *args, "--database-url", db_url],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        healthcheck = [
            part.replace(str(port), str(local)) for part in SERVICES["dispatcher"]["healthcheck"]["test"]
        ]
        assert healthcheck[0] == "CMD"
        deadline = time.monotonic() + 30
        while True:
            check = subprocess.run(
                [sys.executable if a == "python" else a for a in healthcheck[1:]],
                capture_output=True,
                text=True,
                timeout=30,
            )
            if check.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert check.returncode == 0, check.stderr
        # reachable on an address other than loopback's 127.0.0.1 too (what 0.0.0.0 is for)
        with urllib.request.urlopen(f"http://127.0.0.2:{local}/metrics", timeout=5) as response:
            assert b"nightshift_database_connected 1.0" in response.read()
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)


def test_compose_postgres_healthcheck_uses_tcp() -> None:
    """While the postgres image runs its init scripts the server listens on its Unix socket only: a
    check over TCP passes only once the real server is up."""
    test = SERVICES["postgres"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"] and test[test.index("--host") + 1] == "127.0.0.1"


def test_docker_image_and_context() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    app = dockerfile[dockerfile.index("AS app") :]
    assert "git" in app.split("apt-get install", 1)[1].split("&&", 1)[0]
    assert "terraform version" in app and "sha256sum -c" in app
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".nightshift", ".git"} <= set(ignored)


def test_systemd_unit_runs_a_valid_command() -> None:
    unit = (ROOT / "examples" / "systemd" / "nightshift-dispatcher.service").read_text()
    [exec_start] = [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart=")]
    argv = shlex.split(exec_start)
    assert Path(argv[0]).name == "nightshift"
    args = build_parser().parse_args(argv[1:])
    assert args.func.__module__ == "dispatcher.cli.dispatcher_cmd"
    assert "--database-url" not in argv  # the password stays in the EnvironmentFile
    assert "EnvironmentFile=" in unit


def test_sslmode_in_the_url_reaches_libpq(db_url: str) -> None:
    """TLS options go in the URL: the test server has no TLS, so `require` must be refused by libpq."""
    from dispatcher.db import connect
    from dispatcher.errors import DatabaseUnavailable

    with connect(f"{db_url}?sslmode=disable") as conn:
        assert "sslmode=disable" in conn.info.dsn and conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(DatabaseUnavailable, match="SSL"):
        connect(f"{db_url}?sslmode=require")
