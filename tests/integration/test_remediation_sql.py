"""Drift remediation in SQL: the guard rails before a task is enqueued (with the reason visible when
refused), the trail of the remediations table, and verification by the next scan."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tests.integration.test_findings_lifecycle import (
    LOGS,
    WEB,
    claim,
    drift,
    make_pipeline,
    notifications,
    one,
    scan,
)

ARCHIVE_DELETED = {**drift("aws_s3_bucket.archive"), "change": "delete", "attributes": []}
ROLE_REPLACED = {**drift("aws_iam_role.scanner", "name"), "change": "replace"}


def opted_in(conn: psycopg.Connection, name: str = "network") -> str:
    return make_pipeline(
        conn, auto_create_pr=True, repo_auto=True, org_auto=True, channel="#infra", name=name
    )


def remediations(conn: psycopg.Connection, subject: str | None = None) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute(
        "SELECT * FROM nightshift.remediations WHERE %(s)s::text IS NULL OR subject = %(s)s ORDER BY id",
        {"s": subject},
    ).fetchall()


def remediation_tasks(conn: psycopg.Connection) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute(
        "SELECT * FROM nightshift.tasks WHERE kind = 'drift-remediation' ORDER BY id"
    ).fetchall()


def finish(conn: psycopg.Connection, task_id: int, remediation: dict[str, Any]) -> None:
    """The remediation task claimed and its agent's result recorded, as the dispatcher does."""
    conn.execute(
        "UPDATE nightshift.tasks SET status = 'running', attempt = 1, locked_by = 'test',"
        " locked_until = now() + interval '1 hour', started_at = now() WHERE id = %s",
        (task_id,),
    )
    conn.execute("SELECT nightshift.record_result(%s, 1, %s)", (task_id, Jsonb({"remediation": remediation})))


def repository_of(conn: psycopg.Connection, subject: str) -> int:
    return one(conn, "SELECT repository_id FROM nightshift.pipelines WHERE 'pipeline/' || id = %s", subject)


def test_a_deleted_stateful_resource_is_refused_with_its_reason_and_the_rest_goes_ahead(
    conn: psycopg.Connection,
) -> None:
    subject = opted_in(conn)
    scan(conn, subject, [ARCHIVE_DELETED])
    [refused] = remediations(conn)
    assert refused["status"] == "refused" and refused["task_id"] is None
    assert "aws_s3_bucket.archive (delete)" in refused["reason"]
    assert "remediate_stateful" in refused["reason"]
    assert remediation_tasks(conn) == []

    # refused again on the next scan: the same row, updated, and the other drift goes ahead
    scan(conn, subject, [ARCHIVE_DELETED, LOGS, ROLE_REPLACED])
    rows = remediations(conn)
    assert [r["status"] for r in rows] == ["refused", "pending"]
    [task] = remediation_tasks(conn)
    assert [f["address"] for f in task["payload"]["findings"]] == [
        "aws_iam_role.scanner",
        "aws_s3_bucket.logs",
    ]
    assert task["payload"]["branch"] == f"nightshift/drift-network-{rows[1]['id']}"

    # allowed explicitly for the repository: the bucket is remediated too (the next remediation)
    conn.execute(
        "UPDATE nightshift.repositories SET remediate_stateful = true WHERE id = %s",
        (repository_of(conn, subject),),
    )
    conn.execute("UPDATE nightshift.tasks SET status = 'cancelled' WHERE kind = 'drift-remediation'")
    scan(conn, subject, [ARCHIVE_DELETED, LOGS, ROLE_REPLACED])
    latest = remediations(conn)[-1]
    assert latest["status"] == "pending" and len(latest["finding_ids"]) == 3
    assert "cancelled" in remediations(conn)[1]["reason"]  # the one whose task ended without a result


