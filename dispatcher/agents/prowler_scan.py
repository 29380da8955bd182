"""Prowler against a cloud integration's live account: the part of the compliance-scan agent that runs it.

Runs when the integration has `credentials` (cloud_integrations.credentials): names, paths and ids only,
never a secret value. Per provider:

    aws    {"env": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", ...],  variables passed from the
                                                   dispatcher's environment (the standard AWS chain: keys,
                                                   AWS_PROFILE + AWS_CONFIG_FILE, AWS_ENDPOINT_URL for moto)
            "role_arn": "arn:aws:iam::123456789012:role/audit",          optional: Prowler assumes it (--role)
            "regions": ["us-east-1"]}                                    optional: only these (--region)
    azure  {"auth": "sp-env" | "az-cli" | "managed-identity",           required: Prowler's auth mode
                                                   (--sp-env-auth, --az-cli-auth, --managed-identity-auth;
                                                   its browser login cannot run at night)
            "env": ["AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"],   what the mode reads:
                                                   sp-env needs these three names; az-cli reads the CLI's
                                                   login under HOME (pass AZURE_CONFIG_DIR)
            "subscription_ids": ["..."]}                                 optional (--subscription-ids)
    gcp    {"credentials_file": "/etc/nightshift/gcp-audit.json",       a service account key file, passed
                                                   as a path (--credentials-file), never read here;
            or "impersonate_service_account": "audit@p.iam.gserviceaccount.com",
            or neither: Application Default Credentials ("env": ["GOOGLE_APPLICATION_CREDENTIALS"]),
            "project_ids": ["..."], "organization_id": "..."}            optional (--project-ids,
                                                   --organization-id)

    prowler PROVIDER --compliance <file per enabled framework> --output-formats json-ocsf
                     --output-directory <workdir>/prowler --output-filename nightshift --no-banner
                     --ignore-exit-code-3 [--scan-unused-services] <the provider's options above>

`--compliance` limits the checks to those of the enabled frameworks' Prowler files
(dispatcher.compliance.frameworks.PROWLER_FILES); `--ignore-exit-code-3` makes failed checks exit 0, so
any other exit status is an error; `--scan-unused-services` (AWS only) checks unused resources too (a
security group open to the world is a finding before something uses it). What is missing before the
run (a variable the mode needs that the dispatcher does not have, a key file that is not there) is an
ERROR naming it, without starting Prowler. Every passed value but a few harmless ones is masked in
whatever is stored of Prowler's output.
"""

from __future__ import annotations

import asyncio
import os
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
                            "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AZURE_CONFIG_DIR",
                            "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG"})
LIST_KEYS = frozenset({"env", "regions", "subscription_ids", "project_ids"})
CREDENTIAL_KEYS: dict[str, frozenset[str]] = {
    "aws": frozenset({"env", "role_arn", "regions"}),
    "azure": frozenset({"env", "auth", "subscription_ids"}),
    "gcp": frozenset({"env", "credentials_file", "impersonate_service_account", "project_ids",
                      "organization_id"}),
}
AZURE_AUTH = {"sp-env": "--sp-env-auth", "az-cli": "--az-cli-auth",
              "managed-identity": "--managed-identity-auth"}
# what Prowler's --sp-env-auth reads (the Azure SDK's EnvironmentCredential with a client secret)
AZURE_SP_ENV = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET")


def credentials_of(integration: Mapping[str, Any]) -> dict[str, Any] | None:
    """The integration's credentials object, checked against its provider; None: no live scan."""
    credentials = integration.get("credentials")
    if credentials is None:
        return None
    provider = str(integration.get("provider"))
    known = CREDENTIAL_KEYS.get(provider, frozenset())
    if not isinstance(credentials, dict):
        raise StepFailed("cloud_integrations.credentials must be a JSON object of names and references "
                         f"(for {provider}: {', '.join(sorted(known)) or 'none known'})")
    unknown = sorted(set(credentials) - known)
    if unknown:
        raise StepFailed(f"unknown key(s) in cloud_integrations.credentials: {', '.join(unknown)}; "
                         f"known for {provider}: {', '.join(sorted(known))}")
    for key in sorted(LIST_KEYS & set(credentials)):
        value = credentials[key]
        if not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
            raise StepFailed(f"cloud_integrations.credentials.{key} must be a list of names")
    for key in sorted(set(credentials) - LIST_KEYS):
        if not (isinstance(credentials[key], str) and credentials[key]):
            raise StepFailed(f"cloud_integrations.credentials.{key} must be a non-empty string")
    return credentials


