"""Findings with a lifecycle, at the SQL level: nightshift.record_scan with synthetic findings.

Each test gets a fresh migrated database. A "scan" here is what the dispatcher does after an agent
run: a running task (claimed, attempt 1) whose result is stored with record_scan in one transaction.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

RECORD = "SELECT nightshift.record_scan(%s, %s, %s, %s, %s, %s, %s, now())"


def make_pipeline(
    conn: psycopg.Connection, *, auto_create_pr: bool = False, repo_auto: bool = False,
    org_auto: bool = False, channel: str | None = None, name: str = "network",
) -> str:
    row = conn.execute(
        """
        WITH org AS (
            INSERT INTO nightshift.organizations (name, auto_remediate) VALUES ('acme-' || %(name)s, %(org)s)
            RETURNING id
        ), repo AS (
            INSERT INTO nightshift.repositories (organization_id, name, url, auto_remediate)
            SELECT id, 'infra', '/srv/infra', %(repo)s FROM org RETURNING id
        ), pipe AS (
            INSERT INTO nightshift.pipelines (repository_id, name) SELECT id, %(name)s FROM repo RETURNING id
        ), sched AS (
            INSERT INTO nightshift.schedules (kind, pipeline_id, auto_create_pr, notification_channel)
            SELECT 'drift-scan', id, %(pr)s, %(channel)s FROM pipe
        )
        SELECT id FROM pipe
        """,
        {"name": name, "org": org_auto, "repo": repo_auto, "pr": auto_create_pr, "channel": channel},
    ).fetchone()
    assert row is not None
    return f"pipeline/{row[0]}"


def claim(conn: psycopg.Connection, subject: str, kind: str = "drift-scan", attempt: int = 1) -> int:
    """A task as claim_tasks leaves it: running, leased, with its fencing token."""
    row = conn.execute(
        "INSERT INTO nightshift.tasks (kind, subject, status, attempt, locked_by, locked_until, started_at)"
        " VALUES (%s, %s, 'running', %s, 'test', now() + interval '1 hour', now()) RETURNING id",
        (kind, subject, attempt),
    ).fetchone()
    assert row is not None
    return int(row[0])


def record(
    conn: psycopg.Connection, task_id: int, findings: list[dict[str, Any]], *, status: str | None = None,
    attempt: int = 1, error: str | None = None,
) -> int | None:
    if status is None:
        status = "DRIFTED" if any(f["kind"] == "drift" for f in findings) else "CLEAN"
    row = conn.execute(
        RECORD, (task_id, attempt, status, Jsonb({"resources": 3}), Jsonb(findings), Jsonb({}), error)
    ).fetchone()
    assert row is not None
    return row[0]


def scan(conn: psycopg.Connection, subject: str, findings: list[dict[str, Any]], **kwargs: Any) -> int:
    scan_id = record(conn, claim(conn, subject, kwargs.pop("kind", "drift-scan")), findings, **kwargs)
    assert scan_id is not None
    return scan_id


def drift(address: str, *paths: str, kind: str = "drift", change: str = "update") -> dict[str, Any]:
    return {
        "kind": kind, "address": address, "type": address.split(".")[-2], "module": None,
        "provider_id": f"id-of-{address}", "change": change, "severity": "medium",
        "fingerprint": f"{kind}:{address}", "name": address.split(".")[-1],
        "attributes": [{"path": p, "before": "old", "after": "new"} for p in paths],
    }


def findings(conn: psycopg.Connection, subject: str) -> dict[str, dict[str, Any]]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    rows = cur.execute("SELECT * FROM nightshift.findings WHERE subject = %s", (subject,)).fetchall()
    return {row["resource_address"]: row for row in rows}


def one(conn: psycopg.Connection, query: str, *params: Any) -> Any:
    row = conn.execute(query, params or None).fetchone()
    assert row is not None
    return row[0]


def notifications(conn: psycopg.Connection) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute("SELECT * FROM nightshift.notifications ORDER BY id").fetchall()


LOGS = drift("aws_s3_bucket.logs", "tags.hotfix", "tags.env")
WEB = drift("aws_security_group.web", "ingress")


def test_a_new_finding_is_open_and_notified(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn, channel="#infra")
    scan_id = scan(conn, subject, [LOGS, WEB])

    found = findings(conn, subject)
    assert {a: f["status"] for a, f in found.items()} == {
        "aws_s3_bucket.logs": "OPEN", "aws_security_group.web": "OPEN"}
    logs = found["aws_s3_bucket.logs"]
    assert (logs["kind"], logs["resource_type"], logs["change_type"], logs["occurrences"]) == (
        "drift", "aws_s3_bucket", "update", 1)
    assert logs["first_scan_id"] == logs["last_scan_id"] == scan_id
    assert logs["details"]["attributes"][0] == {"path": "tags.hotfix", "before": "old", "after": "new"}
    assert "fingerprint" not in logs["details"] and logs["details"]["name"] == "logs"

    [note] = notifications(conn)
    assert (note["channel"], note["template"], note["status"], note["scan_id"]) == (
        "#infra", "drift-changed", "pending", scan_id)
    assert note["payload"]["counts"] == {
        "new": 2, "reopened": 0, "resolved": 0, "unsuppressed": 0, "suppressed": 0, "open": 2}
    assert note["payload"]["target"] == "acme-network/infra/network"
    assert [f["address"] for f in note["payload"]["new"]] == ["aws_s3_bucket.logs", "aws_security_group.web"]
    assert note["payload"]["new"][0]["attributes"] == ["tags.hotfix", "tags.env"]

    task = conn.execute("SELECT status FROM nightshift.tasks WHERE id = (SELECT task_id FROM"
                        " nightshift.scans WHERE id = %s)", (scan_id,)).fetchone()
    assert task == ("done",)
    summary = conn.execute("SELECT summary FROM nightshift.scans WHERE id = %s", (scan_id,)).fetchone()
    assert summary is not None and summary[0]["findings"]["new"] == 2 and summary[0]["resources"] == 3


def test_seen_again_counts_without_a_new_notification(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn)
    first = scan(conn, subject, [LOGS])
    before = findings(conn, subject)["aws_s3_bucket.logs"]
    second = scan(conn, subject, [LOGS])

    after = findings(conn, subject)["aws_s3_bucket.logs"]
    assert after["id"] == before["id"]
    assert (after["status"], after["occurrences"], after["reopened_count"]) == ("OPEN", 2, 0)
    assert after["last_seen"] > before["last_seen"] and after["first_seen"] == before["first_seen"]
    assert (after["first_scan_id"], after["last_scan_id"]) == (first, second)
    assert len(notifications(conn)) == 1, "an unchanged open set must not notify again"


def test_absent_from_a_successful_scan_resolves_and_seen_again_reopens(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn)
    scan(conn, subject, [LOGS, WEB])
    scan(conn, subject, [WEB])

    found = findings(conn, subject)
    assert found["aws_s3_bucket.logs"]["status"] == "RESOLVED"
    assert found["aws_s3_bucket.logs"]["resolved_at"] is not None
    assert found["aws_security_group.web"]["status"] == "OPEN"
    resolved_note = notifications(conn)[-1]["payload"]
    assert resolved_note["counts"]["resolved"] == 1 and resolved_note["counts"]["open"] == 1
    assert [f["address"] for f in resolved_note["resolved"]] == ["aws_s3_bucket.logs"]

    clean = scan(conn, subject, [])
    assert one(conn, "SELECT status FROM nightshift.scans WHERE id = %s", clean) == "CLEAN"
    assert {f["status"] for f in findings(conn, subject).values()} == {"RESOLVED"}

    scan(conn, subject, [LOGS])
    logs = findings(conn, subject)["aws_s3_bucket.logs"]
    assert (logs["status"], logs["reopened_count"], logs["resolved_at"]) == ("OPEN", 1, None)
    assert logs["occurrences"] == 2
    reopened_note = notifications(conn)[-1]["payload"]
    assert reopened_note["counts"]["reopened"] == 1 and reopened_note["counts"]["new"] == 0
    assert len(notifications(conn)) == 4  # new, resolved, resolved, reopened: one per change


def test_an_error_scan_resolves_nothing(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn)
    scan(conn, subject, [LOGS])
    task_id = claim(conn, subject)
    scan_id = record(conn, task_id, [], status="ERROR", error="Error: Invalid provider configuration")

    assert findings(conn, subject)["aws_s3_bucket.logs"]["status"] == "OPEN"
    row = conn.execute("SELECT status, error FROM nightshift.scans WHERE id = %s", (scan_id,)).fetchone()
    assert row == ("ERROR", "Error: Invalid provider configuration")
    assert one(conn, "SELECT status FROM nightshift.tasks WHERE id = %s", task_id) == "done"
    # no findings transition from an ERROR scan; since the notifications issue, it says the target's
    # scans started failing (an ERROR used to be silent, which hid a broken pipeline)
    assert [n["template"] for n in notifications(conn)] == ["drift-changed", "scan-failing"]


def test_a_scan_resolves_only_the_kinds_it_owns(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn)
    check = {"kind": "compliance", "fingerprint": "compliance:CKV_AWS_18:aws_s3_bucket.logs",
             "address": "aws_s3_bucket.logs", "check_id": "CKV_AWS_18", "severity": "low"}
    scan(conn, subject, [check], kind="compliance-scan", status="FAILED_CHECKS")
    pending = drift("aws_iam_role.scanner", "max_session_duration", kind="pending-change")
    scan(conn, subject, [LOGS, pending])
    scan(conn, subject, [])  # a clean drift scan

    rows = conn.execute("SELECT kind, status FROM nightshift.findings WHERE subject = %s ORDER BY kind",
                        (subject,)).fetchall()
    assert rows == [("compliance", "OPEN"), ("drift", "RESOLVED"), ("pending-change", "RESOLVED")]


def test_suppressed_findings_are_recorded_and_come_back_when_it_expires(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn)
    other = make_pipeline(conn, name="payments")
    conn.execute(
        "INSERT INTO nightshift.suppressions (kind, subject_pattern, address_pattern, attribute_pattern,"
        " owner, reason, expires_at) VALUES ('drift', %s, 'aws_s3_bucket.*', 'tags.*', 'alice',"
        " 'tags are edited by the cost tool', now() + interval '1 day')",
        (subject,),
    )
    tags_and_acl = drift("aws_s3_bucket.archive", "tags.owner", "acl")
    scan(conn, subject, [LOGS, tags_and_acl, WEB])
    scan(conn, other, [LOGS])

    found = findings(conn, subject)
    assert found["aws_s3_bucket.logs"]["status"] == "SUPPRESSED"
    assert found["aws_s3_bucket.logs"]["suppression_id"] is not None
    # one attribute outside the glob: the finding is not covered
    assert found["aws_s3_bucket.archive"]["status"] == "OPEN"
    assert found["aws_security_group.web"]["status"] == "OPEN"
    assert findings(conn, other)["aws_s3_bucket.logs"]["status"] == "OPEN", "subject glob ignored"
    first_note = notifications(conn)[0]["payload"]
    assert [f["address"] for f in first_note["new"]] == ["aws_s3_bucket.archive", "aws_security_group.web"]

    notes = len(notifications(conn))
    scan(conn, subject, [LOGS, tags_and_acl, WEB])
    assert findings(conn, subject)["aws_s3_bucket.logs"]["status"] == "SUPPRESSED"
    assert len(notifications(conn)) == notes, "still suppressed: nothing changed"

    conn.execute("UPDATE nightshift.suppressions SET expires_at = now() - interval '1 second'")
    scan(conn, subject, [LOGS, tags_and_acl, WEB])
    logs = findings(conn, subject)["aws_s3_bucket.logs"]
    assert (logs["status"], logs["suppression_id"], logs["reopened_count"]) == ("OPEN", None, 0)
    payload = notifications(conn)[-1]["payload"]
    assert payload["counts"]["unsuppressed"] == 1
    assert [f["address"] for f in payload["unsuppressed"]] == ["aws_s3_bucket.logs"]
    assert payload["counts"]["open"] == 3


def test_a_new_suppression_takes_an_open_finding_out_of_the_open_set(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn)
    scan(conn, subject, [WEB])
    conn.execute("INSERT INTO nightshift.suppressions (address_pattern, owner, reason)"
                 " VALUES ('aws_security_group.*', 'bob', 'managed by the firewall team')")
    scan(conn, subject, [WEB])
    assert findings(conn, subject)["aws_security_group.web"]["status"] == "SUPPRESSED"
    payload = notifications(conn)[-1]["payload"]
    assert payload["counts"]["suppressed"] == 1 and payload["counts"]["open"] == 0
    # a suppressed finding that disappears is resolved, silently: it was not in the open set
    scan(conn, subject, [])
    assert findings(conn, subject)["aws_security_group.web"]["status"] == "RESOLVED"
    assert len(notifications(conn)) == 2


def test_a_stale_holder_stores_nothing(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn)
    task_id = claim(conn, subject, attempt=2)  # the lease expired and someone else holds attempt 2
    assert record(conn, task_id, [LOGS], attempt=1) is None
    assert conn.execute("SELECT count(*) FROM nightshift.scans").fetchone() == (0,)
    assert findings(conn, subject) == {}
    assert notifications(conn) == []
    assert conn.execute("SELECT status FROM nightshift.tasks WHERE id = %s", (task_id,)).fetchone() == (
        "running",)


def test_a_replayed_result_is_stored_once(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn)
    task_id = claim(conn, subject)
    first = record(conn, task_id, [LOGS])
    again = record(conn, task_id, [LOGS])
    assert first is not None and again == first
    assert conn.execute("SELECT count(*) FROM nightshift.scans").fetchone() == (1,)
    assert findings(conn, subject)["aws_s3_bucket.logs"]["occurrences"] == 1
    assert len(notifications(conn)) == 1


@pytest.mark.parametrize("known", [False, True], ids=["first findings of the subject", "known subject"])
def test_two_findings_with_one_fingerprint_are_refused_whole(conn: psycopg.Connection, known: bool) -> None:
    """As the contract refuses them in Python (contract.checked), for a caller of the SQL itself."""
    subject = make_pipeline(conn)
    if known:
        scan(conn, subject, [LOGS])
    task_id = claim(conn, subject)
    with pytest.raises(psycopg.errors.InvalidParameterValue,
                       match=r"two findings share the fingerprint drift:aws_s3_bucket\.logs"):
        record(conn, task_id, [drift("aws_s3_bucket.other", "tags"), LOGS, dict(LOGS, severity="high")])


BAD_FINDINGS = {
    "missing fingerprint": {"kind": "drift", "address": "x.y"},
    "empty kind": {"kind": "", "fingerprint": "drift:x.y"},
    "not an object": "drift:x.y",
    "an array": ["drift", "x.y"],
}


@pytest.mark.parametrize("known", [False, True], ids=["first findings of the subject", "known subject"])
@pytest.mark.parametrize("bad", list(BAD_FINDINGS), ids=list(BAD_FINDINGS))
def test_a_finding_without_kind_or_fingerprint_is_named(conn: psycopg.Connection, known: bool,
                                                          bad: str) -> None:
    """Checked while the findings are written (no pass over them first), on both ways in: a plain
    insert for a subject's first findings, the upsert afterwards."""
    subject = make_pipeline(conn)
    if known:
        scan(conn, subject, [WEB])
    task_id = claim(conn, subject)
    with pytest.raises(psycopg.errors.InvalidParameterValue,
                       match=r"every finding needs a kind and a fingerprint; got "):
        record(conn, task_id, [LOGS, BAD_FINDINGS[bad]], status="DRIFTED")  # type: ignore[list-item]
    assert findings(conn, subject).keys() == ({"aws_security_group.web"} if known else set())


