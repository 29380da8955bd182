"""The pr-review agent on real parts: git repositories made here (a bare remote, main, pull request
branches pushed as GitHub does, refs/pull/N/head), real terraform (the AWS provider from the local
mirror), real Checkov, and the loopback GitHub held to GitHub's OpenAPI subset (self-made bodies
where the corpus is absent). The results go through the one result path into a real database."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dispatcher.agents.pr_review import MARKER, STATUS_CONTEXT
from dispatcher.compliance import scanners
from dispatcher.demo.offline_aws import MIRROR, write_cli_config
from tests.support.compliance_support import ensure_checkov
from tests.support.github_server import GitHubServer, load_spec
from tests.support.pr_review_support import FULL_NAME, TOKEN, TOKEN_ENV, PullRequestRepo, payload, review

pytestmark = [
    pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform on PATH"),
    pytest.mark.skipif(not (MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir(),
                       reason=f"no AWS provider in the local mirror {MIRROR}"),
]

PROVIDER = """terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

provider "aws" {
  region = "us-east-1"
}
"""
BASE = PROVIDER + """
resource "aws_s3_bucket" "logs" {
  bucket = "acme-logs"
}
"""
# a broken fmt, an invalid reference and a public S3 bucket
PR_FILE = """resource "aws_s3_bucket" "public" {
  bucket   =    "acme-public"
}

resource "aws_s3_bucket_acl" "public" {
  bucket = aws_s3_bucket.public.id
  acl    = "public-read"
}

