"""Issue 15: the cost-analysis agent — findings of kind `cost` from the real corpus, their lifecycle,
rightsizing against moto's CloudWatch, and the weekly schedule through enqueue_due and the dispatcher."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
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
from dispatcher.cost.loader import CostLoader
from tests.support import cost_support
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

# moto_server on loopback, and boto3 of this process pointed at it
moto_endpoint = cost_support.moto_endpoint
aws_env = cost_support.aws_env

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


def test_the_1_2_export_gives_unused_commitment_findings_to_the_cent(conn: psycopg.Connection,
                                                                     db_url: str) -> None:
    org = add_organization(conn)
    ensure_source(conn, "acme", str(corpus_file(SAMPLE_12)))
    # the schedule's payload names ri-coverage `commitment-coverage`
    payload = {"actions": ["identify-unused", "commitment-coverage"], "lookback_days": 31}
    report = run_analysis(payload, targets(conn, org), loader=CostLoader(db_url), now=JUNE, clients=no_aws)
    assert report.status == "FAILED_CHECKS", report.error
    assert report.summary["actions"] == ["identify-unused", "ri-coverage"]
    assert report.summary["window"] == {"from": "2026-05-01T00:00:00+00:00",
                                        "to": "2026-06-01T00:00:00+00:00"}
    assert report.summary["cost_by_currency"]["USD"]["effective"] == facts(SAMPLE_12)["total_EffectiveCost"]
    unused = [f for f in report.findings if f["check_id"] == "unused-commitment"]
    commitments = {r["CommitmentDiscountId"] for r in read_corpus(SAMPLE_12)
                   if r["CommitmentDiscountStatus"] == "Unused"}
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
    report = run_analysis(payload, targets(conn, org), loader=CostLoader(db_url), now=JUNE)
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
    write_export(export, [{**r, "ConsumedQuantity": "5"} if r["ResourceId"] == "vol-idle" else r
                          for r in rows])
    again = run_analysis(payload, targets(conn, org), loader=CostLoader(db_url), now=JUNE)
    assert again.status == "CLEAN" and again.summary["ingest"]["files_loaded"] == 1
    record(conn, org, again)
    [finding] = findings(conn, org)
    assert finding["status"] == "RESOLVED"
    notes = conn.execute("SELECT count(*) FROM nightshift.notifications").fetchone()
    assert notes == (2,)  # one for the new finding, one for its resolution


def test_bad_input_is_an_error_on_the_scan(conn: psycopg.Connection, db_url: str, tmp_path: Path) -> None:
    org = add_organization(conn)
    report = run_analysis({}, targets(conn, org), loader=CostLoader(db_url), now=JUNE)
    assert report.status == "ERROR"
    assert "has no cost sources" in str(report.error) and "nightshift cost ingest" in str(report.error)
    (tmp_path / "bad.csv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    ensure_source(conn, "acme", str(tmp_path))
    report = run_analysis({}, targets(conn, org), loader=CostLoader(db_url), now=JUNE)
    assert report.status == "ERROR" and "bad.csv.gz: truncated or corrupt gzip" in str(report.error)
    unknown = run_analysis({"actions": ["delete-everything"]}, targets(conn, org), loader=CostLoader(db_url),
                           now=JUNE)
    assert unknown.status == "ERROR" and "unknown cost action 'delete-everything'" in str(unknown.error)


def test_the_official_sample_is_analysed_without_findings_it_cannot_support(
        conn: psycopg.Connection, db_url: str) -> None:
    org = add_organization(conn)
    ensure_source(conn, "acme", str(corpus_file(SAMPLE_10)))
    report = run_analysis({"actions": ["identify-unused", "ri-coverage"]}, targets(conn, org),
                          loader=CostLoader(db_url), now=JUNE)
    assert report.status in ("CLEAN", "FAILED_CHECKS"), report.error
    # no Unused commitment rows in the sample (facts.json): no unused-commitment finding
    assert not [f for f in report.findings if f["check_id"] == "unused-commitment"]
    assert report.summary["line_items"] > 0


def put_cpu(cloudwatch: Any, instance: str, start: datetime, hours: int, percent: float) -> None:
    """Hourly CPUUtilization datapoints; every sixth hour peaks at `percent`, the rest idle at a fifth."""
    data = [{"MetricName": "CPUUtilization", "Dimensions": [{"Name": "InstanceId", "Value": instance}],
             "Timestamp": start + timedelta(hours=h), "Value": percent if h % 6 == 0 else percent / 5,
             "Unit": "Percent"} for h in range(hours)]
    for i in range(0, len(data), 20):
        cloudwatch.put_metric_data(Namespace="AWS/EC2", MetricData=data[i:i + 20])


def test_rightsizing_from_cloudwatch_metrics(conn: psycopg.Connection, db_url: str, tmp_path: Path,
                                             aws_env: str) -> None:
    import boto3

    ec2 = boto3.client("ec2", region_name="eu-west-1")
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ids = {}
    for name, kind in (("big", "m5.4xlarge"), ("busy", "m5.large"), ("silent", "m5.2xlarge")):
        ids[name] = ec2.run_instances(ImageId=image, InstanceType=kind, MinCount=1, MaxCount=1)[
            "Instances"][0]["InstanceId"]
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=12)
    put_cpu(cloudwatch, ids["big"], first, 12 * 24, 20.0)  # 16 vCPUs peaking at 20%: 4 would do
    put_cpu(cloudwatch, ids["busy"], first, 12 * 24, 90.0)  # busy: stays as it is
    rows = []
    for day in range(12):
        d = (first + timedelta(days=day)).date().isoformat()
        for name, kind, rate in (("big", "m5.4xlarge", "0.768"), ("busy", "m5.large", "0.096"),
                                 ("silent", "m5.2xlarge", "0.384")):
            rows.append(line(d, str(Decimal(rate) * 24), service="AmazonEC2", service_category="Compute",
                             resource=f"arn:aws:ec2:eu-west-1:111:instance/{ids[name]}", hours="24",
                             consumed="24", instance_type=kind))
    org = add_organization(conn)
    ensure_source(conn, "acme", str(write_export(tmp_path / "ec2.csv", rows)))
    report = run_analysis({"actions": ["rightsizing-recs"]}, targets(conn, org), loader=CostLoader(db_url))
    assert report.status == "FAILED_CHECKS", report.error
    [finding] = report.findings
    assert finding["check_id"] == "rightsize-instance"
    assert finding["provider_id"].endswith(ids["big"])
    assert (finding["evidence"]["from_type"], finding["evidence"]["to_type"]) == ("m5.4xlarge", "m5.xlarge")
    assert finding["evidence"]["cpu_peak_percent"] == 20.0
    # (0.768 - 0.768 * 4/16) per hour over an average month of 730.5 hours
    assert finding["estimated_monthly_saving"] == "420.77" and finding["currency"] == "USD"
    summary = report.summary["rightsizing"]
    assert (summary["instances"], summary["recommended"], summary["missing_count"]) == (3, 1, 1)
    assert ids["silent"] in summary["missing"][0]["reason"]
    assert "no CPUUtilization datapoints" in summary["missing"][0]["reason"]


def test_rightsizing_of_the_1_2_export_says_the_metrics_are_missing(
        conn: psycopg.Connection, db_url: str, aws_env: str) -> None:
    org = add_organization(conn)
    ensure_source(conn, "acme", str(corpus_file(SAMPLE_12)))
    report = run_analysis({"actions": ["rightsizing-recs"], "lookback_days": 31}, targets(conn, org),
                          loader=CostLoader(db_url), now=JUNE)
    summary = report.summary["rightsizing"]
    assert summary["instances"] > 0 and summary["recommended"] == 0
    assert summary["missing_count"] == summary["instances"]
    reasons = {m["reason"].split(" for ")[0].split(":")[0] for m in summary["missing"]}
    assert reasons <= {"no CPUUtilization datapoints in CloudWatch",
                       "the billed resource id is not an EC2 instance id"}
    assert not [f for f in report.findings if f["check_id"] == "rightsize-instance"]


@pytest.mark.slow
def test_the_weekly_schedule_end_to_end_through_enqueue_due_and_the_dispatcher(
        conn: psycopg.Connection, db_url: str, tmp_path: Path, aws_env: str) -> None:
    conn.execute("UPDATE nightshift.settings SET value = '0' WHERE key = 'schedule.stagger.cost-analysis'")
    good, broken, empty = (add_organization(conn, name) for name in ("good", "broken", "empty"))
    ensure_source(conn, "good", str(corpus_file(SAMPLE_12)))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "export.csv").write_bytes(b"BilledCost,EffectiveCost\n1,2\n")
    ensure_source(conn, "broken", str(tmp_path / "bad"))
    conn.execute("UPDATE nightshift.schedules SET next_run_at = now() - interval '1 minute'"
                 " WHERE kind = 'cost-analysis'")
    assert conn.execute("SELECT enqueued FROM nightshift.enqueue_due('cost-analysis')").fetchone() == (3,)
    payload = conn.execute("SELECT payload FROM nightshift.tasks WHERE subject = %s",
                           (f"organization/{good}",)).fetchone()
    assert payload is not None and "commitment-coverage" in payload[0]["actions"]
    log = tmp_path / "dispatcher.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "dispatcher", "run", "--database-url", db_url,
             "--kinds", "cost-analysis", "--poll-interval", "0.5", "--concurrency", "2"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
            env={k: v for k, v in os.environ.items() if k != "NIGHTSHIFT_DATABASE_URL"})
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                done = conn.execute("SELECT count(*) FROM nightshift.scans"
                                    " WHERE kind = 'cost-analysis'").fetchone()
                if done == (3,):
                    break
                assert process.poll() is None, log.read_text()[-3000:]
                time.sleep(0.25)
            else:
                raise AssertionError(f"the dispatcher did not record three scans: {log.read_text()[-3000:]}")
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
    cur = conn.cursor(row_factory=dict_row)
    scans = {row["subject"]: row for row in cur.execute("SELECT * FROM nightshift.scans").fetchall()}
    assert scans[f"organization/{good}"]["status"] == "FAILED_CHECKS"
    assert scans[f"organization/{good}"]["summary"]["actions"] == [
        "identify-unused", "rightsizing-recs", "ri-coverage"]
    assert scans[f"organization/{broken}"]["status"] == "ERROR"
    assert "required columns" in scans[f"organization/{broken}"]["error"]
    assert scans[f"organization/{empty}"]["status"] == "ERROR"
    assert "no cost sources" in scans[f"organization/{empty}"]["error"]
    assert findings(conn, good) and not findings(conn, broken)
    assert all(f["kind"] == "cost" and f["status"] == "OPEN" for f in findings(conn, good))
    tasks = conn.execute("SELECT count(*) FROM nightshift.tasks WHERE status = 'done'").fetchone()
    assert tasks == (3,)


def test_the_agent_is_registered_for_the_kind() -> None:
    agent = get("cost-analysis")
    assert agent.needs_targets and agent.needs_cost_loader
    assert agent.__module__ == "dispatcher.agents.cost_analysis"
    task = Task(id=1, kind="cost-analysis", subject="organization/1", payload={"actions": ["nope"]},
                attempt=1, max_attempts=1)
    ctx = AgentContext(task=task, workdir=Path("/nonexistent"), deadline=time.monotonic() + 5,
                       targets={"organization": {"id": 1, "name": "x"}},
                       cost_loader=CostLoader("postgresql://nobody@127.0.0.1:1/none"))
    result = asyncio.run(agent().run(ctx))
    assert result.scan is not None and result.scan.status == "ERROR"
    assert "unknown cost action 'nope'" in str(result.scan.error)
    without = asyncio.run(agent().run(AgentContext(task=task, workdir=Path("/nonexistent"),
                                                   deadline=time.monotonic() + 5)))
    assert not without.ok and "no cost loader" in str(without.error)


def test_the_loader_role_loads_and_analyses_but_reads_nothing_else(conn: psycopg.Connection,
                                                                   db_url: str) -> None:
    """The agent's sessions run as nightshift_cost_loader: the analysis works, the queue, findings,
    schedules and channels are out of reach, and the URL is not in the loader's repr."""
    org = add_organization(conn)
    ensure_source(conn, "acme", str(corpus_file(SAMPLE_12)))
    loader = CostLoader(db_url)
    assert db_url not in repr(loader)
    report = run_analysis({"actions": ["identify-unused", "ri-coverage"]}, targets(conn, org), loader=loader,
                          now=JUNE)
    assert report.status == "FAILED_CHECKS" and report.summary["ingest"]["files_loaded"] == 1
    with loader.connect() as session:
        assert session.execute("SELECT current_user").fetchone() == ("nightshift_cost_loader",)
        for table in ("tasks", "findings", "scans", "schedules", "notification_channels", "organizations"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                session.execute(f"SELECT 1 FROM nightshift.{table} LIMIT 1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            session.execute("SELECT nightshift.record_result(1, 1, '{}'::jsonb)")



def test_a_loader_login_of_its_own_cannot_leave_the_role(conn: psycopg.Connection, db_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """$NIGHTSHIFT_COST_LOADER_URL: a login that is only a member of nightshift_cost_loader, for when
    the agent's sessions must not be able to RESET ROLE back to the dispatcher's login."""
    from sqlalchemy.engine import make_url

    login = f"cost_loader_{os.getpid()}"
    conn.execute(f"CREATE ROLE {login} LOGIN PASSWORD 'pw' IN ROLE nightshift_cost_loader")
    try:
        url = make_url(db_url).set(username=login, password="pw").render_as_string(hide_password=False)
        monkeypatch.setenv("COST_LOADER_SECRET", url)
        monkeypatch.setenv("NIGHTSHIFT_COST_LOADER_URL", "env:COST_LOADER_SECRET")
        loader = CostLoader.for_dispatcher("postgresql://unused@127.0.0.1:1/none")
        assert "pw" not in repr(loader)
        org = add_organization(conn)
        ensure_source(conn, "acme", str(corpus_file(SAMPLE_12)))
        report = run_analysis({"actions": ["identify-unused"]}, targets(conn, org), loader=loader, now=JUNE)
        assert report.status == "FAILED_CHECKS", report.error
        with loader.connect() as session:
            session.execute("RESET ROLE")
            for statement in ("SET ROLE nightshift_owner", "SELECT 1 FROM nightshift.tasks"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    session.execute(statement)
    finally:
        conn.execute(f"DROP OWNED BY {login}")
        conn.execute(f"DROP ROLE {login}")


def test_a_resource_terraform_manages_is_named_by_its_address(conn: psycopg.Connection, db_url: str,
                                                               tmp_path: Path) -> None:
    org = add_organization(conn)
    pipeline = conn.execute(
        "WITH r AS (INSERT INTO nightshift.repositories (organization_id, name, url)"
        " VALUES (%s, 'infra', '/srv/infra') RETURNING id)"
        " INSERT INTO nightshift.pipelines (repository_id, name) SELECT id, 'storage' FROM r RETURNING id",
        (org,)).fetchone()
    assert pipeline is not None
    # a drift scan saw the volume (by its provider id) at this address
    conn.execute("INSERT INTO nightshift.findings (kind, subject, fingerprint, resource_address, provider_id)"
                 " VALUES ('drift', %s, 'f1', 'module.data.aws_ebs_volume.cache', 'vol-0abc')",
                 (f"pipeline/{pipeline[0]}",))
    rows = [line(f"2026-05-{d:02d}", "0.80", consumed="0", service="AmazonEC2",
                 resource="arn:aws:ec2:eu-west-1:111:volume/vol-0abc") for d in range(1, 29)]
    rows += [line(f"2026-05-{d:02d}", "0.30", consumed="0", resource="vol-elsewhere") for d in range(1, 29)]
    ensure_source(conn, "acme", str(write_export(tmp_path / "may.csv", rows)))
    report = run_analysis({"actions": ["identify-unused"]}, targets(conn, org), loader=CostLoader(db_url),
                          now=JUNE)
    addresses = {f["provider_id"]: f["address"] for f in report.findings}
    assert addresses == {"arn:aws:ec2:eu-west-1:111:volume/vol-0abc": "module.data.aws_ebs_volume.cache",
                         "vol-elsewhere": None}
    record(conn, org, report)
    stored = {f["provider_id"]: f["resource_address"] for f in findings(conn, org)}
    assert stored["arn:aws:ec2:eu-west-1:111:volume/vol-0abc"] == "module.data.aws_ebs_volume.cache"


def test_s3_prefixes_denied_or_missing_are_errors_on_their_scans_only(
        conn: psycopg.Connection, db_url: str, aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto enforcing IAM: the dispatcher's AWS user may read billing-good only. An organization whose
    prefix is denied (listing, or only the download) or does not exist gets an ERROR scan naming the
    source and the reason, nothing of it is loaded, and the organization next to it is analysed."""
    import json
    import urllib.request

    import boto3

    iam = boto3.client("iam")
    iam.create_user(UserName="dispatcher")
    iam.put_user_policy(UserName="dispatcher", PolicyName="billing", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetObject"],
             "Resource": ["arn:aws:s3:::billing-good", "arn:aws:s3:::billing-good/*"]},
            {"Effect": "Allow", "Action": ["s3:ListBucket"],
             "Resource": ["arn:aws:s3:::billing-listonly"]}]}))
    key = iam.create_access_key(UserName="dispatcher")["AccessKey"]
    s3 = boto3.client("s3")
    body = corpus_file(SAMPLE_12).read_bytes()
    for bucket in ("billing-good", "billing-secret", "billing-listonly"):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="acme/2026-05/part-0.csv", Body=body)
    orgs = {name: add_organization(conn, name) for name in ("good", "secret", "listonly", "nowhere")}
    for name, uri in (("good", "s3://billing-good/acme/"), ("secret", "s3://billing-secret/acme/"),
                      ("listonly", "s3://billing-listonly/acme/"), ("nowhere", "s3://billing-good/nothing/")):
        ensure_source(conn, name, uri)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # its credentials were resolved from "testing"

    def enforce(count: str) -> None:
        # moto's switch for IAM enforcement: from now on, requests are checked against the policies
        request = urllib.request.Request(f"{aws_env}/moto-api/reset-auth", data=count.encode(), method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=10):
            pass

    enforce("0")
    try:
        reports = {name: run_analysis({"actions": ["identify-unused"]}, targets(conn, org),
                                      loader=CostLoader(db_url), now=JUNE) for name, org in orgs.items()}
    finally:
        enforce("inf")
    assert reports["good"].status == "FAILED_CHECKS", reports["good"].error
    assert reports["good"].summary["ingest"]["rows_loaded"] == 1000
    expected = {"secret": r"s3://billing-secret/acme/: S3 said AccessDenied",
                "listonly": r"s3://billing-listonly/acme/2026-05/part-0\.csv: cannot download: .*403",
                "nowhere": r"s3://billing-good/nothing/: no FOCUS files"}
    for name, pattern in expected.items():
        report = reports[name]
        assert report.status == "ERROR" and report.findings == [], (name, report)
        assert re.search(pattern, str(report.error)), (name, report.error)
        assert "\n" not in str(report.error) and key["SecretAccessKey"] not in str(report.error)
    loaded = dict(conn.execute(
        "SELECT s.organization_id, count(li.*) FROM nightshift.cost_sources AS s"
        " LEFT JOIN nightshift.cost_line_items AS li ON li.source_id = s.id GROUP BY 1").fetchall())
    assert loaded == {orgs["good"]: 1000, orgs["secret"]: 0, orgs["listonly"]: 0, orgs["nowhere"]: 0}