def test_the_stateful_list_is_a_table_an_operator_extends(conn: psycopg.Connection) -> None:
    subject = opted_in(conn)
    scan(conn, subject, [ROLE_REPLACED])
    assert [r["status"] for r in remediations(conn)] == ["pending"]  # an IAM role holds no data
    conn.execute("UPDATE nightshift.tasks SET status = 'cancelled' WHERE kind = 'drift-remediation'")
    conn.execute(
        "INSERT INTO nightshift.stateful_resource_types (type, description)"
        " VALUES ('aws_iam_role', 'trust relationships others depend on')"
    )
    scan(conn, subject, [ROLE_REPLACED, LOGS])
    assert [r["status"] for r in remediations(conn)] == ["failed", "refused", "pending"]


def test_a_freeze_window_refuses_and_says_until_when(conn: psycopg.Connection) -> None:
    subject = opted_in(conn)
    repository = repository_of(conn, subject)
    conn.execute(
        "INSERT INTO nightshift.remediation_freezes (repository_id, starts_at, ends_at, reason)"
        " VALUES (%s, now() - interval '1 hour', '2099-01-08 00:00+00', 'release week')",
        (repository,),
    )
    scan(conn, subject, [LOGS])
    [refused] = remediations(conn)
    assert refused["status"] == "refused"
    assert "release week" in refused["reason"] and "2099-01-08 00:00 UTC" in refused["reason"]
    assert remediation_tasks(conn) == []
    # a freeze of another repository, or one that is over, does not count
    conn.execute(
        "UPDATE nightshift.remediation_freezes SET ends_at = now() - interval '1 minute',"
        " starts_at = now() - interval '2 hours'"
    )
    scan(conn, subject, [LOGS, WEB])
    assert [r["status"] for r in remediations(conn)] == ["refused", "pending"]


def test_an_organization_wide_freeze_covers_every_repository(conn: psycopg.Connection) -> None:
    subject = opted_in(conn)
    organization = one(
        conn,
        "SELECT organization_id FROM nightshift.repositories WHERE id = %s",
        repository_of(conn, subject),
    )
    conn.execute(
        "INSERT INTO nightshift.remediation_freezes (organization_id, starts_at, ends_at, reason)"
        " VALUES (%s, now() - interval '1 hour', now() + interval '1 day', 'audit')",
        (organization,),
    )
    scan(conn, subject, [LOGS])
    assert "audit" in remediations(conn)[0]["reason"]


def test_the_repositorys_daily_limit(conn: psycopg.Connection) -> None:
    first = opted_in(conn)
    repository = repository_of(conn, first)
    conn.execute(
        "UPDATE nightshift.repositories SET remediation_daily_pr_limit = 2 WHERE id = %s", (repository,)
    )
    # two more pipelines of the same repository
    subjects = [first]
    for name in ("dns", "edge"):
        pipeline = one(
            conn,
            "INSERT INTO nightshift.pipelines (repository_id, name) VALUES (%s, %s) RETURNING id",
            repository,
            name,
        )
        conn.execute(
            "INSERT INTO nightshift.schedules (kind, pipeline_id, auto_create_pr)"
            " VALUES ('drift-scan', %s, true)",
            (pipeline,),
        )
        subjects.append(f"pipeline/{pipeline}")
    for subject in subjects:
        scan(conn, subject, [LOGS])
    assert [r["status"] for r in remediations(conn)] == ["pending", "pending", "refused"]
    refused = remediations(conn)[2]
    assert refused["subject"] == subjects[2]
    assert "repository infra has had 2 remediation pull requests" in refused["reason"]
    # a day later the two opened ones no longer count
    for task in remediation_tasks(conn):
        finish(conn, task["id"], {"status": "pr_opened", "branch": task["payload"]["branch"]})
    conn.execute("UPDATE nightshift.remediations SET pr_opened_at = now() - interval '25 hours'")
    scan(conn, subjects[2], [LOGS, WEB])
    assert remediations(conn, subjects[2])[-1]["status"] == "pending"


def test_the_organizations_daily_limit(conn: psycopg.Connection) -> None:
    subject = opted_in(conn)
    conn.execute("UPDATE nightshift.organizations SET remediation_daily_pr_limit = 0")
    scan(conn, subject, [LOGS])
    [refused] = remediations(conn)
    assert "organization acme-network has had 0 remediation pull requests" in refused["reason"]


