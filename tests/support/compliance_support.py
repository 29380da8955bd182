"""Helpers of the compliance tests: Checkov installed once, integrations in the database, agent runs."""

from __future__ import annotations

import asyncio
import functools
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from dispatcher.agents.base import AgentContext
from dispatcher.agents.compliance_scan import ComplianceScanAgent
from dispatcher.compliance import scanners
from tests.support.drift_support import ScanningDispatcher, claim, record

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "examples" / "compliance"
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


class DispatcherProcess(ScanningDispatcher):
    """`nightshift dispatcher run --kinds compliance-scan` as a subprocess."""

    kind = "compliance-scan"
