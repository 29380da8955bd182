"""Issue 15: the cost-analysis agent — findings of kind `cost` from the real corpus, their lifecycle,
rightsizing against moto's CloudWatch, and the weekly schedule through enqueue_due and the dispatcher."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from dispatcher.agents import get
from dispatcher.agents.base import AgentContext, Task
from dispatcher.agents.cost_analysis import run_analysis
from dispatcher.cost.ingest import ensure_source
from tests.support.cost_support import (
    SAMPLE_10,
    SAMPLE_12,
    add_organization,
    corpus_file,
    facts,
    line,
    read_corpus,
    write_export,
)
from tests.support.pgserver import ROOT

JUNE = datetime(2026, 6, 15, tzinfo=UTC)


def no_aws(service: str, region: str | None) -> Any:
    raise AssertionError(f"no AWS call expected ({service} in {region})")


def targets(conn: psycopg.Connection, org_id: int) -> dict[str, Any]:
    row = conn.execute("SELECT nightshift.task_targets(%s)", (f"organization/{org_id}",)).fetchone()
    assert row is not None
    return dict(row[0])


def record(conn: psycopg.Connection, org_id: int, report: Any) -> int:
    """Store a report as the dispatcher does: a claimed task, then nightshift.record_scan."""
    task = conn.execute(
        "INSERT INTO nightshift.tasks (kind, subject, status, attempt, locked_by, locked_until, started_at)"
        " VALUES ('cost-analysis', %s, 'running', 1, 'test', now() + interval '1 hour', now()) RETURNING id",
        (f"organization/{org_id}",)).fetchone()
    assert task is not None
    row = conn.execute("SELECT nightshift.record_scan(%s, 1, %s, %s, %s, %s, %s, %s)",
                       (task[0], report.status, Jsonb(report.summary), Jsonb(report.findings),
                        Jsonb(report.artifacts), report.error, report.started_at)).fetchone()
    assert row is not None and row[0] is not None
    return int(row[0])


def findings(conn: psycopg.Connection, org_id: int) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute("SELECT * FROM nightshift.findings WHERE subject = %s ORDER BY id",
                       (f"organization/{org_id}",)).fetchall()


def test_the_1_2_export_gives_unused_commitment_findings_to_the_cent(conn: psycopg.Connection, db_url: str) -> None:
    org = add_organization(conn)
    ensure_source(conn, "acme", str(corpus_file(SAMPLE_12)))
    # the schedule's payload names ri-coverage `commitment-coverage`
    payload = {"actions": ["identify-unused", "commitment-coverage"], "lookback_days": 31}
    report = run_analysis(payload, targets(conn, org), url=db_url, now=JUNE, clients=no_aws)
    assert report.status == "FAILED_CHECKS", report.error
    assert report.summary["actions"] == ["identify-unused", "ri-coverage"]
    assert report.summary["window"] == {"from": "2026-05-01T00:00:00+00:00", "to": "2026-06-01T00:00:00+00:00"}
    assert report.summary["cost_by_currency"]["USD"]["effective"] == facts(SAMPLE_12)["total_EffectiveCost"]
    unused = [f for f in report.findings if f["check_id"] == "unused-commitment"]
    commitments = {r["CommitmentDiscountId"] for r in read_corpus(SAMPLE_12) if r["CommitmentDiscountStatus"] == "Unused"}
    assert {f["provider_id"] for f in unused} == commitments
    assert sum(Decimal(f["evidence"]["window_cost"]) for f in unused) == Decimal(
        facts(SAMPLE_12)["unused_commitment_EffectiveCost"])
    for f in report.findings:
        assert f["kind"] == "cost" and f["currency"] == "USD" and len(f["fingerprint"]) == 64
        assert Decimal(f["estimated_monthly_saving"]) >= 0 and f["evidence"]
    assert {f["check_id"] for f in report.findings} >= {"unused-commitment", "low-commitment-utilization"}


def test_findings_are_recorded_and_resolved_when_they_no_longer_apply(
        conn: psycopg.Connection, db_url: str, tmp_path: Path) -> None:
    org = add_organization(conn)
    export = tmp_path / "export.csv"
    rows = [line(f"2026-05-{d:02d}", "1.50", resource="vol-idle", consumed="0") for d in range(1, 29)]
    rows += [line(f"2026-05-{d:02d}", "4.00", resource="bucket", consumed="7") for d in range(1, 29)]
    write_export(export, rows)
    ensure_source(conn, "acme", str(tmp_path))
    payload = {"actions": ["identify-unused"], "lookback_days": 30, "auto_create_pr": True}
    report = run_analysis(payload, targets(conn, org), url=db_url, now=JUNE)
    assert report.status == "FAILED_CHECKS"
    assert report.summary["auto_create_pr"] is True
    record(conn, org, report)
    [finding] = findings(conn, org)
    assert (finding["kind"], finding["provider_id"], finding["check_id"], finding["status"]) == (
        "cost", "vol-idle", "idle-resource", "OPEN")
    assert finding["details"]["estimated_monthly_saving"] == "45.66"  # 42.00 over 28 days, per 30.4375
    assert finding["details"]["currency"] == "USD"
    assert finding["details"]["evidence"]["charged_rows"] == 28
    # someone deleted the volume's charges (the restated export has usage for it): resolved
    write_export(export, [{**r, "ConsumedQuantity": "5"} if r["ResourceId"] == "vol-idle" else r for r in rows])
    again = run_analysis(payload, targets(conn, org), url=db_url, now=JUNE)
    assert again.status == "CLEAN" and again.summary["ingest"]["files_loaded"] == 1
    record(conn, org, again)
    [finding] = findings(conn, org)
    assert finding["status"] == "RESOLVED"
    notes = conn.execute("SELECT count(*) FROM nightshift.notifications").fetchone()
    assert notes == (2,)  # one for the new finding, one for its resolution


def test_bad_input_is_an_error_on_the_scan(conn: psycopg.Connection, db_url: str, tmp_path: Path) -> None:
    org = add_organization(conn)
    report = run_analysis({}, targets(conn, org), url=db_url, now=JUNE)
    assert report.status == "ERROR"
    assert "has no cost sources" in str(report.error) and "nightshift cost ingest" in str(report.error)
    (tmp_path / "bad.csv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    ensure_source(conn, "acme", str(tmp_path))
    report = run_analysis({}, targets(conn, org), url=db_url, now=JUNE)
    assert report.status == "ERROR" and "bad.csv.gz: truncated or corrupt gzip" in str(report.error)
    unknown = run_analysis({"actions": ["delete-everything"]}, targets(conn, org), url=db_url, now=JUNE)
    assert unknown.status == "ERROR" and "unknown cost action 'delete-everything'" in str(unknown.error)


def test_the_official_sample_is_analysed_without_findings_it_cannot_support(
        conn: psycopg.Connection, db_url: str) -> None:
    org = add_organization(conn)
    ensure_source(conn, "acme", str(corpus_file(SAMPLE_10)))
    report = run_analysis({"actions": ["identify-unused", "ri-coverage"]}, targets(conn, org), url=db_url,
                          now=JUNE)
    assert report.status in ("CLEAN", "FAILED_CHECKS"), report.error
    # no Unused commitment rows in the sample (facts.json): no unused-commitment finding
    assert not [f for f in report.findings if f["check_id"] == "unused-commitment"]
    assert report.summary["line_items"] > 0