def test_switches_off_write_nothing(conn: psycopg.Connection) -> None:
    subject = make_pipeline(conn, auto_create_pr=True, repo_auto=False, org_auto=True)
    scan(conn, subject, [LOGS, ARCHIVE_DELETED])
    assert remediations(conn) == [] and remediation_tasks(conn) == []


def test_a_pull_request_opened_is_notified_once_and_verified_by_the_scan_that_no_longer_sees_the_drift(
    conn: psycopg.Connection,
) -> None:
    subject = opted_in(conn)
    scan(conn, subject, [LOGS])
    [task] = remediation_tasks(conn)
    finish(
        conn,
        task["id"],
        {
            "status": "pr_opened",
            "branch": task["payload"]["branch"],
            "commit": "c0ffee",
            "pr_url": "https://github.example/acme/infra/pull/9",
            "pr_number": 9,
            "created": True,
            "title": "Fix drift of network: adopt 1 resource(s)",
            "fixes": [{"finding_id": task["payload"]["finding_ids"][0], "fix": "adopt"}],
        },
    )
    [row] = remediations(conn)
    assert (row["status"], row["pr_number"], row["commit_sha"], row["task_id"]) == (
        "pr_opened",
        9,
        "c0ffee",
        task["id"],
    )
    ready = [n for n in notifications(conn) if n["template"] == "remediation-ready"]
    assert [
        (n["channel"], n["payload"]["pr_url"], n["payload"]["finding_count"], n["payload"]["fixes"])
        for n in ready
    ] == [("#infra", "https://github.example/acme/infra/pull/9", 1, {"adopt": 1})]

    # still drifting (not merged yet): nothing changes; the drift gone: verified with that scan
    scan(conn, subject, [LOGS])
    assert remediations(conn)[0]["status"] == "pr_opened"
    clean = scan(conn, subject, [])
    [row] = remediations(conn)
    assert (row["status"], row["verified_scan_id"]) == ("verified", clean)
    assert row["finished_at"] is not None


def test_merged_but_still_drifting_fails_with_what_remains(conn: psycopg.Connection) -> None:
    subject = opted_in(conn)
    scan(conn, subject, [LOGS, WEB])
    [task] = remediation_tasks(conn)
    finish(conn, task["id"], {"status": "pr_opened", "branch": task["payload"]["branch"]})
    merged = one(
        conn,
        "SELECT nightshift.remediation_merged(%s, %s, now() - interval '1 minute')",
        repository_of(conn, subject),
        task["payload"]["branch"],
    )
    assert merged == remediations(conn)[0]["id"]
    scan(conn, subject, [WEB])
    [row] = remediations(conn)[:1]
    assert row["status"] == "failed"
    assert "still sees the drift of aws_security_group.web" in row["reason"]
    # a failed remediation frees the subject: the next scan asks again
    assert [r["status"] for r in remediations(conn)] == ["failed", "pending"]


def test_a_failed_remediation_keeps_the_findings_open_and_its_reason(conn: psycopg.Connection) -> None:
    subject = opted_in(conn)
    scan(conn, subject, [LOGS])
    [task] = remediation_tasks(conn)
    finish(conn, task["id"], {"status": "failed", "reason": "the remote refused the push of nightshift/x"})
    [row] = remediations(conn)
    assert (row["status"], row["reason"]) == ("failed", "the remote refused the push of nightshift/x")
    assert (
        one(
            conn, "SELECT status::text FROM nightshift.findings WHERE resource_address = 'aws_s3_bucket.logs'"
        )
        == "OPEN"
    )
    assert [n for n in notifications(conn) if n["template"] == "remediation-ready"] == []


@pytest.mark.parametrize("bad", [{"status": "done"}, {"reason": "x"}, {"status": "pr_opened"}])
def test_a_malformed_remediation_result_is_refused(conn: psycopg.Connection, bad: dict[str, Any]) -> None:
    subject = opted_in(conn)
    scan(conn, subject, [LOGS])
    [task] = remediation_tasks(conn)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="remediation"):
        finish(conn, task["id"], bad)