resource "aws_s3_bucket_policy" "broken" {
  bucket = aws_s3_bucket.missing.id
  policy = "{}"
}
"""
LIGHT = 'resource "terraform_data" "a" {\n  input = "a"\n}\n'


@pytest.fixture(scope="module")
def checkov() -> Path:
    return ensure_checkov()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checkov: Path) -> None:
    monkeypatch.setenv("NIGHTSHIFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(write_cli_config(tmp_path)))
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


@pytest.fixture
def github() -> Iterator[GitHubServer]:
    with GitHubServer(load_spec(), token=TOKEN) as server:  # validated when the corpus is here
        server.repo(FULL_NAME)
        yield server
    assert server.errors == [], server.errors


def findings_of(result: Any) -> list[dict[str, Any]]:
    return list(result.scan.findings_json())


def test_a_pull_request_is_reviewed_and_its_comment_updated_on_the_next_push(
        env: None, github: GitHubServer, tmp_path: Path, conn: psycopg.Connection) -> None:
    repo = PullRequestRepo(tmp_path / "git", {"roots/app/main.tf": BASE, "roots/other/main.tf": LIGHT,
                                              "docs/README.md": "docs\n"})
    head = repo.open(1, "feature", {"roots/app/public.tf": PR_FILE})
    github.add_pull(FULL_NAME, 1, "feature", head_sha=head)

    first = review(payload(repo, 1, head, "feature", github.url))
    assert first.ok and first.scan is not None
    assert first.scan.status == "FAILED_CHECKS", first.scan.error
    assert first.scan.summary["roots"] == ["roots/app"]  # roots/other did not change
    found = findings_of(first)
    rules = {f["check_id"] for f in found}
    assert {"terraform-fmt", "terraform-validate"} <= rules
    [invalid] = [f for f in found if f["check_id"] == "terraform-validate"]
    assert invalid["file"] == "roots/app/public.tf" and invalid["line"] == 11
    assert "undeclared resource" in invalid["message"]
    compliance = [f for f in found if f["check_id"].startswith("CKV")]
    assert compliance and all(f["address"] != "aws_s3_bucket.logs" for f in compliance)  # old debt
    assert any(f["address"] == "aws_s3_bucket.public" for f in compliance)

    [comment] = github.comments_of(FULL_NAME, 1)
    assert comment.startswith(MARKER)
    assert "terraform fmt" in comment and "`roots/app/public.tf:11`" in comment
    assert "New compliance failures" in comment and "](https://" in comment  # guideline links
    assert "aws_s3_bucket.logs" not in comment
    [status] = github.repo(FULL_NAME).statuses
    assert (status["sha"], status["state"], status["context"]) == (head, "failure", STATUS_CONTEXT)

    # stored through the one result path: a pr-review scan with its findings
    [(repo_id,)] = conn.execute(
        "WITH o AS (INSERT INTO nightshift.organizations (name) VALUES ('acme') RETURNING id)"
        " INSERT INTO nightshift.repositories (organization_id, name, url, full_name, pr_review_enabled)"
        " SELECT id, 'infra', %s, %s, true FROM o RETURNING id", (repo.url, FULL_NAME)).fetchall()
    conn.execute("SELECT * FROM nightshift.enqueue_pr_review(%s, 1, '{}')", (repo_id,))
    [(task, attempt)] = conn.execute(
        "SELECT id, attempt FROM nightshift.claim_tasks('w1', '{pr-review}', 1, '1 minute')").fetchall()
    stored = json.dumps(first.to_json())
    assert TOKEN not in stored
    conn.execute("SELECT * FROM nightshift.record_result(%s, %s, %s)", (task, attempt, stored))
    [(kind, scan_status, open_findings)] = conn.execute(
        "SELECT s.kind, s.status::text, (SELECT count(*) FROM nightshift.findings AS f"
        " WHERE f.subject = s.subject AND f.status = 'OPEN') FROM nightshift.scans AS s").fetchall()
    assert (kind, scan_status, open_findings) == ("pr-review", "FAILED_CHECKS", len(found))

    # synchronize: fmt fixed, the invalid reference too; the same comment is updated
    repo.commit({"roots/app/public.tf": PR_FILE.replace("bucket   =    ", "bucket = ")
                 .replace("aws_s3_bucket.missing.id", "aws_s3_bucket.public.id")}, "fix")
    second_head = repo.push_pull(1, "feature")
    github.repo(FULL_NAME).pulls[1]["head_sha"] = second_head
    second = review(payload(repo, 1, second_head, "feature", github.url), task_id=2)
    assert second.scan is not None and second.scan.status == "FAILED_CHECKS"
    assert {f["check_id"] for f in findings_of(second)} & {"terraform-fmt", "terraform-validate"} == set()
    steps = {step["step"]: step for step in second.scan.artifacts["steps"]}
    assert steps["checkov roots/app (base)"].get("cached")  # the merge base did not change
    [updated] = github.comments_of(FULL_NAME, 1)
    assert updated != comment and "terraform fmt" not in updated and "New compliance failures" in updated
    assert [s["sha"] for s in github.repo(FULL_NAME).statuses] == [head, second_head]


def test_a_pull_request_touching_only_docs_gets_no_comment(env: None, github: GitHubServer,
                                                           tmp_path: Path) -> None:
    repo = PullRequestRepo(tmp_path / "git", {"main.tf": LIGHT, "docs/README.md": "docs\n"})
    head = repo.open(2, "docs", {"docs/README.md": "better docs\n"})
    github.add_pull(FULL_NAME, 2, "docs", head_sha=head)
    result = review(payload(repo, 2, head, "docs", github.url), number=2)
    assert result.scan is not None and result.scan.status == "CLEAN"
    assert result.scan.summary["reason"] == "nothing to review: no IaC file changed"
    assert github.comments_of(FULL_NAME, 2) == [] and github.repo(FULL_NAME).statuses == []
    assert github.requests == []


def test_hcl_that_does_not_parse_is_reported_with_file_and_line(env: None, github: GitHubServer,
                                                                 tmp_path: Path) -> None:
    repo = PullRequestRepo(tmp_path / "git", {"main.tf": LIGHT})
    head = repo.open(3, "broken", {"broken.tf": 'resource "terraform_data" "b" {\n  input = \n'})
    github.add_pull(FULL_NAME, 3, "broken", head_sha=head)
    result = review(payload(repo, 3, head, "broken", github.url), number=3)
    assert result.scan is not None and result.scan.status == "FAILED_CHECKS"
    [comment] = github.comments_of(FULL_NAME, 3)
    assert "Validation errors" in comment and "`broken.tf:" in comment
    assert "Checkov: it could not parse the root" in comment
    assert github.repo(FULL_NAME).statuses[-1]["state"] == "failure"


def test_a_pull_request_from_a_fork_is_reviewed_without_running_init(env: None, github: GitHubServer,
                                                                      tmp_path: Path) -> None:
    repo = PullRequestRepo(tmp_path / "git", {"main.tf": LIGHT})
    head = repo.open(4, "fork-change", {"main.tf": LIGHT.replace('"a"\n', '"b"\n')})
    github.add_pull(FULL_NAME, 4, "fork-change", head_sha=head)
    result = review(payload(repo, 4, head, "fork-change", github.url,
                            head_clone_url="https://github.example/someone/infra.git"), number=4)
    assert result.scan is not None and result.scan.status == "CLEAN", result.scan.error
    steps = [s["step"] for s in result.scan.artifacts["steps"]]
    assert not any(s.startswith(("init", "validate")) for s in steps) and "fmt ." in steps
    [comment] = github.comments_of(FULL_NAME, 4)
    assert "comes from a fork" in comment
    assert github.repo(FULL_NAME).statuses[-1]["state"] == "success"


def test_a_force_push_that_removed_the_head_is_not_reviewed(env: None, github: GitHubServer,
                                                             tmp_path: Path) -> None:
    repo = PullRequestRepo(tmp_path / "git", {"main.tf": LIGHT})
    old = repo.open(5, "rewritten", {"main.tf": LIGHT + "# one\n"})
    repo.branch("rewritten", "main")
    new = repo.commit({"main.tf": LIGHT + "# two\n"}, "rewritten")
    repo.push_pull(5, "rewritten", force=True)
    repo.forget_unreachable()
    github.add_pull(FULL_NAME, 5, "rewritten", head_sha=new)
    result = review(payload(repo, 5, old, "rewritten", github.url), number=5)
    assert result.scan is not None and result.scan.status == "ERROR"
    assert f"the head {old[:12]} is no longer on the pull request" in str(result.scan.error)
    [comment] = github.comments_of(FULL_NAME, 5)
    assert "Could not review" in comment and "force-pushed" in comment
    assert github.repo(FULL_NAME).statuses == []  # not on a head that is gone


def test_a_deleted_branch_is_reviewed_from_the_pull_request_ref(env: None, github: GitHubServer,
                                                                 tmp_path: Path) -> None:
    repo = PullRequestRepo(tmp_path / "git", {"main.tf": LIGHT})
    head = repo.open(6, "gone", {"extra.tf": LIGHT.replace('"a"', '"x"')})
    repo.delete_branch("gone")  # GitHub keeps refs/pull/6/head
    github.add_pull(FULL_NAME, 6, "gone", head_sha=head)
    result = review(payload(repo, 6, head, "gone", github.url), number=6)
    assert result.scan is not None and result.scan.status == "CLEAN", result.scan.error


def test_a_deleted_branch_on_the_local_forge_says_so(env: None, tmp_path: Path) -> None:
    repo = PullRequestRepo(tmp_path / "git", {"main.tf": LIGHT})
    repo.branch("gone")  # the local forge has no refs/pull/N/head: only the branch
    head = repo.commit({"extra.tf": LIGHT.replace('"a"', '"x"')}, "change")
    repo.push("gone")
    repo.delete_branch("gone")
    repo.forget_unreachable()
    forge = {"kind": "local", "repository_id": 1, "remote": str(repo.bare),
             "pull_requests": [{"number": 7, "head_ref": "gone", "base_ref": "main", "head_sha": head}]}
    result = review(payload(repo, 7, head, "gone", "", forge=forge), number=7)
    assert result.scan is not None and result.scan.status == "ERROR"
    assert "was deleted or force-pushed" in str(result.scan.error)
    [comment] = [op for op in result.forge if op["op"] == "comment"]  # the local forge's row, stored later
    assert comment["number"] == 7 and "Could not review" in comment["body"]


def record(conn: psycopg.Connection, url: str, number: int, result: Any) -> tuple[str, str | None]:
    """The result stored through the one result path, as the dispatcher stores it: (scan status, error)."""
    [(repo_id,)] = conn.execute(
        "WITH o AS (INSERT INTO nightshift.organizations (name) VALUES ('acme') RETURNING id)"
        " INSERT INTO nightshift.repositories (organization_id, name, url, full_name, pr_review_enabled)"
        " SELECT id, 'infra', %s, %s, true FROM o RETURNING id", (url, FULL_NAME)).fetchall()
    conn.execute("SELECT * FROM nightshift.enqueue_pr_review(%s, %s, '{}')", (repo_id, number))
    [(task, attempt)] = conn.execute(
        "SELECT id, attempt FROM nightshift.claim_tasks('w1', '{pr-review}', 1, '1 minute')").fetchall()
    conn.execute("SELECT * FROM nightshift.record_result(%s, %s, %s)",
                 (task, attempt, json.dumps(result.to_json())))
    [(status, error, task_status)] = conn.execute(
        "SELECT s.status::text, s.error, t.status::text FROM nightshift.scans AS s"
        " JOIN nightshift.tasks AS t ON t.id = s.task_id WHERE t.id = %s", (task,)).fetchall()
    assert task_status == "done"  # a review that could not be done is a finished task, not a failure
    return status, error


def test_a_repository_that_no_longer_exists(env: None, github: GitHubServer, tmp_path: Path,
                                            conn: psycopg.Connection) -> None:
    gone = "https://127.0.0.1:9/acme/gone.git"  # nothing listens on the discard port
    github.add_pull(FULL_NAME, 8, "feature", head_sha="c" * 40)
    result = review(payload(PullRequestRepo(tmp_path / "git", {"main.tf": LIGHT}), 8, "c" * 40, "feature",
                            github.url, clone_url=gone), number=8)
    assert result.scan is not None and result.scan.status == "ERROR"
    assert str(result.scan.error).startswith(f"cannot fetch {gone}")
    stored = json.dumps(result.to_json())
    assert TOKEN not in stored and "x-access-token" not in stored
    [comment] = github.comments_of(FULL_NAME, 8)
    assert "Could not review" in comment and TOKEN not in comment
    assert github.repo(FULL_NAME).statuses[-1]["state"] == "error"
    status, error = record(conn, gone, 8, result)
    assert status == "ERROR" and str(error).startswith(f"cannot fetch {gone}")


def test_a_forge_that_answers_403_is_recorded(env: None, github: GitHubServer, tmp_path: Path) -> None:
    repo = PullRequestRepo(tmp_path / "git", {"main.tf": LIGHT})
    head = repo.open(9, "feature", {"main.tf": LIGHT.replace('"a"\n', '"z"\n')})
    github.add_pull(FULL_NAME, 9, "feature", head_sha=head)
    github.forbid.update({"issues/create-comment", "repos/create-commit-status"})
    result = review(payload(repo, 9, head, "feature", github.url), number=9)
    assert result.scan is not None and result.scan.status == "CLEAN"  # the review itself stands
    error = result.scan.summary["forge_error"]
    assert "comment not written" in error and "403" in error and "status not set" in error
    assert TOKEN not in error


def tofu_on_path(bin_dir: Path, log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tofu` as a program that records its arguments and runs the real terraform (OpenTofu is a fork
    with the same command line; it cannot be installed offline here)."""
    terraform = shutil.which("terraform")
    assert terraform is not None
    bin_dir.mkdir()
    tofu = bin_dir / "tofu"
    tofu.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{terraform}" "$@"\n')
    tofu.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(terraform).parent}:/usr/bin:/bin")


