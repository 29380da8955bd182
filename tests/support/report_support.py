"""A small history for the reporting tests, stored the way the dispatcher stores it: tasks claimed,
results recorded by nightshift.record_result, so the views read what real scans leave behind.

Two organizations:
  acme      pipeline acme/infra/network drifting (one EC2 instance, i-0abc), its integration failing
            a compliance check on the same instance (by ARN), a cost finding on it too; pipeline
            acme/infra/dns fixed (drift resolved by a clean scan) and now failing to scan twice in a row;
            an HOURLY pipeline acme/infra/edge, never scanned, its schedule made 2 hours ago (overdue)
  globex    one clean pipeline: nothing of acme's may show up in its rows
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

INSTANCE = "i-0abc"
ARN = "arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc"


@dataclass
class History:
    acme: int
    globex: int
    network: str
    dns: str
    edge: str
    integration: str


def _org(conn: psycopg.Connection, name: str) -> int:
    row = conn.execute("INSERT INTO nightshift.organizations"
                       " (name, compliance_enabled, cost_optimization_enabled)"
                       " VALUES (%s, true, true) RETURNING id", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def _pipeline(conn: psycopg.Connection, org: int, name: str, frequency: str = "DAILY",
              age: str = "0 seconds") -> str:
    row = conn.execute(
        """WITH repo AS (
               INSERT INTO nightshift.repositories (organization_id, name, url)
               VALUES (%(org)s, 'infra-' || %(name)s, '/srv/infra') RETURNING id
           ), pipe AS (
               INSERT INTO nightshift.pipelines (repository_id, name)
               SELECT id, %(name)s FROM repo RETURNING id
           ), sched AS (
               INSERT INTO nightshift.schedules (kind, pipeline_id, frequency, created_at)
               SELECT 'drift-scan', id, %(frequency)s, now() - %(age)s::interval FROM pipe
           )
           SELECT id FROM pipe""", {"org": org, "name": name, "frequency": frequency, "age": age}).fetchone()
    assert row is not None
    return f"pipeline/{row[0]}"


def scan(conn: psycopg.Connection, subject: str, kind: str, status: str, findings: list[dict[str, Any]],
         error: str | None = None) -> int:
    """Claim a task for the subject and record its result; the scan's id."""
    row = conn.execute(
        "INSERT INTO nightshift.tasks (kind, subject, status, attempt, locked_by, locked_until, started_at)"
        " VALUES (%s, %s, 'running', 1, 'test', now() + interval '1 hour', now()) RETURNING id",
        (kind, subject)).fetchone()
    assert row is not None
    result = conn.execute(
        "SELECT scan_id FROM nightshift.record_result(%s, 1, %s)",
        (row[0], Jsonb({"scan": {"status": status, "findings": findings, "error": error}}))).fetchone()
    assert result is not None and result[0] is not None
    return int(result[0])


def drift(address: str, provider_id: str, severity: str = "medium") -> dict[str, Any]:
    return {"kind": "drift", "fingerprint": f"drift:{address}", "address": address, "type": "aws_instance",
            "provider_id": provider_id, "change": "update", "severity": severity}


def make_history(conn: psycopg.Connection) -> History:
    acme, globex = _org(conn, "acme"), _org(conn, "globex")
    network, dns = _pipeline(conn, acme, "network"), _pipeline(conn, acme, "dns")
    edge = _pipeline(conn, acme, "edge", "HOURLY", age="2 hours")
    row = conn.execute("INSERT INTO nightshift.cloud_integrations (organization_id, provider, account_id,"
                       " frameworks, compliance_enabled) VALUES (%s, 'aws', '123456789012', '{CIS}', true)"
                       " RETURNING id", (acme,)).fetchone()
    assert row is not None
    integration = f"cloud_integration/{row[0]}"

    scan(conn, network, "drift-scan", "DRIFTED", [drift("aws_instance.web", INSTANCE, "high")])
    scan(conn, integration, "compliance-scan", "FAILED_CHECKS", [
        {"kind": "compliance", "fingerprint": "ckv:1", "check_id": "CKV_AWS_8", "severity": "critical",
         "provider_id": ARN, "type": "aws_instance"}])
    scan(conn, f"organization/{acme}", "cost-analysis", "FAILED_CHECKS", [
        {"kind": "cost", "fingerprint": "cost:1", "check_id": "rightsizing", "severity": "medium",
         "provider_id": INSTANCE, "estimated_monthly_saving": "123.40", "currency": "USD"}])
    scan(conn, dns, "drift-scan", "DRIFTED", [drift("aws_route53_record.www", "Z1_www")])
    scan(conn, dns, "drift-scan", "CLEAN", [])  # resolves the record's drift
    scan(conn, dns, "drift-scan", "ERROR", [], error="terraform init: provider registry unreachable")
    scan(conn, dns, "drift-scan", "ERROR", [], error="terraform init: provider registry unreachable")

    globex_pipeline = _pipeline(conn, globex, "network")
    scan(conn, globex_pipeline, "drift-scan", "CLEAN", [])
    return History(acme, globex, network, dns, edge, integration)