def test_first_findings_written_meanwhile_by_another_transaction_are_updated(db_url: str) -> None:
    """A subject's first findings are plainly inserted; should another transaction insert one of them
    first, the insert fails on the unique key and the upsert takes over: nothing is lost or doubled."""
    with psycopg.connect(db_url, autocommit=True) as setup:
        subject = make_pipeline(setup)
        # one task per kind and subject is in flight: the other writer is a plug-in's scan of it
        mine, theirs = claim(setup, subject), claim(setup, subject, kind="plugin-scan")
    with psycopg.connect(db_url) as other, psycopg.connect(db_url) as conn:
        record(other, theirs, [LOGS])  # not committed yet: holds the key of LOGS
        pid = one(other, "SELECT pg_backend_pid()")

        def commit_once_waited_for() -> None:
            with psycopg.connect(db_url, autocommit=True) as watcher:
                for _ in range(600):
                    if one(watcher, "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid <> %s", pid):
                        break
                    time.sleep(0.05)
            other.commit()

        committer = threading.Thread(target=commit_once_waited_for)
        committer.start()
        scan_id = record(conn, mine, [LOGS, WEB])  # waits for `other`, then falls back to the upsert
        conn.commit()
        committer.join(timeout=60)
        found = findings(conn, subject)
        assert {a: (f["status"], f["occurrences"], f["last_scan_id"]) for a, f in found.items()} == {
            "aws_s3_bucket.logs": ("OPEN", 2, scan_id), "aws_security_group.web": ("OPEN", 1, scan_id)}
        summary = one(conn, "SELECT summary FROM nightshift.scans WHERE id = %s", scan_id)
        assert summary["findings"]["seen"] == 2


