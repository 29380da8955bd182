"""bench-pr-review: what a pull-request review costs next to a full scan of the repository.

A repository of N Terraform roots (default 50; each the AWS provider from the local mirror and an S3
bucket) on a bare git remote; a pull request changes one root.

1. review vs full scan  the pr-review agent on that pull request (fetch into the git cache, merge base,
                        fmt, init + validate, Checkov at head and merge base of the changed root),
                        against a full scan of every root with the same tools: `terraform fmt -check
                        -recursive`, init -backend=false + validate per root, one `checkov -d .` over
                        the whole tree. Goal: the review <= 10 % of the full scan. The review is run
                        twice: the first clones into an empty cache, the second fetches.
2. webhook to comment   a signed pull_request webhook posted to `nightshift serve`, a dispatcher
                        running pr-review tasks, until the comment lands on the loopback GitHub
                        (tests/support/github_server.py); reported (opened, then synchronize).
Ratios are measured in one run: absolute times drift with the machine's load. The CPU seconds (user +
system, of the bench and every tool it waited for) are printed beside the wall times: on a shared
machine they are the steadier measure of the work done.

Terraform installs the provider once: the CLI configuration names the local filesystem mirror and
TF_PLUGIN_CACHE_DIR is shared, so `init` in each root links the provider, never copies it. What a root
costs is `validate` starting the AWS provider to read its schema (about 3 CPU seconds each), which is
what a real repository of AWS roots costs too; the review pays it once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dispatcher.agents.base import AgentContext, Task  # noqa: E402
from dispatcher.agents.pr_review import PrReviewAgent  # noqa: E402
from dispatcher.compliance.scanners import install, locate  # noqa: E402
from dispatcher.config import URL_ENV, resolve_url  # noqa: E402
from dispatcher.db import connect, drop_database, recreate_database  # noqa: E402
from dispatcher.demo.offline_aws import write_cli_config  # noqa: E402
from dispatcher.migrate import migrate  # noqa: E402
from tests.support.git_repos import git  # noqa: E402
from tests.support.github_server import GitHubServer  # noqa: E402
from tests.support.intake import TEST_SECRET, run_server, sign  # noqa: E402
from tests.support.pr_review_support import FULL_NAME, TOKEN, TOKEN_ENV, PullRequestRepo, payload  # noqa: E402

DATABASE = "nightshift_bench_pr_review"
GOAL = 0.10
ROOT_TF = """terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws" }}
  }}
}}

provider "aws" {{
  region = "us-east-1"
}}

resource "aws_s3_bucket" "data" {{
  bucket = "acme-data-{index:02d}"
}}
"""
CHANGE = '\nresource "aws_s3_bucket" "extra" {\n  bucket = "acme-extra"\n}\n'


def build(root: Path, roots: int) -> PullRequestRepo:
    files: dict[str, str | None] = {f"roots/r{i:02d}/main.tf": ROOT_TF.format(index=i) for i in range(roots)}
    return PullRequestRepo(root, files)


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its waited-for children: unlike wall time it
    hardly moves with the load of a shared machine."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_review(task_payload: dict[str, Any], task_id: int) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds, result) of one review, run as the dispatcher runs it."""
    task = Task(id=task_id, kind="pr-review", subject="pr/1/1", payload=task_payload, attempt=1,
                max_attempts=1)
    with tempfile.TemporaryDirectory(prefix="nightshift-bench-task-") as workdir:
        ctx = AgentContext(task=task, workdir=Path(workdir), deadline=time.monotonic() + 1800)
        started, cpu = time.perf_counter(), cpu_seconds()
        result = asyncio.run(PrReviewAgent().run(ctx))
        return time.perf_counter() - started, cpu_seconds() - cpu, result


