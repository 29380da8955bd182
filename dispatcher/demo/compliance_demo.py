"""The compliance part of `nightshift demo`: Checkov over the project's own vulnerable Terraform.

1. register a demo AWS cloud integration (no credentials: Checkov only, no live account) and link it
   to a pipeline over examples/compliance, deliberately vulnerable Terraform;
2. enqueue a compliance scan and run `nightshift dispatcher run` until it is recorded: failed checks
   become OPEN findings of kind `compliance`;
3. scan again: the tree has not changed, so Checkov is not run and its findings are reused.

Needs Checkov (`make scanners` or `nightshift scanners install checkov`); without it the step says so
and the rest of the demo goes on. Nothing leaves the machine (Checkov runs offline).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dispatcher.compliance.scanners import locate
from dispatcher.db import connect

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "compliance"
SCAN_TIMEOUT = 300.0
SHOWN = 6  # findings printed; the rest are counted

INTEGRATION = """
WITH org AS (
    UPDATE nightshift.organizations SET compliance_enabled = true WHERE name = 'demo' RETURNING id
), repo AS (
    INSERT INTO nightshift.repositories (organization_id, name, url)
    SELECT id, 'compliance-example', %(url)s FROM org
    ON CONFLICT (organization_id, name) DO UPDATE SET url = EXCLUDED.url RETURNING id, organization_id
), pipe AS (
    INSERT INTO nightshift.pipelines (repository_id, name, working_directory)
    SELECT id, 'vulnerable', '.' FROM repo
    ON CONFLICT (repository_id, name) DO UPDATE SET working_directory = EXCLUDED.working_directory
    RETURNING id
), found AS (
    SELECT c.id FROM nightshift.cloud_integrations AS c, org
     WHERE c.organization_id = org.id AND c.provider = 'aws' AND c.account_id = '000000000000'
       AND c.deleted_at IS NULL
), made AS (
    INSERT INTO nightshift.cloud_integrations (organization_id, provider, account_id, frameworks,
                                               compliance_enabled)
    SELECT id, 'aws', '000000000000', '{CIS,NIST-800-53}', true FROM org WHERE NOT EXISTS (SELECT FROM found)
    RETURNING id
), integration AS (
    SELECT id FROM found UNION ALL SELECT id FROM made
), link AS (
    -- linked: the integration's Checkov scans cover this pipeline only, not the drift demo's
    INSERT INTO nightshift.cloud_integration_pipelines (cloud_integration_id, pipeline_id)
    SELECT integration.id, pipe.id FROM integration, pipe ON CONFLICT DO NOTHING
)
SELECT id FROM integration
"""


def run(url: str, workdir: Path) -> None:
    """The compliance demo against the database at `url`; the dispatcher's log under `workdir`."""
    checkov = locate("checkov")
    if checkov is None:
        print("\ncompliance scan demo skipped: Checkov is not installed "
              "(`make scanners` or `nightshift scanners install checkov`)")
        return
    if not EXAMPLE.is_dir():
        print(f"\ncompliance scan demo skipped: no {EXAMPLE} (run the demo from a checkout)")
        return
    print(f"\ncompliance scan demo: Checkov {checkov.path} over {EXAMPLE.relative_to(ROOT)} "
          "(deliberately vulnerable Terraform), offline")
    workdir.mkdir(parents=True, exist_ok=True)
    env = {"NIGHTSHIFT_CHECKOV": str(checkov.path)}
    with connect(url, autocommit=True) as conn:
        row = conn.execute(INTEGRATION, {"url": str(EXAMPLE)}).fetchone()
        if row is None:
            print("  skipped: the demo organization is not registered")
            return
        subject = f"cloud_integration/{row[0]}"
        log = workdir / "dispatcher-compliance.log"
        first = scan(conn, url, subject, env, log, "Checkov over the tree, about 10-40 s")
        show(conn, first, subject)
        again = scan(conn, url, subject, env, log, "the tree is unchanged")
        print(f"  rescan {again['id']}: {again['status']} in {again['seconds']:.0f}s, "
              f"{again['summary'].get('reused', 0)} pipeline(s) unchanged, Checkov's results reused")
    print(f"  the findings: nightshift findings list --kind compliance; the posture per framework: "
          f"nightshift frameworks load, then SELECT * FROM nightshift.compliance_scores WHERE subject = "
          f"'{subject}'")


def scan(conn: psycopg.Connection, url: str, subject: str, env: dict[str, str], log: Path,
         what: str) -> dict[str, Any]:
    """Enqueue a compliance scan, run the dispatcher until it is recorded, return the scans row."""
    row = conn.execute("SELECT nightshift.enqueue('compliance-scan', %s)", (subject,)).fetchone()
    if row is None or row[0] is None:
        raise RuntimeError(f"a compliance scan of {subject} is already queued or running")
    task_id = row[0]
    print(f"  compliance scan of {subject}: task {task_id}, `nightshift dispatcher run` until its scan "
          f"is recorded ({what})...", flush=True)
    started = time.monotonic()
    with log.open("ab") as out:
        # the URL (with its password) goes through the environment, not argv (visible in `ps`)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "dispatcher", "run",
             "--kinds", "compliance-scan", "--poll-interval", "0.5"],
            env={**os.environ, **env, "NIGHTSHIFT_DATABASE_URL": url}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while time.monotonic() - started < SCAN_TIMEOUT:
            result = conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM nightshift.scans WHERE task_id = %s", (task_id,)).fetchone()
            if result is not None:
                return {**result, "seconds": time.monotonic() - started}
            if daemon.poll() is not None:
                raise RuntimeError(f"the dispatcher exited; see {log}")
            time.sleep(0.25)
        raise RuntimeError(f"no scan of task {task_id} within {SCAN_TIMEOUT:.0f}s; see {log}")
    finally:
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=60)


def show(conn: psycopg.Connection, scan: dict[str, Any], subject: str) -> None:
    summary = scan["summary"]
    print(f"  scan {scan['id']}: {scan['status']} in {scan['seconds']:.0f}s — "
          f"{summary.get('failed', 0)} failed, {summary.get('passed', 0)} passed checks")
    if scan["error"]:
        print("    " + str(scan["error"])[:2000])
    rows = conn.execute(
        "SELECT status, check_id, resource_address, details ->> 'file_path', details ->> 'check_name'"
        "  FROM nightshift.findings WHERE subject = %s AND kind = 'compliance' AND last_scan_id = %s"
        " ORDER BY check_id, resource_address", (subject, scan["id"])).fetchall()
    for status, check_id, address, path, name in rows[:SHOWN]:
        print(f"    {status:<6} {check_id:<12} {address:<34} {path or '':<10} {(name or '')[:60]}")
    if len(rows) > SHOWN:
        print(f"    ... and {len(rows) - SHOWN} more")
