"""Benchmark: 100 drifted resources of one root adopted in one pull request, against one `terraform plan`.

Setup (not timed): a root of 100 S3 buckets with literal tags applied to a moto_server on loopback,
its code and state pushed to a bare git remote; every bucket's `env` tag changed out of band (every
other one also loses its `owner` tag and gains a `cost` tag); one
drift scan (the drift-scan agent, in process) gives the 100 findings as the remediation's payload
carries them.

Timed, alternately, --rounds times each (medians printed):
  plan         `terraform plan -lock=false` once on that root (init done beforehand): the baseline;
  remediation  the drift-remediation agent end to end: clone, 100 literals located and rewritten
               (tree-sitter), `terraform fmt`, init + plan + show (the verification plan), commit, push to
               the bare remote, the pull request on the local forge (a new branch each round).
The remediation's own share (everything but its init/plan/show steps) is printed too.
Goal: remediation <= 3x plan. Needs terraform, the provider mirror and moto (the dev extras).
Run with `make bench-remediation`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dispatcher.agents.base import AgentContext, Task  # noqa: E402
from dispatcher.agents.drift_remediation import DriftRemediationAgent  # noqa: E402
from dispatcher.agents.drift_scan import DriftScanAgent  # noqa: E402
from dispatcher.demo import offline_aws  # noqa: E402
from dispatcher.demo.offline_aws import ENV_ALLOWLIST, missing_prerequisite, moto_server, terraform_env  # noqa: E402

GOAL = 3.0
HEADER = """terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

variable "endpoint" {
  type = string
}

provider "aws" {
  region                      = "us-east-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  s3_use_path_style           = true
  endpoints {
    s3  = var.endpoint
    sts = var.endpoint
  }
}
"""
BUCKET = """
# bucket {i}
resource "aws_s3_bucket" "b{i:03d}" {{
  bucket = "bench-{i:03d}"
  tags = {{
    env   = "prod"
    owner = "team-{i}"
  }}
}}
"""
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True, capture_output=True)


def targets(remote: Path) -> dict[str, Any]:
    return {
        "pipeline": {
            "working_directory": ".",
            "workspace": "default",
            "var_files": [],
            "env_allowlist": ENV_ALLOWLIST,
            "name": "bench",
        },
        "repository": {"url": remote.as_uri(), "default_branch": "main", "iac_tool": "terraform"},
    }


def run_agent(agent: Any, payload: dict[str, Any], remote: Path, kind: str) -> Any:
    with tempfile.TemporaryDirectory(prefix="nightshift-bench-") as workdir:
        ctx = AgentContext(
            task=Task(id=1, kind=kind, subject="pipeline/1", payload=payload, attempt=1, max_attempts=1),
            workdir=Path(workdir),
            deadline=time.monotonic() + 1800,
            targets=targets(remote),
        )
        return asyncio.run(agent.run(ctx))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resources", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if reason := missing_prerequisite():
        sys.exit(f"bench-remediation needs Terraform, the provider mirror and moto: {reason}")

    with tempfile.TemporaryDirectory(prefix="nightshift-bench-remediation-") as tmp_name:
        tmp = Path(tmp_name)
        with moto_server(tmp) as endpoint:
            env = {
                **terraform_env(tmp, endpoint),
                "LANG": "C.UTF-8",
                "TF_PLUGIN_CACHE_DIR": str(tmp / "plugin-cache"),
            }
            (tmp / "plugin-cache").mkdir()
            os.environ.update(env)  # what the pipeline's env_allowlist passes to the agents
            remote, work = tmp / "remote.git", tmp / "work"
            subprocess.run(
                ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(remote)], check=True
            )
            work.mkdir()
            git(work, "init", "--quiet", "--initial-branch=main")
            (work / "main.tf").write_text(HEADER + "".join(BUCKET.format(i=i) for i in range(args.resources)))
            (work / ".gitignore").write_text(".terraform/\n")
            print(f"setup: applying {args.resources} buckets to moto ...", file=sys.stderr)
            offline_aws.terraform(work, env, "init")
            offline_aws.terraform(work, env, "apply", "-auto-approve", "-parallelism=20")
            git(work, "add", "-A")
            git(work, "commit", "--quiet", "-m", "buckets")
            git(work, "remote", "add", "origin", str(remote))
            git(work, "push", "--quiet", "origin", "main")
            s3 = offline_aws.client(endpoint, "s3")
            for i in range(args.resources):
                # every bucket's env changed; every other one also lost its owner tag and gained a
                # cost tag (a map key removed and one added: edited in the same tags block)
                tags = {"env": "staging", **({"owner": f"team-{i}"} if i % 2 == 0 else {"cost": "shared"})}
                s3.put_bucket_tagging(
                    Bucket=f"bench-{i:03d}",
                    Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]},
                )
            scan = run_agent(DriftScanAgent(), {}, remote, "drift-scan")
            findings = [
                dict(f, id=n, first_seen="2026-11-28T06:00:00+00:00")
                for n, f in enumerate(scan.scan.findings_json(), 1)
                if f["kind"] == "drift"
            ]
            print(f"setup: {len(findings)} drift findings", file=sys.stderr)
            if len(findings) != args.resources:
                sys.exit(
                    f"expected {args.resources} drifted buckets, the scan found {len(findings)}: "
                    f"{scan.scan.error}"
                )

            plans, remediations, own = [], [], []
            for round_ in range(args.rounds):
                start = time.perf_counter()
                offline_aws.terraform(work, env, "plan", "-lock=false", "-input=false")
                plans.append(time.perf_counter() - start)
                payload = {
                    "remediation_id": round_ + 1,
                    "branch": f"nightshift/drift-bench-{round_ + 1}",
                    "base": "main",
                    "pipeline": "bench",
                    "scan_id": 1,
                    "findings": findings,
                    "forge": {
                        "kind": "local",
                        "repository_id": 1,
                        "remote": str(remote),
                        "pull_requests": [],
                    },
                }
                start = time.perf_counter()
                result = run_agent(DriftRemediationAgent(), payload, remote, "drift-remediation")
                remediations.append(time.perf_counter() - start)
                report = result.remediation or {}
                if report.get("status") != "pr_opened":
                    sys.exit(f"the remediation failed: {report.get('reason')}")
                adopted = sum(1 for f in report["fixes"] if f["fix"] == "adopt")
                if adopted != args.resources:
                    sys.exit(f"{adopted} of {args.resources} adopted")
                terraform_steps = sum(
                    s["seconds"] for s in result.summary["steps"] if s["step"] in ("init", "plan", "show")
                )
                own.append(remediations[-1] - terraform_steps)

    plan, remediation, share = (statistics.median(x) for x in (plans, remediations, own))
    ratio = remediation / plan
    print(f"{args.resources} drifted resources, {args.rounds} rounds, medians")
    print(f"  terraform plan (baseline)        {plan:8.2f} s")
    print(
        f"  remediation, end to end          {remediation:8.2f} s   {ratio:5.2f}x the plan "
        f"(goal <= {GOAL:.0f}x: {'met' if ratio <= GOAL else 'NOT met'})"
    )
    print(f"  of which not terraform           {share:8.2f} s   (clone, edit, fmt, commit, push, forge)")


if __name__ == "__main__":
    main()
