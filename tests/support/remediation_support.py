"""Helpers of the remediation tests: a repository on a real bare git remote whose Terraform state is
committed (a local-backend pipeline), and the drift-scan / drift-remediation agents run in process
the way the dispatcher runs them (targets from nightshift.task_targets, results through
contract.checked and nightshift.record_result)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from dispatcher.agents.base import Agent, AgentContext, AgentResult, Task
from dispatcher.agents.drift_remediation import DriftRemediationAgent
from dispatcher.agents.drift_scan import DriftScanAgent
from dispatcher.contract import checked

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str, ok: tuple[int, ...] = (0,)) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, text=True, check=False
    )
    assert done.returncode in ok, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def bare_remote(root: Path, source: Path, *, branch: str = "main") -> tuple[Path, Path]:
    """A bare repository holding `source` (code and state) on `branch`, and a working clone of it."""
    remote = root / "remote.git"
    git(root, "init", "--quiet", "--bare", f"--initial-branch={branch}", str(remote))
    work = root / "work"
    git(root, "clone", "--quiet", str(remote), str(work))
    git(work, "checkout", "--quiet", "-b", branch)
    for path in source.iterdir():
        if path.is_file():
            (work / path.name).write_bytes(path.read_bytes())
    return remote, work


def commit_and_push(work: Path, message: str, *, branch: str = "main") -> None:
    (work / ".gitignore").write_text(".terraform/\n*.tfplan\n.terraform.tfstate.lock.info\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "--allow-empty", "-m", message)
    git(work, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")


def make_remediable_pipeline(conn: psycopg.Connection, remote: Path, *, env_allowlist: list[str]) -> str:
    """Organization + repository (local forge, a git remote) + pipeline, every remediation switch on."""
    row = conn.execute(
        """
        WITH org AS (
            INSERT INTO nightshift.organizations (name, auto_remediate) VALUES ('acme', true) RETURNING id
        ), repo AS (
            INSERT INTO nightshift.repositories (organization_id, name, url, forge, auto_remediate)
            SELECT id, 'infra', %(url)s, 'local', true FROM org RETURNING id
        ), pipe AS (
            INSERT INTO nightshift.pipelines (repository_id, name, env_allowlist)
            SELECT id, 'network', %(env)s FROM repo RETURNING id
        ), sched AS (
            INSERT INTO nightshift.schedules (kind, pipeline_id, frequency, auto_create_pr,
                                              notification_channel)
            SELECT 'drift-scan', id, 'UNMONITORED', true, '#infra' FROM pipe
        )
        SELECT id FROM pipe
        """,
        {"url": remote.as_uri(), "env": env_allowlist},
    ).fetchone()
    assert row is not None
    return f"pipeline/{row[0]}"


def run_task(conn: psycopg.Connection, task_id: int, agent: Agent, timeout: float = 600.0) -> AgentResult:
    """Claim task `task_id`, run `agent` on it in process and record its result as the dispatcher does."""
    row = conn.execute(
        "UPDATE nightshift.tasks SET status = 'running', attempt = attempt + 1, locked_by = 'test',"
        " locked_until = now() + interval '1 hour', started_at = now() WHERE id = %s"
        " RETURNING id, kind, subject, payload, attempt, max_attempts",
        (task_id,),
    ).fetchone()
    assert row is not None
    task = Task(id=row[0], kind=row[1], subject=row[2], payload=row[3], attempt=row[4], max_attempts=row[5])
    targets = conn.execute("SELECT nightshift.task_targets(%s)", (task.subject,)).fetchone()
    assert targets is not None
    with tempfile.TemporaryDirectory(prefix="nightshift-task-") as workdir:
        ctx = AgentContext(
            task=task, workdir=Path(workdir), deadline=time.monotonic() + timeout, targets=targets[0]
        )
        result = checked(asyncio.run(agent.run(ctx)))
    assert result.ok, result.error
    conn.execute(
        "SELECT nightshift.record_result(%s, %s, %s)", (task.id, task.attempt, Jsonb(result.to_json()))
    )
    return result


def drift_scan(conn: psycopg.Connection, subject: str) -> dict[str, Any]:
    """A drift scan of `subject`, recorded; returns the scans row."""
    task_id = conn.execute("SELECT nightshift.enqueue('drift-scan', %s)", (subject,)).fetchone()
    assert task_id is not None and task_id[0] is not None
    run_task(conn, task_id[0], DriftScanAgent())
    cur = conn.cursor(row_factory=dict_row)
    scan = cur.execute("SELECT * FROM nightshift.scans WHERE task_id = %s", (task_id[0],)).fetchone()
    assert scan is not None
    return scan


def remediate(conn: psycopg.Connection) -> AgentResult:
    """Run the queued drift-remediation task."""
    row = conn.execute(
        "SELECT id FROM nightshift.tasks WHERE kind = 'drift-remediation' AND status = 'queued'"
    ).fetchone()
    assert row is not None, "no drift-remediation task is queued"
    return run_task(conn, row[0], DriftRemediationAgent())


def remediations(conn: psycopg.Connection) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute("SELECT * FROM nightshift.remediations ORDER BY id").fetchall()
