"""The optional plan of a pull-request review, on real parts: a root whose state was applied to a
moto_server on loopback (the hashicorp/aws provider from the local filesystem mirror), a pull request
that changes it, and the pr-review agent running `terraform plan` with the pipeline's allow-listed
credentials. Then the same with credentials that moto refuses (its IAM authentication on): the plan's
reason is shown and the rest of the review stands. Checkov is left out here (its own tests cover it):
the scanners directory is empty, and the comment says Checkov was not run."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dispatcher.demo import offline_aws
from dispatcher.demo.offline_aws import missing_prerequisite, moto_server, terraform_env
from tests.support.github_server import GitHubServer
from tests.support.pr_review_support import FULL_NAME, TOKEN, TOKEN_ENV, PullRequestRepo, payload, review

pytestmark = [pytest.mark.terraform, pytest.mark.slow, pytest.mark.timeout(900)]

SECRET_KEY = "plan-secret-key-6f1d0c9a2b7e"
API_TOKEN = "plan-api-token-93be41d7c05a"
ALLOWLIST = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "TF_VAR_*"]
APP = """terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws" }}
  }}
  backend "local" {{
    path = "{state}"
  }}
}}

variable "endpoint" {{
  type = string
}}

variable "api_token" {{
  type      = string
  sensitive = true
}}

provider "aws" {{
  region                      = "us-east-1"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true

  endpoints {{
    s3  = var.endpoint
    sts = var.endpoint
  }}
}}

# read at every plan: credentials the cloud refuses fail the plan here
data "aws_caller_identity" "current" {{}}

resource "aws_s3_bucket" "logs" {{
  bucket = "acme-logs"
  tags = {{
    env     = "{env}"
    account = data.aws_caller_identity.current.account_id
  }}
}}
"""
EXTRA = 'resource "aws_s3_bucket" "extra" {\n  bucket = "acme-extra"\n}\n'
LIGHT = 'resource "terraform_data" "a" {\n  input = "VALUE"\n}\n'


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A moto_server and the state of APP applied to it: (endpoint, state file)."""
    if reason := missing_prerequisite():
        pytest.skip(f"SKIPPED LOUDLY: the plan tests need Terraform, the provider mirror and moto: {reason}")
    tmp = tmp_path_factory.mktemp("plan")
    state = tmp / "state" / "terraform.tfstate"
    state.parent.mkdir()
    with moto_server(tmp) as endpoint:
        apply_dir = tmp / "apply"
        apply_dir.mkdir()
        (apply_dir / "main.tf").write_text(APP.format(state=state, env="prod"))
        env = {**terraform_env(tmp, endpoint), "TF_VAR_api_token": API_TOKEN}
        offline_aws.terraform(apply_dir, env, "init", "-input=false")
        offline_aws.terraform(apply_dir, env, "apply", "-auto-approve", "-input=false")
        yield endpoint, state


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIGHTSHIFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NIGHTSHIFT_SCANNERS_DIR", str(tmp_path / "no-scanners"))
    monkeypatch.delenv("NIGHTSHIFT_CHECKOV", raising=False)
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(offline_aws.write_cli_config(tmp_path)))
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    # the pipeline's credentials, in the dispatcher's environment, passed by its allow-list only
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("TF_VAR_api_token", API_TOKEN)


@pytest.fixture
def github() -> Iterator[GitHubServer]:
    with GitHubServer(None, token=TOKEN) as server:
        server.repo(FULL_NAME)
        yield server
    assert server.errors == [], server.errors


def pull_request(tmp_path: Path, github: GitHubServer, state: Path) -> tuple[PullRequestRepo, str]:
    """main: APP (as applied) and a light root; the pull request retags the bucket, adds one, and
    changes the light root too (which asks for no plan)."""
    repo = PullRequestRepo(tmp_path / "git", {"roots/app/main.tf": APP.format(state=state, env="prod"),
                                              "roots/light/main.tf": LIGHT.replace("VALUE", "a")})
    head = repo.open(1, "feature", {"roots/app/main.tf": APP.format(state=state, env="staging"),
                                    "roots/app/extra.tf": EXTRA,
                                    "roots/light/main.tf": LIGHT.replace("VALUE", "b")})
    github.add_pull(FULL_NAME, 1, "feature", head_sha=head)
    return repo, head


def plan_payload(repo: PullRequestRepo, head: str, github: GitHubServer) -> dict[str, Any]:
    return {**payload(repo, 1, head, "feature", github.url),
            "plans": [{"pipeline_id": 1, "name": "app", "working_directory": "roots/app",
                       "workspace": "default", "var_files": [], "env_allowlist": ALLOWLIST}]}


def everything_kept(result: Any, github: GitHubServer) -> str:
    return json.dumps(result.to_json()) + "".join(github.comments_of(FULL_NAME, 1))


