"""Prowler against a cloud integration's live account: the part of the compliance-scan agent that runs it.

Runs when the integration has `credentials` (cloud_integrations.credentials, names and references only):

    {"env": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", ...],   variables passed from the dispatcher's
                                                                   environment (the standard AWS chain:
                                                                   keys, AWS_PROFILE + AWS_CONFIG_FILE,
                                                                   AWS_ENDPOINT_URL for moto/LocalStack)
     "role_arn": "arn:aws:iam::123456789012:role/audit",           optional: Prowler assumes it (--role)
     "regions": ["us-east-1"]}                                     optional: only these (--region)

    prowler aws --compliance <file per enabled framework> --output-formats json-ocsf
                --output-directory <workdir>/prowler --output-filename nightshift --no-banner
                --ignore-exit-code-3 --scan-unused-services [--region ...] [--role ...]

`--compliance` limits the checks to those of the enabled frameworks' Prowler files
(dispatcher.compliance.frameworks.PROWLER_FILES); `--ignore-exit-code-3` makes failed checks exit 0, so
any other exit status is an error; `--scan-unused-services` checks unused resources too (a security
group open to the world is a finding before something uses it). Only AWS is supported: Azure and GCP
integrations with credentials are an ERROR saying so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dispatcher.agents.base import AgentContext
from dispatcher.agents.process import allowed_env, run_process
from dispatcher.agents.workspace import DEADLINE_RESERVE_SECONDS, StepFailed, Steps
from dispatcher.compliance.frameworks import PROWLER_FILES
from dispatcher.compliance.prowler import ProwlerOutputError, parse_prowler
from dispatcher.compliance.scanners import require

OUTPUT_NAME = "nightshift"
MAX_OUTPUT_BYTES = 512 * 1024 * 1024
# passed values that are not secrets: diagnostics keep them readable, every other one is masked
NOT_SECRET_ENV = frozenset({"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR",
                            "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_PROFILE",
                            "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"})
CREDENTIAL_KEYS = frozenset({"env", "role_arn", "regions"})


def credentials_of(integration: Mapping[str, Any]) -> dict[str, Any] | None:
    """The integration's credentials object, checked; None: no live scan."""
    credentials = integration.get("credentials")
    if credentials is None:
        return None
    if not isinstance(credentials, dict):
        raise StepFailed("cloud_integrations.credentials must be a JSON object "
                         "({\"env\": [...], \"role_arn\": ..., \"regions\": [...]})")
    unknown = sorted(set(credentials) - CREDENTIAL_KEYS)
    if unknown:
        raise StepFailed(f"unknown key(s) in cloud_integrations.credentials: {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(CREDENTIAL_KEYS))}")
    for key in ("env", "regions"):
        value = credentials.get(key, [])
        if not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
            raise StepFailed(f"cloud_integrations.credentials.{key} must be a list of names")
    return credentials


async def scan_live_account(
    provider: str, frameworks: list[str], credentials: Mapping[str, Any], ctx: AgentContext, run: Steps,
    home: Path,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary, findings) of one Prowler run; StepFailed when it could not look."""
    if provider != "aws":
        raise StepFailed(f"Prowler scans of {provider} integrations are not supported yet (aws only); "
                         "clear the integration's credentials to scan its code with Checkov alone")
    files = [PROWLER_FILES[name][provider] for name in frameworks if provider in PROWLER_FILES.get(name, {})]
    if not files:
        raise StepFailed(f"none of the enabled frameworks ({', '.join(frameworks) or 'none'}) has a Prowler "
                         f"mapping for {provider}; enable one of: {', '.join(sorted(PROWLER_FILES))}")
    prowler = require("prowler")
    out = ctx.workdir / "prowler"
    out.mkdir()
    argv = [str(prowler), provider, "--compliance", *(name for name, _ in files),
            "--output-formats", "json-ocsf", "--output-directory", str(out), "--output-filename", OUTPUT_NAME,
            "--no-banner", "--ignore-exit-code-3", "--scan-unused-services"]
    if credentials.get("regions"):
        argv += ["--region", *credentials["regions"]]
    if credentials.get("role_arn"):
        argv += ["--role", str(credentials["role_arn"])]
    env = allowed_env(credentials.get("env") or (), home=home, extra={"TMPDIR": str(home)})
    run.secrets += [value for name, value in env.items() if name not in NOT_SECRET_ENV]
    timeout = ctx.remaining() - DEADLINE_RESERVE_SECONDS
    if timeout <= 0:
        raise StepFailed("the deadline passed before Prowler could start")
    result = await run_process(argv, cwd=ctx.workdir, env=env, timeout=timeout, max_output=64 * 1024)
    run.add("prowler", argv, result)
    if result.timed_out:
        raise StepFailed(f"prowler was killed at the deadline after {result.seconds:.0f}s")
    if result.returncode != 0:
        raise StepFailed(f"prowler failed with exit status {result.returncode}: "
                         + _reason(result.stderr, result.stdout))
    report = out / f"{OUTPUT_NAME}.ocsf.json"
    try:
        data = await asyncio.to_thread(report.read_bytes)
    except OSError:
        raise StepFailed(f"prowler exited 0 but wrote no {report.name}: "
                         f"{_reason(result.stderr, result.stdout)}") from None
    try:
        parsed = parse_prowler(data, requirements={key for _, key in files})
    except ProwlerOutputError as exc:
        raise StepFailed(f"Prowler's output is unusable: {exc}") from None
    if not parsed.checks:
        raise StepFailed("Prowler checked nothing (no finding at all in its output)")
    summary = {
        "prowler_version": parsed.version,
        "compliance": [name for name, _ in files],
        "regions": credentials.get("regions") or "all",
        "failed": len(parsed.findings),
        "passed": sum(c["passed"] for c in parsed.checks.values()),
        "manual": sum(c["manual"] for c in parsed.checks.values()),
        "checks": dict(sorted(parsed.checks.items())),
    }
    return summary, parsed.findings


def _reason(stderr: bytes, stdout: bytes) -> str:
    """The most telling line: Prowler logs errors as `... CRITICAL/ERROR ...` lines, else the last one."""
    lines = [line.strip() for data in (stderr, stdout)
             for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    flagged = [line for line in lines if "CRITICAL" in line or "ERROR" in line]
    chosen = (flagged or lines or ["(no output)"])[-1]
    return chosen[:1000]