def provider_options(provider: str, credentials: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    """Prowler's options for the provider's account and login; StepFailed when they cannot work."""
    env = set(credentials.get("env") or ())
    if provider == "aws":
        argv = ["--scan-unused-services"]
        if credentials.get("regions"):
            argv += ["--region", *credentials["regions"]]
        if credentials.get("role_arn"):
            argv += ["--role", credentials["role_arn"]]
        return argv
    if provider == "azure":
        auth = credentials.get("auth")
        if auth not in AZURE_AUTH:
            raise StepFailed(f"cloud_integrations.credentials.auth must be one of {', '.join(AZURE_AUTH)} "
                             f"for an azure integration, not {auth!r}")
        if auth == "sp-env":
            missing = [name for name in AZURE_SP_ENV if name not in env or not environ.get(name)]
            if missing:
                raise StepFailed(f"azure service principal login (auth sp-env) needs {', '.join(missing)} "
                                 "listed in credentials.env and set in the dispatcher's environment")
        argv = [AZURE_AUTH[auth]]
        if credentials.get("subscription_ids"):
            argv += ["--subscription-ids", *credentials["subscription_ids"]]
        return argv
    if provider == "gcp":
        if credentials.get("credentials_file") and credentials.get("impersonate_service_account"):
            raise StepFailed("cloud_integrations.credentials: credentials_file or "
                             "impersonate_service_account, not both (Prowler takes one login)")
        argv = []
        if key_file := credentials.get("credentials_file"):
            if not (os.path.isabs(key_file) and os.path.isfile(key_file) and os.access(key_file, os.R_OK)):
                raise StepFailed(f"gcp credentials_file {key_file} is not a readable file (an absolute "
                                 "path on the dispatcher's machine)")
            argv += ["--credentials-file", key_file]
        elif account := credentials.get("impersonate_service_account"):
            argv += ["--impersonate-service-account", account]
        elif "GOOGLE_APPLICATION_CREDENTIALS" in env and not environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
            raise StepFailed("gcp login by Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS "
                             "is listed in credentials.env but not set in the dispatcher's environment")
        if credentials.get("project_ids"):
            argv += ["--project-ids", *credentials["project_ids"]]
        if credentials.get("organization_id"):
            argv += ["--organization-id", credentials["organization_id"]]
        return argv
    raise StepFailed(f"Prowler does not scan {provider} accounts (aws, azure, gcp)")


async def scan_live_account(
    provider: str, frameworks: list[str], credentials: Mapping[str, Any], ctx: AgentContext, run: Steps,
    home: Path,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(summary, findings) of one Prowler run; StepFailed when it could not look."""
    files = [PROWLER_FILES[name][provider] for name in frameworks if provider in PROWLER_FILES.get(name, {})]
    if not files:
        raise StepFailed(f"none of the enabled frameworks ({', '.join(frameworks) or 'none'}) has a Prowler "
                         f"mapping for {provider}; enable one of: "
                         f"{', '.join(sorted(n for n, p in PROWLER_FILES.items() if provider in p))}")
    options = provider_options(provider, credentials, os.environ)
    prowler = require("prowler")
    out = ctx.workdir / "prowler"
    out.mkdir()
    argv = [str(prowler), provider, "--compliance", *(name for name, _ in files),
            "--output-formats", "json-ocsf", "--output-directory", str(out), "--output-filename", OUTPUT_NAME,
            "--no-banner", "--ignore-exit-code-3", *options]
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
        **_scope(provider, credentials),
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


def _scope(provider: str, credentials: Mapping[str, Any]) -> dict[str, Any]:
    """What the run covered, as the summary shows it: regions, subscriptions or projects (ids only)."""
    key = {"aws": "regions", "azure": "subscription_ids", "gcp": "project_ids"}[provider]
    return {key: credentials.get(key) or "all"}
