"""The `compliance-scan` agent: Checkov over the IaC of a cloud integration's pipelines, Prowler against
its live account (dispatcher/agents/prowler_scan.py) when it has credentials.

Subject: cloud_integration/<id>. Its targets (nightshift.task_targets) carry the integration, its
organization and `pipelines` (nightshift.compliance_pipelines): the pipelines linked to the integration
in nightshift.cloud_integration_pipelines, or, when it has no links, every pipeline of its
organization's repositories. Each comes with what the last successful scan saw of it (`previous`: the
tree hash, Checkov's version and per-check counts) and its compliance findings still open or suppressed.

For each pipeline:
1. a private working copy of the repository (the drift agent's checkout: git clone or local copy);
2. the content hash of its working directory (dispatcher.compliance.tree); when it equals the last
   successful scan's, and Checkov's version too (`checkov --version`, asked once per executable by a
   running dispatcher), Checkov is not run: the open findings of that pipeline are reported again as
   they are (the scan summary says `reused`);
3. otherwise `checkov -d . -o json --skip-download --soft-fail` in the working directory, offline
   (BC_SKIP_MAPPING=TRUE, no update check, no platform key, private HOME; TMPDIR the scanners' private
   cache), through agents/process.py (own process group,
   the task's deadline, capped output, allow-listed environment), parsed by dispatcher.compliance.checkov.

The scan is FAILED_CHECKS when a failed check remains, CLEAN otherwise. Anything that keeps a pipeline
from being looked at — Checkov missing, crashing, killed at the deadline, printing non-JSON, finding no
file to check or a file it cannot parse; Prowler failing the same ways or its credentials refused; an
unknown provider or framework; no pipeline and no credentials — makes the whole scan an ERROR with a
one-line reason, so nothing is resolved by a scan that did not look.

When the organization has auto_remediate on and checks failed, the summary records
`remediation: "requested"`; no task is enqueued (remediation of compliance findings is not built yet).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from dispatcher.agents import register
from dispatcher.agents.base import Agent, AgentContext, AgentResult, ScanReport
from dispatcher.agents.drift_scan import Pipeline
from dispatcher.agents.process import allowed_env, run_process
from dispatcher.agents.prowler_scan import credentials_of, scan_live_account
from dispatcher.agents.workspace import DEADLINE_RESERVE_SECONDS, StepFailed, Steps, checkout, inside
from dispatcher.compliance.checkov import CheckovOutputError, parse_checkov
from dispatcher.compliance.frameworks import PROVIDERS, check_frameworks
from dispatcher.compliance.scanners import ScannerError, cache_dir, require
from dispatcher.compliance.tree import tree_hash
from dispatcher.redact import mask

MAX_REASON_CHARS = 2000
# Checkov's JSON holds every passed and failed check with its code block: large repositories write
# hundreds of megabytes
MAX_CHECKOV_OUTPUT = 512 * 1024 * 1024
CHECKOV_ARGS = ("-d", ".", "-o", "json", "--skip-download", "--soft-fail")
# offline: no platform mapping download (BC_SKIP_MAPPING), no PyPI request for a newer Checkov on every
# start (CKV_SKIP_PACKAGE_UPDATE_CHECK: Checkov's banner asks pypi.org, with a 1 s timeout, even for
# --version); no colour codes in what we parse
CHECKOV_ENV = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
               "CHECKOV_NO_OUTPUT_COLORS": "true", "ANSI_COLORS_DISABLED": "1"}


@dataclass(frozen=True)
class Target:
    """One pipeline to scan, with what the last successful scan saw of it."""

    pipeline_id: int
    name: str
    spec: Pipeline
    previous: Mapping[str, Any]
    open_findings: list[dict[str, Any]]


@register("compliance-scan")
class ComplianceScanAgent(Agent):
    name: ClassVar[str] = "compliance-scan"
    needs_targets: ClassVar[bool] = True
    default_timeout: ClassVar[float] = 3600.0

    async def run(self, ctx: AgentContext) -> AgentResult:
        started = datetime.now(UTC)
        run = Steps()
        try:
            report = await self._scan(ctx, run)
        except (StepFailed, ScannerError) as exc:
            report = ScanReport(status="ERROR", error=_one_line(mask(str(exc), run.secrets)),
                                summary={"steps": len(run.steps)})
        report = replace(report, started_at=started, artifacts={**report.artifacts, "steps": run.steps})
        return AgentResult(ok=True, summary=report.summary, scan=report)

    async def _scan(self, ctx: AgentContext, run: Steps) -> ScanReport:
        integration = ctx.targets.get("cloud_integration")
        if not isinstance(integration, Mapping):
            raise StepFailed("the task's targets have no cloud integration "
                             "(a compliance-scan subject is cloud_integration/<id>)")
        provider = str(integration.get("provider"))
        if provider not in PROVIDERS:
            raise StepFailed(f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}")
        try:
            frameworks = check_frameworks(list(integration.get("frameworks") or []))
        except ValueError as exc:
            raise StepFailed(str(exc)) from None
        if integration.get("deleted_at"):
            raise StepFailed(f"cloud integration {integration.get('id')} is deleted")
        targets = _pipelines(ctx.targets.get("pipelines"))
        credentials = credentials_of(integration)
        if not targets and credentials is None:
            raise StepFailed("nothing to scan: no pipeline is linked to this integration, its organization "
                             "has none, and it has no credentials for a live scan")
        home = ctx.workdir / "home"
        home.mkdir(parents=True, exist_ok=True)

        per_pipeline: list[dict[str, Any]] = []
        findings: list[dict[str, Any]] = []
        if targets:
            checkov = require("checkov")
            for target in targets:
                entry, found = await self._scan_pipeline(target, checkov, ctx, run, home)
                per_pipeline.append(entry)
                findings.extend(found)
        checks = _merge_checks(entry["checks"] for entry in per_pipeline)
        summary: dict[str, Any] = {
            "scanners": ["checkov"] if targets else [],
            "checkov_version": next((e["checkov_version"] for e in per_pipeline), None),
            "provider": provider,
            "frameworks": frameworks,
            "failed": len(findings),
            "passed": sum(c["passed"] for c in checks.values()),
            "pipelines": per_pipeline,
            "reused": sum(1 for entry in per_pipeline if entry["reused"]),
            "check_results": {"checkov": checks} if targets else {},
        }
        if credentials is not None:
            live, live_findings = await scan_live_account(provider, frameworks, credentials, ctx, run, home)
            summary["scanners"].append("prowler")
            summary["prowler"] = {key: value for key, value in live.items() if key != "checks"}
            summary["check_results"]["prowler"] = live["checks"]
            summary["failed"] += len(live_findings)
            summary["passed"] += live["passed"]
            findings.extend(live_findings)

        organization = ctx.targets.get("organization") or {}
        if findings and organization.get("auto_remediate"):
            summary["remediation"] = "requested"
        return ScanReport(status="FAILED_CHECKS" if findings else "CLEAN", summary=summary, findings=findings)

    async def _scan_pipeline(
        self, target: Target, checkov: Path, ctx: AgentContext, run: Steps, home: Path,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        source = ctx.workdir / f"pipeline-{target.pipeline_id}"
        env = allowed_env(home=home, extra={"GIT_TERMINAL_PROMPT": "0"})
        await checkout(target.spec.source, target.spec.branch, source, env, ctx, run)
        directory = inside(source, target.spec.working_directory, "working_directory")
        digest, files = await asyncio.to_thread(tree_hash, directory)
        if files == 0:
            raise StepFailed(f"pipeline {target.name}: {target.spec.working_directory!r} holds no file")
        entry: dict[str, Any] = {"pipeline_id": target.pipeline_id, "name": target.name,
                                 "tree_sha256": digest, "files": files}
        previous = target.previous
        # the same tree checked by the same Checkov gives the same results: report the last ones again.
        # (Checkov's version is asked only here: a changed tree runs Checkov, whose output names it.)
        if previous.get("tree_sha256") == digest:
            version = await _checkov_version(checkov, ctx, run, home)
            if previous.get("checkov_version") == version:
                entry.update(reused=True, checkov_version=version, checks=previous.get("checks") or {},
                             resources=previous.get("resources"), failed=len(target.open_findings))
                return entry, target.open_findings

        result = await _run_checkov(checkov, directory, ctx, run, home, target.name)
        try:
            parsed = parse_checkov(result, scope=str(target.pipeline_id),
                                   extra={"pipeline_id": target.pipeline_id, "pipeline": target.name})
        except CheckovOutputError as exc:
            raise StepFailed(f"pipeline {target.name}: Checkov's output is unusable: {exc}") from None
        if parsed.resource_count == 0:
            raise StepFailed(f"pipeline {target.name}: Checkov found nothing to check in "
                             f"{target.spec.working_directory!r} ({files} files)")
        if parsed.parsing_errors:
            # the resources of an unparsable file were not checked: their findings must not resolve
            names = ", ".join(sorted(_relative(path, directory) for path in parsed.unparsed)) or "?"
            raise StepFailed(f"pipeline {target.name}: Checkov could not parse {parsed.parsing_errors} "
                             f"file(s): {names}")
        entry.update(reused=False, checkov_version=parsed.version, checks=parsed.checks,
                     resources=parsed.resource_count,
                     failed=len(parsed.findings), parsing_errors=parsed.parsing_errors,
                     frameworks=sorted(parsed.reports))
        return entry, parsed.findings


def _pipelines(value: Any) -> list[Target]:
    targets = []
    for item in value or []:
        pipeline, repository = item.get("pipeline"), item.get("repository")
        spec = Pipeline.from_targets({"pipeline": pipeline, "repository": repository})
        targets.append(Target(pipeline_id=int(pipeline["id"]), name=str(pipeline["name"]), spec=spec,
                              previous=item.get("previous") or {},
                              open_findings=list(item.get("open_findings") or [])))
    return targets


# executable (path, size, mtime) -> version: `checkov --version` costs a Python start-up and Checkov's
# imports (seconds); a long-running dispatcher asks once per installed executable
_versions: dict[tuple[str, int, int], str] = {}


async def _checkov_version(checkov: Path, ctx: AgentContext, run: Steps, home: Path) -> str:
    try:
        stat = checkov.stat()
        key = (str(checkov), stat.st_size, stat.st_mtime_ns)
    except OSError as exc:
        raise StepFailed(f"cannot run {checkov}: {exc.strerror or exc}") from None
    if key in _versions:
        return _versions[key]
    result = await _step(run, ctx, "checkov-version", [str(checkov), "--version"], home, home)
    lines = result.stdout.decode("utf-8", "replace").split()
    if result.returncode != 0 or not lines:
        raise StepFailed(f"`{checkov} --version` failed (exit status {result.returncode}): "
                         + _last_line(result.stderr or result.stdout))
    _versions[key] = lines[-1]
    return lines[-1]


async def _run_checkov(checkov: Path, directory: Path, ctx: AgentContext, run: Steps, home: Path,
                       name: str) -> bytes:
    argv = [str(checkov), *CHECKOV_ARGS]
    result = await _step(run, ctx, f"checkov {name}", argv, directory, home, max_output=MAX_CHECKOV_OUTPUT)
    if result.timed_out:
        raise StepFailed(f"pipeline {name}: checkov was killed at the deadline after {result.seconds:.0f}s")
    if result.returncode != 0:  # --soft-fail: failed checks exit 0, so anything else is a crash
        raise StepFailed(f"pipeline {name}: checkov failed with exit status {result.returncode}: "
                         + _last_line(result.stderr or result.stdout))
    if result.stdout_truncated:
        raise StepFailed(f"pipeline {name}: checkov wrote more than {MAX_CHECKOV_OUTPUT} bytes")
    return result.stdout


async def _step(run: Steps, ctx: AgentContext, name: str, argv: list[str], cwd: Path, home: Path,
                max_output: int = 1024 * 1024) -> Any:
    timeout = ctx.remaining() - DEADLINE_RESERVE_SECONDS
    if timeout <= 0:
        raise StepFailed(f"the deadline passed before `{name}` could start")
    try:
        result = await run_process(argv, cwd=cwd, env=checkov_env(home), timeout=timeout,
                                   max_output=max_output)
    except OSError as exc:
        raise StepFailed(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    run.add(name, argv, result)
    if result.timed_out and name == "checkov-version":
        raise StepFailed(f"`{argv[0]} --version` was killed at the deadline")
    return result


def checkov_env(home: Path) -> dict[str, str]:
    """Checkov's environment (also the pr-review agent's): offline, HOME private to the run, and TMPDIR
    where its parser keeps its grammar tables between runs (scanners.cache_dir), else HOME."""
    return allowed_env(home=home, extra={**CHECKOV_ENV, "TMPDIR": str(cache_dir() or home)})


def _relative(path: str, directory: Path) -> str:
    try:
        return "/" + Path(path).relative_to(directory).as_posix()
    except ValueError:
        return path


def _merge_checks(all_checks: Any) -> dict[str, dict[str, int]]:
    merged: dict[str, dict[str, int]] = {}
    for checks in all_checks:
        for check_id, counts in checks.items():
            into = merged.setdefault(check_id, {"passed": 0, "failed": 0, "skipped": 0})
            for key in into:
                into[key] += int(counts.get(key, 0))
    return dict(sorted(merged.items()))


def _last_line(data: bytes) -> str:
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:MAX_REASON_CHARS] if lines else "(no output)"


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 3] + "..."