def test_a_repository_whose_tool_is_tofu_is_reviewed_with_tofu(
        env: None, github: GitHubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "tofu.log"
    tofu_on_path(tmp_path / "bin", log, monkeypatch)
    repo = PullRequestRepo(tmp_path / "git", {"roots/app/main.tf": BASE})
    head = repo.open(7, "tofu", {"roots/app/public.tf": PR_FILE})
    github.add_pull(FULL_NAME, 7, "tofu", head_sha=head)

    result = review({**payload(repo, 7, head, "tofu", github.url), "iac_tool": "tofu"}, number=7)
    assert result.scan is not None and result.scan.status == "FAILED_CHECKS", result.scan.error
    tools = {s["step"].split()[0]: s["argv"][0] for s in result.scan.artifacts["steps"]
             if s["step"].split()[0] in ("fmt", "init", "validate")}
    assert tools == {"fmt": "tofu", "init": "tofu", "validate": "tofu"}
    called = log.read_text().splitlines()
    assert [line.split()[0] for line in called] == ["fmt", "init", "validate"]
    rules = {f["check_id"] for f in findings_of(result)}
    assert {"terraform-fmt", "terraform-validate"} <= rules  # the same rules, whichever tool ran
    [fmt] = [f for f in findings_of(result) if f["check_id"] == "terraform-fmt"]
    assert fmt["message"] == "not formatted as `tofu fmt` would write it"
    [comment] = github.comments_of(FULL_NAME, 7)
    assert "<code>tofu fmt</code> would change" in comment and "terraform fmt" not in comment


def test_an_unknown_iac_tool_in_the_payload_is_not_run(env: None, github: GitHubServer,
                                                       tmp_path: Path) -> None:
    repo = PullRequestRepo(tmp_path / "git", {"main.tf": LIGHT})
    head = repo.open(8, "odd", {"main.tf": LIGHT.replace('"a"\n', '"b"\n')})
    github.add_pull(FULL_NAME, 8, "odd", head_sha=head)
    result = review({**payload(repo, 8, head, "odd", github.url), "iac_tool": "/bin/sh"}, number=8)
    assert result.scan is not None and result.scan.status == "ERROR"
    assert result.scan.error == "the payload's iac_tool is '/bin/sh'; it must be one of terraform, tofu"
    assert result.scan.artifacts["steps"] == []  # nothing ran, not even git
    [comment] = github.comments_of(FULL_NAME, 8)
    assert "iac_tool" in comment


def test_checkov_keeps_its_parser_cache_in_the_scanners_private_directory(
        env: None, github: GitHubServer, tmp_path: Path, checkov: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """As the compliance agent's: the HCL grammar tables outlive the review, in a 0700 directory."""
    monkeypatch.setenv("NIGHTSHIFT_CHECKOV", str(checkov))
    monkeypatch.setenv(scanners.DIR_ENV, str(tmp_path / "scanners"))
    repo = PullRequestRepo(tmp_path / "git", {"main.tf": LIGHT})
    head = repo.open(9, "cached", {"main.tf": LIGHT.replace('"a"\n', '"c"\n')})
    github.add_pull(FULL_NAME, 9, "cached", head_sha=head)
    result = review(payload(repo, 9, head, "cached", github.url), number=9)
    assert result.scan is not None and result.scan.status == "CLEAN", result.scan.error
    assert any(s["step"].startswith("checkov") for s in result.scan.artifacts["steps"])
    cache = tmp_path / "scanners" / "cache"
    assert cache.stat().st_mode & 0o777 == 0o700
    assert list(cache.glob(".lark_cache_*")), "Checkov's parser wrote its grammar cache there"
