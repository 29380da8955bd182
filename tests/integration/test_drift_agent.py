"""The drift-scan agent, driven as the dispatcher drives it: target rows in, one ScanReport recorded.

A fake `terraform` shows what the agent does with a tool that hangs, forks and floods, or leaks its
environment; the real terraform (built-in `terraform_data` resources: no provider, no network) shows
clean scans, pending changes, var files, workspaces, git checkouts and Terraform's own diagnostics.
The moto-backed scans of real AWS drift are in test_drift_moto.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from dispatcher.agents.drift_scan import Pipeline, pipeline_env
from dispatcher.agents.workspace import DEADLINE_RESERVE_SECONDS, MAX_ERROR_CHARS
from tests.support.drift_support import (
    claim,
    findings_by_address,
    make_pipeline,
    needs_terraform,
    record,
    run_agent,
    scan_in_process,
)

MODULE = """
variable "release" {
  type    = string
  default = "v1"
}

resource "terraform_data" "app" {
  input = var.release
}
"""


def fake_terraform(bin_dir: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "terraform"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def repo_with(tmp_path: Path, text: str = MODULE) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    (repo / "main.tf").write_text(text)
    return repo


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting for its reaper."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "Z" not in state.split()[1]


def test_a_hanging_forking_flooding_tool_is_killed_at_the_deadline(
    conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    pids = tmp_path / "pids"
    fake_terraform(tmp_path / "bin", f"""
