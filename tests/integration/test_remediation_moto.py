"""Drift remediation on real parts: Terraform + the AWS provider against moto_server, a real bare git
remote holding the code and its state, the local forge (pull requests as rows), the drift-scan and
drift-remediation agents run as the dispatcher runs them, results through nightshift.record_result.

Out of band (boto3): a literal tag edited (adopted: the diff changes only that literal), a tag that
the code takes from a variable edited (reverted: the pull request carries the plan, the command and
the risk), a bucket deleted (a stateful type: refused, the reason visible). Then the branch is merged,
the next scan verifies. Bad input: a remote that refuses the push, a branch already there with other
commits, HCL the parser cannot read, a merge conflict with a newer default branch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dispatcher.demo import offline_aws
from dispatcher.demo.offline_aws import ENV_ALLOWLIST, missing_prerequisite, moto_server, terraform_env
from tests.support.remediation_support import (
    bare_remote,
    commit_and_push,
    drift_scan,
    git,
    make_remediable_pipeline,
    remediate,
    remediations,
)

pytestmark = [pytest.mark.terraform, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "tests" / "fixtures" / "terraform" / "remediation"
NETWORK_MODULE = ROOT / "tests" / "fixtures" / "terraform" / "remediation_network"


@dataclass(frozen=True)
class Aws:
    endpoint: str
    env: dict[str, str]

    def s3(self) -> Any:
        return offline_aws.client(self.endpoint, "s3")

    def terraform(self, cwd: Path, *args: str) -> None:
        offline_aws.terraform(cwd, self.env, *args)


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    if reason := missing_prerequisite():
        pytest.skip(
            f"SKIPPED LOUDLY: the remediation tests need Terraform, the provider mirror and moto: {reason}"
        )
    tmp = tmp_path_factory.mktemp("aws")
    with moto_server(tmp) as endpoint:
        yield Aws(endpoint=endpoint, env={**terraform_env(tmp, endpoint), "LANG": "C.UTF-8"})


@dataclass(frozen=True)
class Repo:
    subject: str
    remote: Path
    work: Path


def applied_repo(
    conn: psycopg.Connection, aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: Path
) -> Repo:
    """`module` applied to a fresh moto, its code and state pushed to a bare remote, a pipeline on it."""
    offline_aws.reset_moto(aws.endpoint)
    for name, value in aws.env.items():  # what the pipeline's env_allowlist lets through to the agents
        monkeypatch.setenv(name, value)
    remote, work = bare_remote(tmp_path, module)
    aws.terraform(work, "init")
    aws.terraform(work, "apply", "-auto-approve")
    commit_and_push(work, f"infra: {module.name}")
    return Repo(make_remediable_pipeline(conn, remote, env_allowlist=ENV_ALLOWLIST), remote, work)


@pytest.fixture
def repo(conn: psycopg.Connection, aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """The bucket module (logs, data, archive) applied and pushed, a pipeline on it."""
    return applied_repo(conn, aws, tmp_path, monkeypatch, MODULE)


@pytest.fixture
def network(conn: psycopg.Connection, aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """The network module (a tagged bucket, security groups with literal and dynamic rules)."""
    return applied_repo(conn, aws, tmp_path, monkeypatch, NETWORK_MODULE)


def tag(aws: Aws, bucket: str, tags: dict[str, str]) -> None:
    aws.s3().put_bucket_tagging(
        Bucket=bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}
    )


def branch_diff(repo: Repo, branch: str) -> str:
    git(repo.work, "fetch", "--quiet", "origin")
    return git(repo.work, "diff", "origin/main", f"origin/{branch}", "--")


def pull_request(conn: psycopg.Connection, branch: str) -> dict[str, Any]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    row = cur.execute("SELECT * FROM nightshift.pull_requests WHERE head_ref = %s", (branch,)).fetchone()
    assert row is not None, f"no pull request for {branch}"
    return row


def test_tag_drift_is_adopted_in_a_pull_request_that_changes_only_the_literal_then_verified(
    conn: psycopg.Connection,
    aws: Aws,
    repo: Repo,
) -> None:
    tag(aws, "remediation-logs", {"env": "staging", "owner": "platform"})
    scan = drift_scan(conn, repo.subject)
    assert scan["status"] == "DRIFTED", scan["error"]

    result = remediate(conn)
    assert result.remediation is not None and result.remediation["status"] == "pr_opened", result.remediation
    [row] = remediations(conn)
    assert row["status"] == "pr_opened" and row["branch"].startswith("nightshift/drift-network-")
    assert [(f["address"], f["fix"]) for f in row["fixes"]] == [("aws_s3_bucket.logs", "adopt")]

    # the diff: one line, the tag's literal; the comment on that line and the alignment stay
    diff = branch_diff(repo, row["branch"])
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == [
        '-    env   = "prod" # staging once, long ago',
        '+    env   = "staging" # staging once, long ago',
    ], diff
    pull = pull_request(conn, row["branch"])
    assert (pull["number"], pull["base_ref"], pull["state"]) == (row["pr_number"], "main", "open")
    assert "| `tags.env` | `prod` | `staging` |" in pull["body"]
    assert "no change for the 1 adopted resource" in pull["body"]
    log = git(repo.work, "log", "-1", "--format=%an <%ae>%n%B", f"origin/{row['branch']}")
    assert log.startswith("Nightshift <nightshift@localhost>\nFix drift of network: adopt 1 resource(s)")
    ready = conn.execute(
        "SELECT channel, payload FROM nightshift.notifications WHERE template = 'remediation-ready'"
    ).fetchall()
    assert [(c, p["branch"], p["finding_count"]) for c, p in ready] == [("#infra", row["branch"], 1)]

    # a rescan that sees the same drift does not open a second pull request
    drift_scan(conn, repo.subject)
    assert len(remediations(conn)) == 1
    assert conn.execute(
        "SELECT count(*) FROM nightshift.tasks WHERE kind = 'drift-remediation'"
    ).fetchone() == (1,)

    # merged on the remote (the webhook / CLI marks it), the next scan verifies
    git(repo.work, "checkout", "--quiet", "main")
    git(repo.work, "merge", "--quiet", "--ff-only", f"origin/{row['branch']}")
    git(repo.work, "push", "--quiet", "origin", "main")
    repository = conn.execute("SELECT repository_id FROM nightshift.pipelines").fetchone()
    assert repository is not None
    conn.execute(
        "SELECT nightshift.remediation_merged(%s, %s, now() - interval '1 second')",
        (repository[0], row["branch"]),
    )
    verifying = drift_scan(conn, repo.subject)
    assert verifying["status"] == "CLEAN", verifying["error"]
    [row] = remediations(conn)
    assert (row["status"], row["verified_scan_id"]) == ("verified", verifying["id"])


def test_a_variable_driven_value_is_reverted_and_a_deleted_bucket_is_refused(
    conn: psycopg.Connection,
    aws: Aws,
    repo: Repo,
) -> None:
    tag(aws, "remediation-data", {"team": "marketing"})
    aws.s3().delete_bucket(Bucket="remediation-archive")
    scan = drift_scan(conn, repo.subject)
    assert scan["status"] == "DRIFTED", scan["error"]
    result = remediate(conn)
    assert result.remediation is not None and result.remediation["status"] == "pr_opened", result.remediation

    refused, opened = remediations(conn)
    assert refused["status"] == "refused" and refused["task_id"] is None
    assert "aws_s3_bucket.archive (delete)" in refused["reason"]
    assert opened["status"] == "pr_opened"
    assert [(f["address"], f["fix"]) for f in opened["fixes"]] == [("aws_s3_bucket.data", "revert")]
    assert "var.team" in opened["fixes"][0]["why"]

    # no code changed (an empty commit carries the pull request), the body carries plan, command, risk
    assert branch_diff(repo, opened["branch"]) == ""
    body = pull_request(conn, opened["branch"])["body"]
    assert "## To revert" in body and "# aws_s3_bucket.data will be updated in-place" in body
    assert "terraform apply -target='aws_s3_bucket.data'" in body
    assert "**Risk:** applying overwrites the change made outside Terraform" in body
    assert "archive" not in body.split("## Verification plan")[0].split("## To revert")[1].split("Command:")[
        0
    ].replace("aws_s3_bucket.data", "")

    # the team applies the code (as the pull request says), the next scan verifies the remediation
    aws.terraform(repo.work, "apply", "-auto-approve", "-target=aws_s3_bucket.data")
    commit_and_push(repo.work, "state after the revert")
    drift_scan(conn, repo.subject)
    assert [r["status"] for r in remediations(conn)] == ["refused", "verified"]


def test_a_remote_that_refuses_the_push_fails_the_remediation_and_the_finding_stays_open(
    conn: psycopg.Connection,
    aws: Aws,
    repo: Repo,
) -> None:
    hook = repo.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes to this repository are closed for the audit' >&2\nexit 1\n")
    hook.chmod(0o755)
    tag(aws, "remediation-logs", {"env": "staging", "owner": "platform"})
    drift_scan(conn, repo.subject)
    result = remediate(conn)
    assert result.remediation is not None
    [row] = remediations(conn)
    assert row["status"] == "failed"
    assert "the remote refused the push" in row["reason"] and "closed for the audit" in row["reason"]
    assert git(repo.work, "ls-remote", "--heads", "origin").count("refs/heads/") == 1
    assert conn.execute("SELECT status::text FROM nightshift.findings").fetchall() == [("OPEN",)]


def test_a_branch_that_exists_with_other_commits_is_not_pushed_over(
    conn: psycopg.Connection,
    aws: Aws,
    repo: Repo,
) -> None:
    tag(aws, "remediation-logs", {"env": "staging", "owner": "platform"})
    drift_scan(conn, repo.subject)
    branch = conn.execute(
        "SELECT payload ->> 'branch' FROM nightshift.tasks WHERE kind = 'drift-remediation'"
    ).fetchone()
    assert branch is not None
    # someone else's work on that very branch name
    git(repo.work, "checkout", "--quiet", "-b", "theirs")
    (repo.work / "NOTES.md").write_text("mine\n")
    git(repo.work, "add", "NOTES.md")
    git(repo.work, "commit", "--quiet", "-m", "their work")
    git(repo.work, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch[0]}")
    theirs = git(repo.work, "rev-parse", "HEAD").strip()

    remediate(conn)
    [row] = remediations(conn)
    assert row["status"] == "failed"
    assert (
        f"branch {branch[0]} already exists on the remote with commits Nightshift did not make"
        in row["reason"]
    )
    assert git(repo.work, "ls-remote", "origin", f"refs/heads/{branch[0]}").split()[0] == theirs


def test_hcl_the_parser_cannot_read_fails_with_the_file_and_line(
    conn: psycopg.Connection,
    aws: Aws,
    repo: Repo,
) -> None:
    tag(aws, "remediation-logs", {"env": "staging", "owner": "platform"})
    drift_scan(conn, repo.subject)
    (repo.work / "broken.tf").write_text(
        "locals {\n  a = \n"
    )  # pushed after the scan, before the remediation
    commit_and_push(repo.work, "wip")
    remediate(conn)
    [row] = remediations(conn)
    assert row["status"] == "failed"
    assert "broken.tf: the HCL parser cannot read it (line" in row["reason"]


def test_a_merge_conflict_with_a_newer_default_branch_fails_and_pushes_nothing(
    conn: psycopg.Connection,
    aws: Aws,
    repo: Repo,
) -> None:
    tag(aws, "remediation-logs", {"env": "staging", "owner": "platform"})
    drift_scan(conn, repo.subject)
    remediate(conn)
    [row] = remediations(conn)
    assert row["status"] == "pr_opened"
    head = git(repo.work, "ls-remote", "origin", f"refs/heads/{row['branch']}").split()[0]

    # the default branch moves and changes the same line; the drift changes again (an update is due)
    git(repo.work, "checkout", "--quiet", "main")
    text = (repo.work / "main.tf").read_text().replace('env   = "prod"', 'env   = "production"')
    (repo.work / "main.tf").write_text(text)
    commit_and_push(repo.work, "rename env")
    tag(aws, "remediation-logs", {"env": "qa", "owner": "platform"})
    drift_scan(conn, repo.subject)
    [row] = remediations(conn)
    assert row["status"] == "pending"  # the same remediation, asked to update its branch
    remediate(conn)
    [row] = remediations(conn)
    assert row["status"] == "failed"
    assert "merge conflict between" in row["reason"] and "main.tf" in row["reason"]
    assert git(repo.work, "ls-remote", "origin", f"refs/heads/{row['branch']}").split()[0] == head


def test_the_pull_request_is_opened_on_github_held_to_its_openapi_contract(
    conn: psycopg.Connection,
    aws: Aws,
    repo: Repo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.github_server import GitHubServer, load_spec

    token = "ghp_remediationloopback0123456789"
    monkeypatch.setenv("NIGHTSHIFT_TEST_GITHUB_TOKEN", token)
    with GitHubServer(load_spec(), token=token) as github:  # without the corpus: self-made bodies
        conn.execute(
            "UPDATE nightshift.repositories SET forge = 'github', full_name = 'octo-org/infra',"
            " forge_api_url = %s, forge_token_ref = 'env:NIGHTSHIFT_TEST_GITHUB_TOKEN'",
            (github.url,),
        )
        tag(aws, "remediation-logs", {"env": "staging", "owner": "platform"})
        drift_scan(conn, repo.subject)
        payload = conn.execute(
            "SELECT payload FROM nightshift.tasks WHERE kind = 'drift-remediation'"
        ).fetchone()
        assert payload is not None
        assert payload[0]["forge"]["token_ref"] == "env:NIGHTSHIFT_TEST_GITHUB_TOKEN"
        github.repo("octo-org/infra").branches.add(payload[0]["branch"])  # the loopback does not see the push
        result = remediate(conn)
        assert result.remediation is not None and result.remediation["status"] == "pr_opened", (
            result.remediation
        )
        [row] = remediations(conn)
        [pull] = github.repo("octo-org/infra").pulls.values()
        assert (pull["head"], pull["base"]) == (row["branch"], "main")
        assert "| `tags.env` | `prod` | `staging` |" in pull["body"]
        assert row["pr_number"] == pull["number"] and row["pr_url"] == result.remediation["pr_url"]
        assert row["pr_url"]

        # squash-merged: new commits on main, the pushed head is not in its history; GitHub says merged
        git(repo.work, "checkout", "--quiet", "main")
        git(repo.work, "fetch", "--quiet", "origin")
        git(repo.work, "merge", "--quiet", "--squash", f"origin/{row['branch']}")
        git(repo.work, "commit", "--quiet", "-m", "Fix drift of network (#1)")
        git(repo.work, "push", "--quiet", "origin", "main")
        pull.update(state="closed", merged_at="2026-11-29T00:00:00Z")
        verifying = drift_scan(conn, repo.subject)
        assert verifying["status"] == "CLEAN", verifying["error"]
        [row] = remediations(conn)
        assert (row["status"], row["verified_scan_id"]) == ("verified", verifying["id"])
        assert row["merged_at"] == datetime.fromisoformat("2026-11-29T00:00:00+00:00")
        assert github.errors == []
    stored = "\n".join(
        str(r[0])
        for r in conn.execute(
            "SELECT row_to_json(t)::text FROM nightshift.tasks AS t UNION ALL"
            " SELECT row_to_json(m)::text FROM nightshift.remediations AS m"
        ).fetchall()
    )
    assert token not in stored


# --- merged on the default branch, seen by the next scan (no webhook, no CLI) ------------------------------


def adopted_pull_request(conn: psycopg.Connection, aws: Aws, repo: Repo) -> dict[str, Any]:
    """A tag drift adopted in an open pull request: its remediations row."""
    tag(aws, "remediation-logs", {"env": "staging", "owner": "platform"})
    drift_scan(conn, repo.subject)
    remediate(conn)
    [row] = remediations(conn)
    assert row["status"] == "pr_opened", row["reason"]
    return row


def test_a_branch_merged_with_plain_git_is_seen_by_the_next_scan_and_verified(
    conn: psycopg.Connection,
    aws: Aws,
    repo: Repo,
) -> None:
    row = adopted_pull_request(conn, aws, repo)
    # someone else moves the default branch on, then merges the pull request with a merge commit
    git(repo.work, "checkout", "--quiet", "main")
    (repo.work / "README.md").write_text("network\n")
    commit_and_push(repo.work, "docs")
    git(repo.work, "fetch", "--quiet", "origin")
    git(repo.work, "merge", "--quiet", "--no-ff", "-m", "Merge the drift fix", f"origin/{row['branch']}")
    git(repo.work, "push", "--quiet", "origin", "main")
    merged_at = git(repo.work, "log", "-1", "--format=%cI", "HEAD").strip()

    verifying = drift_scan(conn, repo.subject)
    assert verifying["status"] == "CLEAN", verifying["error"]
    assert verifying["summary"]["remediations_merged"] == [row["id"]]
    [row] = remediations(conn)
    assert (row["status"], row["verified_scan_id"], row["reason"]) == ("verified", verifying["id"], None)
    assert row["merged_at"] == datetime.fromisoformat(merged_at)  # the merge commit's time
    assert conn.execute("SELECT status::text FROM nightshift.findings").fetchall() == [("RESOLVED",)]
    # the merged scan's own outcome: nothing more to remediate
    assert conn.execute(
        "SELECT count(*) FROM nightshift.tasks WHERE kind = 'drift-remediation' AND status = 'queued'"
    ).fetchone() == (0,)


def test_a_merge_that_leaves_drift_fails_the_remediation_with_the_reason(
    conn: psycopg.Connection,
    aws: Aws,
    repo: Repo,
) -> None:
    row = adopted_pull_request(conn, aws, repo)
    # the bucket's tag moves again while the pull request waits; then it is fast-forwarded in
    tag(aws, "remediation-logs", {"env": "qa", "owner": "platform"})
    git(repo.work, "checkout", "--quiet", "main")
    git(repo.work, "fetch", "--quiet", "origin")
    git(repo.work, "merge", "--quiet", "--ff-only", f"origin/{row['branch']}")
    git(repo.work, "push", "--quiet", "origin", "main")

    rescan = drift_scan(conn, repo.subject)
    assert rescan["status"] == "DRIFTED", rescan["error"]
    first, *_ = remediations(conn)
    assert first["id"] == row["id"] and first["status"] == "failed"
    assert first["merged_at"] is not None and first["verified_scan_id"] is None
    assert f"but scan {rescan['id']} still sees the drift of aws_s3_bucket.logs" in first["reason"]
    assert conn.execute(
        "SELECT resource_address, status::text FROM nightshift.findings WHERE kind = 'drift'"
    ).fetchall() == [("aws_s3_bucket.logs", "OPEN")]


def test_an_unmerged_branch_is_not_taken_for_merged(
    conn: psycopg.Connection,
    aws: Aws,
    repo: Repo,
) -> None:
    row = adopted_pull_request(conn, aws, repo)
    git(repo.work, "checkout", "--quiet", "main")
    (repo.work / "README.md").write_text("network\n")
    commit_and_push(repo.work, "docs")  # the default branch moves, the pull request stays open
    rescan = drift_scan(conn, repo.subject)
    assert rescan["status"] == "DRIFTED", rescan["error"]
    assert "remediations_merged" not in rescan["summary"]
    [row] = remediations(conn)
    assert (row["status"], row["merged_at"]) == ("pr_opened", None)


# --- maps, lists and nested blocks adopted on real Terraform ------------------------------------------------


def group_id(aws: Aws, name: str) -> str:
    ec2 = offline_aws.client(aws.endpoint, "ec2")
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])
    groups = found["SecurityGroups"]
    assert len(groups) == 1, groups
    return str(groups[0]["GroupId"])


def rule(port: int, *cidrs: str) -> list[dict[str, Any]]:
    ranges = [{"CidrIp": c} for c in cidrs]
    return [{"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": ranges}]


def changed_lines(diff: str) -> list[str]:
    return [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def test_tags_added_and_removed_and_a_rule_port_are_adopted_a_dynamic_block_is_reverted(
    conn: psycopg.Connection,
    aws: Aws,
    network: Repo,
) -> None:
    tag(aws, "remediation-net-logs", {"env": "prod", "cost": "shared"})  # owner removed, cost added
    ec2 = offline_aws.client(aws.endpoint, "ec2")
    web, admin = group_id(aws, "remediation-web"), group_id(aws, "remediation-admin")
    ec2.revoke_security_group_ingress(GroupId=web, IpPermissions=rule(443, "0.0.0.0/0"))
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=rule(8443, "0.0.0.0/0"))
    ec2.revoke_security_group_ingress(GroupId=admin, IpPermissions=rule(8443, "10.0.0.0/16"))
    ec2.authorize_security_group_ingress(GroupId=admin, IpPermissions=rule(9443, "10.0.0.0/16"))
    scan = drift_scan(conn, network.subject)
    assert scan["status"] == "DRIFTED", scan["error"]

    result = remediate(conn)
    assert result.remediation is not None and result.remediation["status"] == "pr_opened", result.remediation
    [row] = remediations(conn)
    fixes = {f["address"]: (f["fix"], f["why"]) for f in row["fixes"]}
    assert fixes["aws_s3_bucket.logs"][0] == "adopt", fixes
    assert fixes["aws_security_group.web"][0] == "adopt", fixes
    assert fixes["aws_security_group.admin"] == (
        "revert",
        "ingress is written by a dynamic block, not literal blocks",
    )

    # only the bytes of the changed values (terraform fmt realigns the tag block it touched)
    diff = changed_lines(branch_diff(network, row["branch"]))
    assert diff == [
        '-    env   = "prod" # staging once, long ago',
        '-    owner = "platform"',
        '+    env  = "prod" # staging once, long ago',
        '+    cost = "shared"',
        "-    from_port   = 443",
        "-    to_port     = 443",
        "+    from_port   = 8443",
        "+    to_port     = 8443",
    ], diff
    body = pull_request(conn, row["branch"])["body"]
    assert "no change for the 2 adopted resource" in body, body


def test_a_cidr_revoked_from_a_rule_is_removed_from_its_list_and_the_merge_verified(
    conn: psycopg.Connection,
    aws: Aws,
    network: Repo,
) -> None:
    ec2 = offline_aws.client(aws.endpoint, "ec2")
    web = group_id(aws, "remediation-web")
    ec2.revoke_security_group_ingress(GroupId=web, IpPermissions=rule(22, "10.0.0.0/16"))
    scan = drift_scan(conn, network.subject)
    assert scan["status"] == "DRIFTED", scan["error"]
    remediate(conn)
    [row] = remediations(conn)
    assert row["status"] == "pr_opened", row["reason"]
    assert [(f["address"], f["fix"]) for f in row["fixes"]] == [("aws_security_group.web", "adopt")]
    assert changed_lines(branch_diff(network, row["branch"])) == [
        '-    cidr_blocks = ["10.0.0.0/16", "10.1.0.0/16"] # office, vpn',
        '+    cidr_blocks = ["10.1.0.0/16"] # office, vpn',
    ]
    git(network.work, "checkout", "--quiet", "main")
    git(network.work, "fetch", "--quiet", "origin")
    git(network.work, "merge", "--quiet", "--ff-only", f"origin/{row['branch']}")
    git(network.work, "push", "--quiet", "origin", "main")
    verifying = drift_scan(conn, network.subject)
    assert verifying["status"] == "CLEAN", verifying["error"]
    [row] = remediations(conn)
    assert (row["status"], row["verified_scan_id"]) == ("verified", verifying["id"])
