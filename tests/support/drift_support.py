"""Helpers of the drift tests: pipelines in the database, and a scan run the way the dispatcher runs one."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from dispatcher.agents.base import AgentContext, AgentResult, Task
from dispatcher.agents.drift_scan import DriftScanAgent

needs_terraform = pytest.mark.skipif(
    shutil.which("terraform") is None,
    reason="SKIPPED LOUDLY: no `terraform` on PATH, so the real drift scans cannot run "
    "(install Terraform >= 1.5 to run them)",
)


def make_pipeline(
    conn: psycopg.Connection, url: str | Path, *, env_allowlist: list[str] | None = None,
    iac_tool: str = "terraform", working_directory: str = ".", var_files: list[str] | None = None,
    workspace: str = "default", name: str = "network",
) -> str:
    """organization/repository/pipeline + its drift-scan schedule; returns the subject pipeline/<id>."""
    row = conn.execute(
        """
        WITH org AS (
            INSERT INTO nightshift.organizations (name) VALUES ('acme-' || %(name)s) RETURNING id
        ), repo AS (
            INSERT INTO nightshift.repositories (organization_id, name, url, iac_tool)
            SELECT id, 'infra', %(url)s, %(tool)s FROM org RETURNING id
        ), pipe AS (
            INSERT INTO nightshift.pipelines (repository_id, name, working_directory, workspace, var_files,
                                              env_allowlist)
            SELECT id, %(name)s, %(wd)s, %(ws)s, %(vars)s, %(env)s FROM repo RETURNING id
        ), sched AS (
            INSERT INTO nightshift.schedules (kind, pipeline_id, frequency)
            SELECT 'drift-scan', id, 'UNMONITORED' FROM pipe
        )
        SELECT id FROM pipe
        """,
        {"name": name, "url": str(url), "tool": iac_tool, "wd": working_directory, "ws": workspace,
         "vars": var_files or [], "env": env_allowlist or []},
    ).fetchone()
    assert row is not None
    return f"pipeline/{row[0]}"


def claim(conn: psycopg.Connection, subject: str, kind: str = "drift-scan") -> Task:
    row = conn.execute(
        "INSERT INTO nightshift.tasks (kind, subject, status, attempt, locked_by, locked_until, started_at)"
        " VALUES (%s, %s, 'running', 1, 'test', now() + interval '1 hour', now())"
        " RETURNING id, kind, subject, payload, attempt, max_attempts",
        (kind, subject),
    ).fetchone()
    assert row is not None
    return Task(id=row[0], kind=row[1], subject=row[2], payload=row[3], attempt=row[4], max_attempts=row[5])


def run_agent(conn: psycopg.Connection, task: Task, *, timeout: float = 300.0) -> AgentResult:
    row = conn.execute("SELECT nightshift.task_targets(%s)", (task.subject,)).fetchone()
    assert row is not None
    with tempfile.TemporaryDirectory(prefix="nightshift-task-") as workdir:
        ctx = AgentContext(task=task, workdir=Path(workdir), deadline=time.monotonic() + timeout,
                           targets=row[0])
        return asyncio.run(DriftScanAgent().run(ctx))


def record(conn: psycopg.Connection, task: Task, result: AgentResult) -> dict[str, Any]:
    """Store the result as the dispatcher does (nightshift.record_scan) and return the scans row."""
    scan = result.scan
    assert scan is not None
    row = conn.execute(
        "SELECT nightshift.record_scan(%s, %s, %s, %s, %s, %s, %s, %s)",
        (task.id, task.attempt, scan.status, Jsonb(scan.summary), Jsonb(scan.findings), Jsonb(scan.artifacts),
         scan.error, scan.started_at),
    ).fetchone()
    assert row is not None and row[0] is not None
    return scan_row(conn, row[0])


def scan_in_process(conn: psycopg.Connection, subject: str, *, timeout: float = 300.0) -> dict[str, Any]:
    task = claim(conn, subject)
    return record(conn, task, run_agent(conn, task, timeout=timeout))


def scan_row(conn: psycopg.Connection, scan_id: int) -> dict[str, Any]:
    cur = conn.cursor(row_factory=dict_row)
    row = cur.execute("SELECT * FROM nightshift.scans WHERE id = %s", (scan_id,)).fetchone()
    assert row is not None
    return row


def findings_by_address(conn: psycopg.Connection, subject: str) -> dict[tuple[str, str], dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute("SELECT * FROM nightshift.findings WHERE subject = %s", (subject,)).fetchall()
    return {(row["kind"], row["resource_address"]): row for row in rows}


class ScanningDispatcher:
    """`nightshift dispatcher run --kinds KIND` as a subprocess, and a way to wait for one scan of it."""

    kind: str  # set by the subclass

    def __init__(self, db_url: str, log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "dispatcher", "run", "--database-url", db_url,
             "--kinds", self.kind, "--poll-interval", "0.5", "--concurrency", "2"],
            env={**os.environ, **(env or {})}, stdout=self._out, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=Path(__file__).resolve().parents[2],
        )

    def scan(self, conn: psycopg.Connection, subject: str, timeout: float = 600.0) -> dict[str, Any]:
        """Enqueue a scan of `subject` and wait until the dispatcher has recorded it."""
        row = conn.execute("SELECT nightshift.enqueue(%s, %s)", (self.kind, subject)).fetchone()
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