echo $$ >> {pids}
for i in 1 2 3; do sleep 300 & echo $! >> {pids}; done
yes "terraform is flooding its standard output" &
echo $! >> {pids}
sleep 300
""", monkeypatch)
    subject = make_pipeline(conn, repo_with(tmp_path))

    started = time.monotonic()
    # commands are killed DEADLINE_RESERVE_SECONDS (3s) before the task's deadline
    scan = scan_in_process(conn, subject, timeout=3 + DEADLINE_RESERVE_SECONDS)
    took = time.monotonic() - started

    assert scan["status"] == "ERROR"
    assert "`terraform init -input=false` was killed at the deadline after 3s" in scan["error"]
    assert "[the output exceeded the capture limit" in scan["error"]
    assert "[... stdout cut]" in scan["error"] and len(scan["error"]) <= MAX_ERROR_CHARS
    assert took < 3 + DEADLINE_RESERVE_SECONDS + 5, "killed at the deadline, not after the child's sleep"
    started_pids = [int(line) for line in pids.read_text().split()]
    assert len(started_pids) == 5
    assert [pid for pid in started_pids if alive(pid)] == [], "the whole process group must be gone"
    task = conn.execute("SELECT status FROM nightshift.tasks WHERE id = %s", (scan["task_id"],)).fetchone()
    assert task == ("done",), "an ERROR scan completes the task: it is a result, not a crash"
    assert scan["artifacts"]["steps"][0]["timed_out"] is True


def test_the_environment_is_an_allow_list_and_secrets_are_masked(
    conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_terraform(tmp_path / "bin", "env | sort >&2\nexit 1\n", monkeypatch)
    monkeypatch.setenv("TF_VAR_token", "tok-SECRET-12345")
    monkeypatch.setenv("NIGHTSHIFT_DATABASE_URL", "postgresql://u:dbpass-leak@h/db")
    monkeypatch.setenv("NIGHTSHIFT_SOMETHING", "internal-leak")
    monkeypatch.setenv("DISPATCHER_ONLY", "not-for-terraform")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", "/root/.terraformrc")
    subject = make_pipeline(conn, repo_with(tmp_path), env_allowlist=["TF_VAR_*", "NIGHTSHIFT_*"])

    scan = scan_in_process(conn, subject)
    env = dict(line.split("=", 1) for line in scan["error"].splitlines() if "=" in line and line[0].isupper())

    assert scan["status"] == "ERROR" and "failed with exit status 1" in scan["error"]
    assert env["TF_VAR_token"] == "***" and "tok-SECRET" not in scan["error"]
    assert "leak" not in scan["error"] and "NIGHTSHIFT_DATABASE_URL" not in env
    assert "DISPATCHER_ONLY" not in env and "TF_CLI_CONFIG_FILE" not in env, "only allow-listed names"
    assert (env["TF_IN_AUTOMATION"], env["TF_INPUT"], env["CHECKPOINT_DISABLE"]) == ("1", "0", "1")
    assert env["HOME"].endswith("/home") and env["HOME"] != os.environ.get("HOME"), "a private HOME"


def test_pipeline_env_never_passes_the_dispatcher_credentials(tmp_path: Path) -> None:
    spec = Pipeline(source=".", branch="main", tool="terraform", working_directory=".", workspace="staging",
                    var_files=(), env_allowlist=("*", "PGPASSWORD", "AWS_PROFILE"))
    source = {"PATH": "/bin", "NIGHTSHIFT_DATABASE_URL": "x", "PGPASSWORD": "pw", "DATABASE_URL": "y",
              "NIGHTSHIFT_TOKEN": "t", "AWS_PROFILE": "prod", "OTHER": "o"}
    env = pipeline_env(spec, home=tmp_path / "h", tmp=tmp_path / "t", source=source)
    assert env["TF_WORKSPACE"] == "staging" and env["AWS_PROFILE"] == "prod" and env["OTHER"] == "o"
    assert not {"NIGHTSHIFT_DATABASE_URL", "PGPASSWORD", "DATABASE_URL", "NIGHTSHIFT_TOKEN"} & set(env)


def test_a_missing_tool_is_an_error_scan(conn: psycopg.Connection, tmp_path: Path) -> None:
    if shutil.which("tofu"):
        pytest.skip("tofu is installed here")
    subject = make_pipeline(conn, repo_with(tmp_path), iac_tool="tofu")
    scan = scan_in_process(conn, subject)
    assert scan["status"] == "ERROR" and scan["error"].startswith("tofu not found on PATH")


def test_a_working_directory_that_leaves_the_repository_is_refused(
    conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_terraform(tmp_path / "bin", "exit 99\n", monkeypatch)  # never reached
    repo = repo_with(tmp_path)
    (repo / "escape").symlink_to(tmp_path)
    subject = make_pipeline(conn, repo, working_directory="escape")
    scan = scan_in_process(conn, subject)
    assert (scan["status"], scan["error"]) == (
        "ERROR", "working_directory 'escape' leads out of the repository")


def test_an_unknown_repository_path_is_an_error_scan(
    conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_terraform(tmp_path / "bin", "exit 99\n", monkeypatch)  # never reached
    subject = make_pipeline(conn, tmp_path / "nowhere")
    scan = scan_in_process(conn, subject)
    assert scan["status"] == "ERROR" and "neither a git URL nor a local directory" in scan["error"]


# --- the real terraform ----------------------------------------------------------------------------------


def terraform(cwd: Path, *args: str) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd.parent), "TF_IN_AUTOMATION": "1",
           "CHECKPOINT_DISABLE": "1"}
    subprocess.run(["terraform", *args, "-no-color"], cwd=cwd, env=env, check=True, capture_output=True)


def applied_repo(tmp_path: Path, *apply_args: str) -> Path:
    repo = repo_with(tmp_path)
    terraform(repo, "init", "-input=false")
    terraform(repo, "apply", "-auto-approve", "-input=false", *apply_args)
    # what a checkout looks like: code and (local) state
    shutil.rmtree(repo / ".terraform", ignore_errors=True)
    return repo


@pytest.mark.terraform
@needs_terraform
def test_a_clean_plan_is_a_clean_scan_and_code_changes_are_pending(
    conn: psycopg.Connection, tmp_path: Path,
) -> None:
    repo = applied_repo(tmp_path)
    subject = make_pipeline(conn, repo)

    clean = scan_in_process(conn, subject)
    assert (clean["status"], clean["error"]) == ("CLEAN", None)
    assert clean["summary"]["plan_exit_code"] == 0 and clean["summary"]["drift"] == 0
    assert clean["summary"]["tool_version"] and [s["step"] for s in clean["artifacts"]["steps"]] == [
        "init", "plan", "show"]
    assert findings_by_address(conn, subject) == {}
    assert not (repo / ".terraform").exists(), "the scan works on a private copy"

    (repo / "main.tf").write_text(MODULE.replace('"v1"', '"v2"'))
    pending = scan_in_process(conn, subject)
    assert pending["status"] == "CLEAN", "code not applied yet is a pending change, not drift"
    assert pending["summary"]["pending_changes"] == 1 and pending["summary"]["plan_exit_code"] == 2
    finding = findings_by_address(conn, subject)[("pending-change", "terraform_data.app")]
    assert finding["status"] == "OPEN" and finding["change_type"] == "update"
    assert {"path": "input", "before": "v1", "after": "v2"} in finding["details"]["attributes"]

    (repo / "main.tf").write_text(MODULE)
    scan_in_process(conn, subject)
    reverted = findings_by_address(conn, subject)[("pending-change", "terraform_data.app")]
    assert reverted["status"] == "RESOLVED"


@pytest.mark.terraform
@needs_terraform
def test_a_broken_configuration_is_an_error_scan_with_the_diagnostic(
    conn: psycopg.Connection, tmp_path: Path,
) -> None:
    repo = repo_with(tmp_path, 'resource "terraform_data" "x" {\n  input = \n')
    subject = make_pipeline(conn, repo)
    scan = scan_in_process(conn, subject)
    assert scan["status"] == "ERROR"
    assert scan["error"].startswith("`terraform init -input=false` failed with exit status 1")
    assert "Error: Invalid expression" in scan["error"] and "on main.tf line 2" in scan["error"]


@pytest.mark.terraform
@needs_terraform
def test_var_files_are_passed_and_a_missing_variable_is_an_error(
    conn: psycopg.Connection, tmp_path: Path,
) -> None:
    module = MODULE.replace('  default = "v1"\n', "")
    repo = repo_with(tmp_path, module)
    (repo / "envs").mkdir()
    (repo / "envs" / "prod.tfvars").write_text('release = "v7"\n')
    terraform(repo, "init", "-input=false")
    terraform(repo, "apply", "-auto-approve", "-input=false", "-var-file=envs/prod.tfvars")

    with_vars = make_pipeline(conn, repo, var_files=["envs/prod.tfvars"])
    assert scan_in_process(conn, with_vars)["status"] == "CLEAN"
    assert findings_by_address(conn, with_vars) == {}

    without = make_pipeline(conn, repo, name="forgot-vars")
    scan = scan_in_process(conn, without)
    assert scan["status"] == "ERROR" and "`terraform plan -input=false` failed" in scan["error"]
    assert "No value for required variable" in scan["error"]


@pytest.mark.terraform
@needs_terraform
def test_a_workspace_is_selected_and_a_missing_one_is_an_error(
    conn: psycopg.Connection, tmp_path: Path,
) -> None:
    repo = repo_with(tmp_path)
    terraform(repo, "init", "-input=false")
    terraform(repo, "workspace", "new", "staging")
    terraform(repo, "apply", "-auto-approve", "-input=false", "-var=release=staging-1")
    (repo / ".terraform" / "environment").unlink()  # the checkout's selected workspace is not ours

    staging = make_pipeline(conn, repo, workspace="staging")
    scan = scan_in_process(conn, staging)
    # the default workspace has no state: only the staging state makes this a (pending) update
    assert scan["status"] == "CLEAN" and scan["summary"]["workspace"] == "staging"
    [finding] = findings_by_address(conn, staging).values()
    assert finding["change_type"] == "update"
    assert {"path": "input", "before": "staging-1", "after": "v1"} in finding["details"]["attributes"]

    missing = make_pipeline(conn, repo, workspace="nope", name="nope")
    scan = scan_in_process(conn, missing)
    assert (scan["status"], scan["error"]) == (
        "ERROR", "workspace 'nope' does not exist (the state has: default, staging)")
    steps = [s["step"] for s in scan["artifacts"]["steps"]]
    assert steps == ["init", "workspace"], "no plan of a workspace that does not exist"


@pytest.mark.terraform
@needs_terraform
def test_a_git_repository_is_cloned(conn: psycopg.Connection, tmp_path: Path) -> None:
    repo = applied_repo(tmp_path)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "main.tf", "terraform.tfstate"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "infra"], cwd=repo, check=True)
    (repo / "main.tf").write_text(MODULE.replace('"v1"', '"uncommitted"'))  # not on the branch

    subject = make_pipeline(conn, f"file://{repo}")
    task = claim(conn, subject)
    result = run_agent(conn, task)
    scan = record(conn, task, result)
    assert scan["status"] == "CLEAN", scan["error"]
    assert [s["step"] for s in scan["artifacts"]["steps"]] == ["clone", "init", "plan", "show"]
    assert findings_by_address(conn, subject) == {}