def test_a_plan_enabled_root_is_planned_with_its_credentials(
        env: None, applied: tuple[str, Path], github: GitHubServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint, state = applied
    monkeypatch.setenv("TF_VAR_endpoint", endpoint)
    repo, head = pull_request(tmp_path, github, state)

    result = review(plan_payload(repo, head, github))
    assert result.scan is not None and result.scan.status == "CLEAN", result.scan.summary
    summary = result.scan.summary
    assert summary["roots"] == ["roots/app", "roots/light"]
    # the refreshed state against moto: the tag is a change, the new bucket an add
    plan = summary["plans"]["roots/app"]
    assert (plan["add"], plan["change"], plan["destroy"]) == (1, 1, 0), plan
    assert plan["resources"] == {"create": ["aws_s3_bucket.extra"], "update": ["aws_s3_bucket.logs"]}
    assert "roots/light" not in summary["plans"]  # its pipeline did not ask for a plan: off by default
    steps = [step["step"] for step in result.scan.artifacts["steps"]]
    assert "plan roots/app" in steps and not any(s.startswith("plan") and "light" in s for s in steps)

    [comment] = github.comments_of(FULL_NAME, 1)
    assert "**Plan** (pipeline `app`): 1 to add, 1 to change, 0 to destroy" in comment
    assert "`aws_s3_bucket.extra`" in comment and "Checkov" in comment  # said not to have run
    kept = everything_kept(result, github)
    assert SECRET_KEY not in kept and API_TOKEN not in kept and TOKEN not in kept


def test_refused_credentials_are_a_reason_not_a_failed_review(
        env: None, applied: tuple[str, Path], github: GitHubServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, state = applied
    # a moto that checks credentials (IAM authentication from its first request): ours are unknown there
    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "0")
    with moto_server(tmp_path) as strict:
        monkeypatch.setenv("TF_VAR_endpoint", strict)
        repo, head = pull_request(tmp_path, github, state)
        result = review(plan_payload(repo, head, github))

    assert result.scan is not None and result.scan.status == "CLEAN", result.scan.summary
    plan = result.scan.summary["plans"]["roots/app"]
    assert set(plan) == {"pipeline", "workspace", "error"}, plan
    assert plan["error"].startswith("terraform plan failed:") and "403" in plan["error"], plan
    [comment] = github.comments_of(FULL_NAME, 1)
    assert "**Plan** (pipeline `app`): not available: terraform plan failed:" in comment
    assert "no problem found" in comment  # the review itself stands
    [status] = github.repo(FULL_NAME).statuses
    assert status["state"] == "success"
    kept = everything_kept(result, github)
    assert SECRET_KEY not in kept and API_TOKEN not in kept


def test_a_fork_is_never_planned(env: None, applied: tuple[str, Path], github: GitHubServer,
                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint, state = applied
    monkeypatch.setenv("TF_VAR_endpoint", endpoint)
    repo, head = pull_request(tmp_path, github, state)
    fork = tmp_path / "fork.git"
    shutil.copytree(repo.bare, fork)
    task = {**plan_payload(repo, head, github), "head_clone_url": fork.as_uri()}
    result = review(task)
    assert result.scan is not None
    plan = result.scan.summary["plans"]["roots/app"]
    assert plan["error"].startswith("not run: the pull request comes from a fork"), plan
    assert not any(step["step"].startswith("plan") for step in result.scan.artifacts["steps"])


def test_the_payload_names_plan_enabled_pipelines_only(conn: psycopg.Connection) -> None:
    [(repository,)] = conn.execute(
        "WITH o AS (INSERT INTO nightshift.organizations (name) VALUES ('acme') RETURNING id)"
        " INSERT INTO nightshift.repositories (organization_id, name, url, full_name, pr_review_enabled)"
        " SELECT id, 'infra', 'https://git.example/acme/infra.git', %s, true FROM o RETURNING id",
        (FULL_NAME,)).fetchall()
    conn.execute("INSERT INTO nightshift.pipelines (repository_id, name, working_directory, env_allowlist)"
                 " VALUES (%s, 'app', 'roots/app', %s), (%s, 'light', 'roots/light', '{}')",
                 (repository, ALLOWLIST, repository))
    [(task, _)] = conn.execute("SELECT * FROM nightshift.enqueue_pr_review(%s, 1, '{}')", (repository,))
    [(plans,)] = conn.execute("SELECT payload -> 'plans' FROM nightshift.tasks WHERE id = %s", (task,))
    assert plans == []  # off by default

    conn.execute("UPDATE nightshift.pipelines SET pr_plan = true WHERE name = 'app'")
    conn.execute("SELECT * FROM nightshift.enqueue_pr_review(%s, 1, '{}')", (repository,))
    [(plans,)] = conn.execute("SELECT payload -> 'plans' FROM nightshift.tasks WHERE id = %s", (task,))
    [app] = plans
    assert app["working_directory"] == "roots/app" and app["env_allowlist"] == ALLOWLIST
    assert set(app) == {"pipeline_id", "name", "working_directory", "workspace", "var_files", "env_allowlist"}