def test_the_result_is_one_transaction(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        subject = make_pipeline(conn)
        task_id = claim(conn, subject)
        conn.commit()
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="kind and a fingerprint"):
            record(conn, task_id, [LOGS, {"kind": "drift", "address": "x.y"}])
        conn.rollback()
        row = conn.execute("SELECT status FROM nightshift.tasks WHERE id = %s", (task_id,)).fetchone()
        assert row == ("running",), "a failed result must leave the task to its holder"
        assert conn.execute("SELECT count(*) FROM nightshift.scans").fetchone() == (0,)


SWITCHES = [
    (True, True, True, True),
    (False, True, True, False),
    (True, False, True, False),
    (True, True, False, False),
]


@pytest.mark.parametrize(("pr", "repo", "org", "enqueued"), SWITCHES)
def test_remediation_is_enqueued_only_when_every_switch_is_on(
    conn: psycopg.Connection, pr: bool, repo: bool, org: bool, enqueued: bool,
) -> None:
    subject = make_pipeline(conn, auto_create_pr=pr, repo_auto=repo, org_auto=org)
    scan_id = scan(conn, subject, [LOGS, drift("aws_iam_role.x", "y", kind="pending-change")])
    tasks = conn.execute(
        "SELECT subject, payload, status FROM nightshift.tasks WHERE kind = 'drift-remediation'"
    ).fetchall()
    if not enqueued:
        assert tasks == []
        return
    logs_id = findings(conn, subject)["aws_s3_bucket.logs"]["id"]
    [(task_subject, payload, status)] = tasks
    assert (task_subject, status) == (subject, "queued")
    assert (payload["scan_id"], payload["finding_ids"], payload["update"]) == (scan_id, [logs_id], False)
    assert [f["address"] for f in payload["findings"]] == ["aws_s3_bucket.logs"]
    remediation = conn.execute("SELECT subject, finding_ids, status FROM nightshift.remediations").fetchall()
    assert remediation == [(subject, [logs_id], "pending")]

    # the agent opened its pull request; the same drift again: that remediation covers it
    task_id = one(conn, "SELECT id FROM nightshift.tasks WHERE kind = 'drift-remediation'")
    conn.execute("UPDATE nightshift.tasks SET status = 'running', attempt = 1, locked_by = 'test',"
                 " locked_until = now() + interval '1 hour', started_at = now() WHERE id = %s", (task_id,))
    conn.execute("SELECT nightshift.record_result(%s, 1, %s)", (task_id, Jsonb({"remediation": {
        "status": "pr_opened", "branch": payload["branch"], "commit": "abc123", "pr_number": 7}})))
    scan(conn, subject, [LOGS])
    assert conn.execute("SELECT count(*) FROM nightshift.remediations").fetchone() == (1,)
    assert one(conn, "SELECT count(*) FROM nightshift.tasks WHERE kind = 'drift-remediation'") == 1
    # new drift on top: the same remediation updates its branch with both findings (no second PR)
    scan(conn, subject, [LOGS, WEB])
    web_id = findings(conn, subject)["aws_security_group.web"]["id"]
    assert conn.execute("SELECT finding_ids, status FROM nightshift.remediations").fetchall() == [
        (sorted([logs_id, web_id]), "pending")]
    update = one(conn, "SELECT payload FROM nightshift.tasks"
                       " WHERE kind = 'drift-remediation' AND status = 'queued'")
    assert (update["update"], update["expected_head"]) == (True, "abc123")
    assert update["branch"] == payload["branch"]