def test_the_payload_carries_no_secret_and_masked_values_stay_masked(conn: psycopg.Connection) -> None:
    subject = opted_in(conn)
    secret = {
        **drift("aws_ssm_parameter.db_password"),
        "attributes": [{"path": "value", "before": "(sensitive)", "after": "(sensitive)"}],
    }
    scan(conn, subject, [secret])
    [task] = remediation_tasks(conn)
    assert task["payload"]["findings"][0]["attributes"] == [
        {"path": "value", "before": "(sensitive)", "after": "(sensitive)"}
    ]


def test_a_merged_webhook_marks_the_remediation_merged_and_another_close_is_ignored(
    conn: psycopg.Connection,
) -> None:
    subject = opted_in(conn)
    conn.execute(
        "UPDATE nightshift.repositories SET full_name = 'acme/infra' WHERE id = %s",
        (repository_of(conn, subject),),
    )
    scan(conn, subject, [LOGS])
    [task] = remediation_tasks(conn)
    finish(conn, task["id"], {"status": "pr_opened", "branch": task["payload"]["branch"]})

    def deliver(delivery: str, branch: str, merged: bool) -> str:
        payload = {
            "action": "closed",
            "number": 9,
            "repository": {"full_name": "acme/infra"},
            "pull_request": {
                "merged": merged,
                "merged_at": "2026-11-28T07:00:00Z" if merged else None,
                "head": {"ref": branch, "sha": "c0ffee"},
            },
        }
        return one(
            conn,
            "SELECT outcome FROM nightshift.receive_github_delivery(%s, 'pull_request', %s)",
            delivery,
            Jsonb(payload),
        )

    assert deliver("d-1", task["payload"]["branch"], merged=False) == "ignored"  # closed unmerged
    assert deliver("d-2", "feature/other", merged=True) == "ignored"
    assert remediations(conn)[0]["status"] == "pr_opened"
    assert deliver("d-3", task["payload"]["branch"], merged=True) == "remediation-merged"
    [row] = remediations(conn)
    assert row["status"] == "merged" and row["merged_at"].isoformat() == "2026-11-28T07:00:00+00:00"