def full_scan(tree: Path, roots: int, checkov: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU seconds) of fmt over the tree, init + validate of every root, one Checkov over
    everything."""
    def run(argv: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> None:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=1800, check=False)
        if done.returncode not in ok:
            raise SystemExit(f"{' '.join(argv)} failed in {cwd}: {done.stderr.decode()[-500:]}")

    started, cpu = time.perf_counter(), cpu_seconds()
    run(["terraform", "fmt", "-check", "-recursive", "-no-color"], tree, ok=(0, 3))
    for i in range(roots):
        directory = tree / "roots" / f"r{i:02d}"
        run(["terraform", "init", "-backend=false", "-input=false", "-no-color"], directory)
        run(["terraform", "validate", "-json", "-no-color"], directory)
    run([str(checkov), "-d", ".", "-o", "json", "--skip-download", "--soft-fail", "--quiet"], tree)
    return time.perf_counter() - started, cpu_seconds() - cpu


def webhook_body(repo: PullRequestRepo, action: str, head: str, base: str) -> bytes:
    return json.dumps({
        "action": action, "number": 1,
        "pull_request": {"number": 1, "html_url": "https://github.example/acme/infra/pull/1",
                         "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "head": {"ref": "feature", "sha": head, "repo": {"clone_url": repo.url}},
                         "base": {"ref": "main", "sha": base}},
        "repository": {"full_name": FULL_NAME, "clone_url": repo.url}}).encode()


def webhook_to_comment(url: str, repo: PullRequestRepo, github: GitHubServer, env: dict[str, str],
                       tmp: Path, head: str) -> list[tuple[str, float]]:
    with connect(url, autocommit=True) as conn:
        conn.execute(
            "WITH o AS (INSERT INTO nightshift.organizations (name) VALUES ('bench') RETURNING id)"
            " INSERT INTO nightshift.repositories (organization_id, name, url, full_name,"
            " pr_review_enabled, forge, forge_api_url, forge_token_ref)"
            " SELECT id, 'infra', %s, %s, true, 'github', %s, %s FROM o",
            (repo.url, FULL_NAME, github.url, f"env:{TOKEN_ENV}"))
    base = git(repo.work, "rev-parse", "main")
    github.repo(FULL_NAME).comments.clear()  # the direct reviews above wrote one for this same head
    log = (tmp / "dispatcher.log").open("wb")
    dispatcher = subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "dispatcher", "run", "--database-url", url,
         "--kinds", "pr-review", "--poll-interval", "0.5"], env={**os.environ, **env}, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    timings = []
    try:
        with run_server(url, env={"NIGHTSHIFT_LOG_LEVEL": "WARNING"}) as intake:
            for action in ("opened", "synchronize"):
                if action == "synchronize":
                    changed = ROOT_TF.format(index=7) + CHANGE + "# again\n"
                    repo.commit({"roots/r07/main.tf": changed}, "again")
                    head = repo.push_pull(1, "feature")
                before = len(github.comments_of(FULL_NAME, 1)) and github.comments_of(FULL_NAME, 1)[0]
                started = time.perf_counter()
                body = webhook_body(repo, action, head, base)
                answer = intake.deliver(body, "pull_request", str(uuid.uuid4()),
                                        signature=sign(body, TEST_SECRET))
                if answer.status_code >= 300:
                    raise SystemExit(f"the intake answered {answer.status_code}: {answer.text}")
                deadline = time.monotonic() + 600
                with github.comment_events:
                    while not (github.comments_of(FULL_NAME, 1)
                               and github.comments_of(FULL_NAME, 1)[0] != before
                               and head[:12] in github.comments_of(FULL_NAME, 1)[0]):
                        if time.monotonic() > deadline or dispatcher.poll() is not None:
                            tail = (tmp / "dispatcher.log").read_text()[-3000:]
                            raise SystemExit("no comment arrived:\n" + tail)
                        github.comment_events.wait(0.5)
                timings.append((action, time.perf_counter() - started))
                reviewed = github.comments_of(FULL_NAME, 1)[0]
                if "`roots/r07`" not in reviewed or "`roots/r08`" in reviewed:
                    raise SystemExit(f"the {action} review did not review roots/r07 alone:\n"
                                     + reviewed[:2000])
    finally:
        os.killpg(dispatcher.pid, signal.SIGTERM)
        dispatcher.wait(timeout=60)
        log.close()
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--roots", type=int, default=50, help="Terraform roots in the repository")
    args = parser.parse_args()
    if shutil.which("terraform") is None:
        raise SystemExit("bench-pr-review needs terraform on PATH")
    if not os.environ.get(URL_ENV):
        from dispatcher.localpg import LocalCluster

        LocalCluster.from_env().start()
    found = locate("checkov")
    checkov = found.path if found else install("checkov")
    with tempfile.TemporaryDirectory(prefix="nightshift-bench-pr-") as name:
        tmp = Path(name)
        env = {"NIGHTSHIFT_CACHE_DIR": str(tmp / "cache"), "TF_CLI_CONFIG_FILE": str(write_cli_config(tmp)),
               "TF_PLUGIN_CACHE_DIR": str(tmp / "plugins"), TOKEN_ENV: TOKEN, "CHECKPOINT_DISABLE": "1",
               "TF_IN_AUTOMATION": "1", "BC_SKIP_MAPPING": "TRUE"}
        (tmp / "plugins").mkdir()
        os.environ.update(env)
        repo = build(tmp / "git", args.roots)
        head = repo.open(1, "feature", {"roots/r07/main.tf": ROOT_TF.format(index=7) + CHANGE})
        # the full scan runs in a clone of its own: init writes .terraform/ and a lock file into every
        # root, which must not land in the pull request's next commit (it would change all 50 roots)
        scanned = tmp / "full-scan"
        git(tmp, "clone", "--quiet", str(repo.bare), str(scanned))
        git(scanned, "checkout", "--quiet", head)
        scan_env = {**os.environ, "HOME": str(tmp)}
        with GitHubServer(None, token=TOKEN) as github:
            github.add_pull(FULL_NAME, 1, "feature", head_sha=head)
            full_scan(scanned, 1, checkov, scan_env)  # warm: the provider into the plugin cache
            print(f"pr-review bench: {args.roots} roots, a pull request changes 1 ({os.cpu_count()} CPUs, "
                  f"load average {os.getloadavg()[0]:.1f})")
            full, full_cpu = full_scan(scanned, args.roots, checkov, scan_env)
            print(f"  full scan of every root          {full:8.2f} s   "
                  f"(fmt, init + validate x{args.roots}, checkov -d .; {full_cpu:.1f} CPU s)", flush=True)
            reviews = []
            for task_id, label in ((1, "empty git cache  "), (2, "cached repository")):
                seconds, cpu, result = timed_review(payload(repo, 1, head, "feature", github.url), task_id)
                assert result.scan.summary.get("roots") == ["roots/r07"], result.scan.summary
                reviews.append(seconds)
                print(f"  review, {label}        {seconds:8.2f} s   {100 * seconds / full:5.1f} % of the "
                      f"full scan ({cpu:.1f} CPU s, {100 * cpu / full_cpu:4.1f} % of its CPU)", flush=True)
            server_url = resolve_url(None)
            url = recreate_database(server_url, DATABASE)
            migrate(url)
            try:
                hooks = webhook_to_comment(url, repo, github, env, tmp, head)
            finally:
                drop_database(server_url, DATABASE)
    review = statistics.median(reviews)
    print(f"  review (median)                  {review:8.2f} s   {100 * review / full:5.1f} % "
          f"(goal <= {100 * GOAL:.0f} %; load average now {os.getloadavg()[0]:.1f})")
    for action, seconds in hooks:
        print(f"  webhook to comment ({action:<11}) {seconds:8.2f} s")
    ok = review / full <= GOAL
    print("goal met" if ok else "GOAL NOT MET")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