def test_no_remediation_for_pending_changes_alone(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn, auto_create_pr=True, repo_auto=True, org_auto=True)
    scan(conn, subject, [drift("aws_iam_role.x", "y", kind="pending-change")])
    assert one(conn, "SELECT count(*) FROM nightshift.tasks WHERE kind = 'drift-remediation'") == 0


def test_notifications_carry_no_values(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn)
    secret = {**drift("aws_ssm_parameter.db_password", "value"), "attributes": [
        {"path": "value", "before": "hunter2-before", "after": "hunter2-after"}]}
    scan(conn, subject, [secret])
    scan(conn, subject, [])
    text = json.dumps([n["payload"] for n in notifications(conn)])
    assert "value" in text and "hunter2" not in text


def test_channel_falls_back_to_the_default_setting(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn)
    conn.execute("UPDATE nightshift.settings SET value = '#ops' WHERE key = 'notifications.default_channel'")
    scan(conn, subject, [LOGS])
    assert notifications(conn)[0]["channel"] == "#ops"


def test_a_long_list_is_capped_in_the_notification(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn)
    many = [drift(f"aws_s3_bucket.b{i:03d}", "tags.x") for i in range(120)]
    scan(conn, subject, many)
    payload = notifications(conn)[0]["payload"]
    assert payload["counts"]["new"] == 120 and len(payload["new"]) == 50 and payload["truncated"] is True