def test_the_cli_lists_shows_and_marks_merged(
    conn: psycopg.Connection, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from dispatcher.cli import main

    subject = opted_in(conn)
    scan(conn, subject, [ARCHIVE_DELETED, LOGS])
    [task] = remediation_tasks(conn)
    finish(conn, task["id"], {"status": "pr_opened", "branch": task["payload"]["branch"], "pr_number": 4,
                              "fixes": [{"finding_id": 1, "address": "aws_s3_bucket.logs", "fix": "adopt",
                                         "why": "every drifted attribute is a literal in the code"}]})
    refused, opened = remediations(conn)
    capsys.readouterr()
    assert main(["remediations", "list", "--json", "--database-url", db_url]) == 0
    listed = capsys.readouterr().out
    assert '"status": "refused"' in listed and "aws_s3_bucket.archive (delete)" in listed
    assert '"pull_request": "#4"' in listed
    assert main(["remediations", "show", str(opened["id"]), "--database-url", db_url]) == 0
    assert "adopt   aws_s3_bucket.logs: every drifted attribute is a literal" in capsys.readouterr().out
    assert main(["remediations", "merged", str(refused["id"]), "--database-url", db_url]) == 3
    assert "no remediation" in capsys.readouterr().err
    assert main(["remediations", "merged", str(opened["id"]), "--database-url", db_url]) == 0
    assert remediations(conn)[1]["status"] == "merged"


def test_merging_a_local_pull_request_marks_its_remediation_merged(
    conn: psycopg.Connection, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from dispatcher.cli import main

    subject = opted_in(conn)
    repository = repository_of(conn, subject)
    scan(conn, subject, [LOGS])
    [task] = remediation_tasks(conn)
    branch = task["payload"]["branch"]
    conn.execute("UPDATE nightshift.tasks SET status = 'running', attempt = 1, locked_by = 'test',"
                 " locked_until = now() + interval '1 hour', started_at = now() WHERE id = %s", (task["id"],))
    conn.execute("SELECT nightshift.record_result(%s, 1, %s)", (task["id"], Jsonb({
        "forge": [{"op": "open", "repository_id": repository, "head_ref": branch, "base_ref": "main",
                   "head_sha": "c0ffee", "title": "Fix drift", "body": "..."}],
        "remediation": {"status": "pr_opened", "branch": branch}})))
    [row] = remediations(conn)
    assert (row["status"], row["pr_number"]) == ("pr_opened", 1)  # numbered by the local forge
    assert main(["prs", "close", str(repository), "1", "--merged", "--database-url", db_url]) == 0
    assert remediations(conn)[0]["status"] == "merged"
    scan(conn, subject, [])
    assert remediations(conn)[0]["status"] == "verified"


def scan_seeing_merged(conn: psycopg.Connection, subject: str, found: list[dict[str, Any]],
                       merged: list[dict[str, Any]]) -> int:
    """A drift scan whose agent reports remediation pull requests merged into the code it scanned."""
    task_id = claim(conn, subject)
    status = "DRIFTED" if found else "CLEAN"
    result = {"scan": {"status": status, "summary": {}, "findings": found, "artifacts": {},
                       "started_at": "2026-11-29T01:00:00+00:00"}, "merged": merged}
    return one(conn, "SELECT scan_id FROM nightshift.record_result(%s, 1, %s)", task_id, Jsonb(result))


def test_a_scan_that_saw_the_branch_merged_marks_it_and_fails_it_with_what_remains(
    conn: psycopg.Connection,
) -> None:
    subject, other = opted_in(conn), opted_in(conn, "other")
    scan(conn, subject, [LOGS, WEB])
    [task] = remediation_tasks(conn)
    branch = task["payload"]["branch"]
    finish(conn, task["id"], {"status": "pr_opened", "branch": branch, "commit": "c0ffee", "pr_number": 4})
    [row] = remediations(conn)
    # the scan's targets name the open pull request, so the agent knows what to look for
    targets = one(conn, "SELECT nightshift.task_targets(%s)", subject)
    assert [(r["id"], r["branch"], r["commit"], r["pr_number"]) for r in targets["remediations"]] == [
        (row["id"], branch, "c0ffee", 4)
    ]
    assert targets["forge"]["kind"] == "github"  # the repository's forge, for squash merges

    # what does not match is ignored: another subject's scan, another commit, another pull request
    seen = {"remediation_id": row["id"], "branch": branch, "commit": "c0ffee", "how": "contained"}
    scan_seeing_merged(conn, other, [], [seen])
    scan_seeing_merged(conn, subject, [LOGS, WEB], [{**seen, "commit": "beef"},
                                                    {**seen, "how": "forge", "pr_number": 5}])
    assert remediations(conn, subject)[0]["status"] == "pr_opened"

    # merged (a merge commit at 00:30), and the same scan still sees the web drift: failed, with why
    failing = scan_seeing_merged(conn, subject, [WEB], [{**seen, "merged_at": "2026-11-29T00:30:00Z"}])
    row = remediations(conn, subject)[0]
    assert row["status"] == "failed" and row["merged_at"] == datetime(2026, 11, 29, 0, 30, tzinfo=UTC)
    assert row["reason"] == (
        f"merged at 2026-11-29 00:30:00 UTC, but scan {failing} still sees the drift of "
        "aws_security_group.web"
    )


def test_a_squash_merge_the_forge_reports_is_verified_by_that_scan(conn: psycopg.Connection) -> None:
    subject = opted_in(conn)
    scan(conn, subject, [LOGS])
    [task] = remediation_tasks(conn)
    branch = task["payload"]["branch"]
    finish(conn, task["id"], {"status": "pr_opened", "branch": branch, "commit": "c0ffee", "pr_number": 4})
    [row] = remediations(conn)
    seen = {"remediation_id": row["id"], "branch": branch, "how": "forge", "pr_number": 4,
            "merged_at": "2026-11-30T00:00:00Z"}  # a clock ahead of the scan: never after its start
    clean = scan_seeing_merged(conn, subject, [], [seen])
    [row] = remediations(conn)
    assert (row["status"], row["verified_scan_id"]) == ("verified", clean)
    assert row["merged_at"] == datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
    assert one(conn, "SELECT nightshift.task_targets(%s) -> 'remediations'", subject) == []
