"""The local forge end to end: a real bare git remote, the forge's operations returned with a task's
result and stored by record_result, and `nightshift prs list|show` showing them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dispatcher.cli import main
from dispatcher.contract import AgentResult
from dispatcher.forge import ForgeError, ForgeNotFound, forge_from_payload, hidden_marker
from dispatcher.forge.local import LocalForge
from tests.support.git_repos import Remote


def add_repository(conn: psycopg.Connection, url: str) -> int:
    [(org,)] = conn.execute("INSERT INTO nightshift.organizations (name) VALUES ('acme') RETURNING id")
    [(repo,)] = conn.execute(
        "INSERT INTO nightshift.repositories (organization_id, name, url, forge, pr_review_enabled)"
        " VALUES (%s, 'infra', %s, 'local', true) RETURNING id", (org, url))
    conn.commit()
    return int(repo)


def store(conn: psycopg.Connection, repo: int, number: int, changes: list[dict[str, Any]]) -> None:
    """Complete a task with these forge changes, through the one result path."""
    conn.execute("SELECT * FROM nightshift.enqueue_pr_review(%s, %s, '{}')", (repo, number))
    [(task, attempt)] = conn.execute(
        "SELECT id, attempt FROM nightshift.claim_tasks('w1', '{pr-review}', 1, '1 minute')").fetchall()
    document = AgentResult(ok=True, forge=changes).to_json()
    conn.execute("SELECT * FROM nightshift.record_result(%s, %s, %s)", (task, attempt, json.dumps(document)))
    conn.commit()


def forge_of(conn: psycopg.Connection, repo: int) -> LocalForge:
    [(spec,)] = conn.execute("SELECT nightshift.forge_of_repository(%s)", (repo,))
    forge = forge_from_payload(spec)
    assert isinstance(forge, LocalForge)
    return forge


def test_a_local_pull_request_is_a_row(conn: psycopg.Connection, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str], db_url: str) -> None:
    remote = Remote(tmp_path, {"main.tf": 'resource "null_resource" "a" {}\n', "README.md": "x\n"})
    remote.branch("nightshift/fix")
    head = remote.commit({"main.tf": 'resource "null_resource" "b" {}\n', "docs/new.md": "y\n"}, "fix")
    remote.push("nightshift/fix")
    repo = add_repository(conn, str(remote.bare))

    forge = forge_of(conn, repo)
    opened = asyncio.run(forge.open_pull_request("nightshift/fix", "main", "Fix drift", "what changed"))
    assert opened.created and opened.number is None and opened.head_sha == head
    again = asyncio.run(forge.open_pull_request("nightshift/fix", "main", "Fix drift", "again"))
    assert not again.created
    with pytest.raises(ForgeNotFound, match="not on the remote"):
        asyncio.run(forge.open_pull_request("never-pushed", "main", "t", "b"))
    store(conn, repo, 1, forge.changes())

    forge = forge_of(conn, repo)  # the next task sees the row, numbered
    found = asyncio.run(forge.find_pull_request("nightshift/fix"))
    assert found is not None and found.number == 1 and found.head_sha == head
    changed = asyncio.run(forge.list_changed_files(1))
    assert sorted((f.path, f.status) for f in changed) == [("docs/new.md", "added"), ("main.tf", "modified")]
    marker = hidden_marker("pr-review")
    asyncio.run(forge.upsert_comment(1, marker, "first review"))
    asyncio.run(forge.set_status(head, "failure", "2 problems", "nightshift/pr-review"))
    store(conn, repo, 1, forge.changes())
    forge = forge_of(conn, repo)
    comment = asyncio.run(forge.upsert_comment(1, marker, "second review"))
    assert not comment.created  # found by its marker
    store(conn, repo, 1, forge.changes())

    [(comments, statuses)] = conn.execute(
        "SELECT comments, statuses FROM nightshift.pull_requests WHERE repository_id = %s", (repo,))
    assert comments == {marker: f"{marker}\nsecond review"}
    assert statuses["nightshift/pr-review"]["state"] == "failure"

    capsys.readouterr()
    assert main(["prs", "list", "--json", "--database-url", db_url]) == 0
    [listed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (listed["number"], listed["head"], listed["statuses"], listed["comments"]) == (
        1, "nightshift/fix", "nightshift/pr-review=failure", 1)
    assert main(["prs", "show", str(repo), "1", "--database-url", db_url]) == 0
    assert "second review" in capsys.readouterr().out
    assert main(["prs", "show", str(repo), "9", "--database-url", db_url]) == 3
    assert main(["prs", "close", str(repo), "1", "--merged", "--database-url", db_url]) == 0
    assert "is merged" in capsys.readouterr().out


def test_forge_changes_naming_an_unknown_repository_are_refused(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="no known repository"):
        conn.execute("SELECT nightshift.apply_forge_changes(NULL, %s)",
                     (json.dumps([{"op": "open", "repository_id": 999, "head_ref": "x",
                                   "base_ref": "main"}]),))


def test_payload_forge_errors_say_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ForgeError, match="no forge"):
        forge_from_payload(None)
    with pytest.raises(ForgeError, match="token reference"):
        forge_from_payload({"kind": "github", "full_name": "a/b"})
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    with pytest.raises(ForgeError, match="NO_SUCH_TOKEN is not set"):
        forge_from_payload({"kind": "github", "full_name": "a/b", "token_ref": "env:NO_SUCH_TOKEN"})
    with pytest.raises(ForgeError, match="unknown forge kind 'gitlab'"):
        forge_from_payload({"kind": "gitlab"})