def test_open_findings_view_names_the_target(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn)
    scan(conn, subject, [LOGS, WEB])
    scan(conn, subject, [WEB])
    rows = conn.execute(
        "SELECT target, resource_address, attributes FROM nightshift.open_findings").fetchall()
    assert rows == [("acme-network/infra/network", "aws_security_group.web", ["ingress"])]


@pytest.mark.parametrize(("glob", "text", "matches"), [
    ("*", "anything at all", True),
    ("aws_s3_bucket.*", "aws_s3_bucket.logs", True),
    ("aws_s3_bucket.*", "aws_s3_bucketXlogs", False),
    ('module.team_bucket["blue"].*', 'module.team_bucket["blue"].aws_s3_bucket.this', True),
    ('module.team_bucket["blue"].*', 'module.team_bucket["green"].aws_s3_bucket.this', False),
    ("tags.?", "tags.a", True),
    ("tags.?", "tags.ab", False),
    ("a+b(c)|d$^\\", "a+b(c)|d$^\\", True),
    ("a+b", "aab", False),
    ("pipeline/4", "pipeline/42", False),
])
def test_glob_regex(conn: psycopg.Connection, glob: str, text: str, matches: bool) -> None:
    row = conn.execute("SELECT %s ~ nightshift.glob_regex(%s)", (text, glob)).fetchone()
    assert row == (matches,)


