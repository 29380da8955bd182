"""Helpers of the compliance tests: Checkov installed once, integrations in the database, agent runs."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from dispatcher.agents.base import AgentContext
from dispatcher.agents.compliance_scan import ComplianceScanAgent
from dispatcher.compliance import scanners
from tests.support.drift_support import claim, record, scan_row

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "terraform" / "compliance_aws"
CORPORA = ROOT.parent / "shared" / "corpora"


@functools.cache
def ensure_checkov() -> Path:
    """Checkov at its pinned version, installed once into the repository's .nightshift/scanners.

    `make test` runs `nightshift scanners install checkov` first; a bare `pytest` installs it here
    (a few minutes, once: the virtualenv is kept). The environment variable is set for the whole
    session, so dispatcher subprocesses find the same Checkov.
    """
    os.environ.setdefault(scanners.DIR_ENV, str(ROOT / ".nightshift" / "scanners"))
    found = scanners.locate("checkov")
    if found is not None:
        return found.path
    return scanners.install("checkov")


def make_integration(
    conn: psycopg.Connection, repo: Path | str | None, *, frameworks: tuple[str, ...] = ("CIS",),
    provider: str = "aws", auto_remediate: bool = False, name: str = "acme", working_directory: str = ".",
) -> str:
    """organization (+ repository/pipeline when `repo`) + an AWS integration; returns its subject."""
    org = conn.execute("INSERT INTO nightshift.organizations (name, compliance_enabled, auto_remediate)"
                       " VALUES (%s, true, %s) RETURNING id", (name, auto_remediate)).fetchone()
    assert org is not None
    if repo is not None:
        conn.execute(
            "WITH r AS (INSERT INTO nightshift.repositories (organization_id, name, url)"
            " VALUES (%s, 'infra', %s) RETURNING id)"
            " INSERT INTO nightshift.pipelines (repository_id, name, working_directory)"
            " SELECT id, 'network', %s FROM r", (org[0], str(repo), working_directory))
    row = conn.execute(
        "INSERT INTO nightshift.cloud_integrations (organization_id, provider, account_id, frameworks,"
        " compliance_enabled) VALUES (%s, %s, '123456789012', %s, true) RETURNING id",
        (org[0], provider, list(frameworks))).fetchone()
    assert row is not None
    return f"cloud_integration/{row[0]}"


def scan_compliance(conn: psycopg.Connection, subject: str, *, timeout: float = 600.0) -> dict[str, Any]:
    """One compliance scan run in this process and recorded as the dispatcher records it."""
    task = claim(conn, subject, kind="compliance-scan")
    row = conn.execute("SELECT nightshift.task_targets(%s)", (subject,)).fetchone()
    assert row is not None
    with tempfile.TemporaryDirectory(prefix="nightshift-task-") as workdir:
        ctx = AgentContext(task=task, workdir=Path(workdir), deadline=time.monotonic() + timeout,
                           targets=row[0])
        result = asyncio.run(ComplianceScanAgent().run(ctx))
    return record(conn, task, result)


def open_checks(conn: psycopg.Connection, subject: str) -> set[tuple[str, str]]:
    rows = conn.execute("SELECT check_id, resource_address FROM nightshift.findings"
                        " WHERE subject = %s AND kind = 'compliance' AND status = 'OPEN'",
                        (subject,)).fetchall()
    return {(row[0], row[1]) for row in rows}


def fake_checkov(bin_dir: Path, body: str) -> Path:
    """An executable standing in for Checkov: answers --version like 3.3.30, then runs `body`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "checkov"
    script.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo 3.3.30; exit 0; fi\n' + body)
    script.chmod(0o755)
    return script


class DispatcherProcess:
    """`nightshift dispatcher run --kinds compliance-scan` as a subprocess."""

    def __init__(self, db_url: str, log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "dispatcher", "run", "--database-url", db_url,
             "--kinds", "compliance-scan", "--poll-interval", "0.5", "--concurrency", "2"],
            env={**os.environ, **(env or {})}, stdout=self._out, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=ROOT,
        )

    def scan(self, conn: psycopg.Connection, subject: str, timeout: float = 600.0) -> dict[str, Any]:
        """Enqueue a compliance scan of `subject` and wait until the dispatcher has recorded it."""
        row = conn.execute("SELECT nightshift.enqueue('compliance-scan', %s)", (subject,)).fetchone()
        assert row is not None and row[0] is not None
        task_id = row[0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # the task's status first: its scan is stored in the same transaction that ends the task,
            # so a task seen ended has its scan visible from then on
            task = conn.execute("SELECT status, last_error FROM nightshift.tasks WHERE id = %s",
                                (task_id,)).fetchone()
            found = conn.execute("SELECT id FROM nightshift.scans WHERE task_id = %s", (task_id,)).fetchone()
            if found:
                return scan_row(conn, found[0])
            assert task is not None and task[0] in ("queued", "running"), f"task {task}: {self.tail()}"
            assert self.process.poll() is None, f"the dispatcher exited: {self.tail()}"
            time.sleep(0.25)
        raise AssertionError(f"no scan of task {task_id} within {timeout:.0f}s: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._out.close()