def test_task_targets_of_a_pipeline(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn, channel="#infra")
    row = conn.execute("SELECT nightshift.task_targets(%s)", (subject,)).fetchone()
    assert row is not None
    targets = row[0]
    assert set(targets) == {"pipeline", "repository", "organization", "schedule", "remediations", "forge"}
    assert (targets["remediations"], targets["forge"]) == ([], None)  # no open remediation pull request
    assert targets["pipeline"]["id"] == int(subject.split("/")[1])
    assert targets["pipeline"]["var_files"] == [] and targets["pipeline"]["working_directory"] == "."
    assert targets["repository"]["url"] == "/srv/infra" and targets["repository"]["iac_tool"] == "terraform"
    assert targets["organization"]["name"] == "acme-network"
    assert targets["schedule"]["notification_channel"] == "#infra"


def test_task_targets_of_an_organization_and_errors(conn: psycopg.Connection) -> None:
    make_pipeline(conn)
    org_id = conn.execute("SELECT id FROM nightshift.organizations").fetchone()[0]  # type: ignore[index]
    row = conn.execute("SELECT nightshift.task_targets(%s)", (f"organization/{org_id}",)).fetchone()
    assert row is not None and row[0]["organization"]["id"] == org_id
    # every organization gets a cost-analysis schedule when it is created (scheduling's trigger)
    assert row[0]["schedule"]["kind"] == "cost-analysis"
    with pytest.raises(psycopg.errors.NoDataFound, match="pipeline/999999 does not exist"):
        conn.execute("SELECT nightshift.task_targets('pipeline/999999')")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="malformed subject 'pipe/1; drop'"):
        conn.execute("SELECT nightshift.task_targets('pipe/1; drop')")
