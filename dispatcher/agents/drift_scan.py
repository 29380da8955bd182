"""The `drift-scan` agent: run a pipeline's `terraform plan` and report what drifted.

For one pipeline (its rows come from nightshift.task_targets) it:

1. makes a private working copy of the repository under the task's workdir: `git clone --depth 1` of
   the default branch for a git URL, a copy of the directory for a local path (without `.git`,
   `.terraform` and state lock files; a local `terraform.tfstate` is copied with the code, which is how
   a local-backend pipeline is scanned: the plan runs with -lock=false and never writes state);
2. runs, in the pipeline's working directory, with the repository's tool (`terraform` or `tofu`, found
   on PATH), with the pipeline's var files (paths from the repository root) and workspace:
       init -input=false
       plan -input=false -detailed-exitcode -lock=false -out=<plan>   (0 clean, 2 changes, 1 error)
       show -json <plan>
   each in its own process group, killed at the task's deadline, output capped (agents/process.py);
3. parses the JSON plan (dispatcher.drift.plan) into findings: `drift` (changed outside Terraform) and
   `pending-change` (code not applied yet);
4. reports which of the pipeline's open remediation pull requests the checkout has merged (the
   result's "merged" section, dispatcher/agents/merges.py): the database marks them merged and this
   very scan verifies them, or fails them with the drift that remains.

The scan is DRIFTED when there is at least one drift finding and CLEAN otherwise: pending changes are
recorded as findings (teams track them too) but code that was merged and not applied is not drift.
Every failure (no binary, clone or init failing, plan exit 1, the deadline, an unreadable plan) is an
ERROR scan carrying Terraform's diagnostics, masked and capped, never a crashed task.

The environment is built from an allow-list, never the dispatcher's own: BASE_ENV, the pipeline's
env_allowlist (names, or globs such as `TF_VAR_*`), a few harmless TF_* names, and TF_IN_AUTOMATION=1,
TF_INPUT=0, CHECKPOINT_DISABLE=1. HOME is private, so the dispatcher user's ~/.terraformrc is not read;
a CLI configuration (provider mirror, credentials) reaches Terraform only through an allow-listed
TF_CLI_CONFIG_FILE. Values of passed variables are masked in stored diagnostics.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from dispatcher.agents import register
from dispatcher.agents.base import Agent, AgentContext, AgentResult, ScanReport
from dispatcher.agents.merges import merged_remediations
from dispatcher.agents.process import allowed_env
from dispatcher.agents.workspace import (
    GIT_PROTOCOLS,
    StepFailed,
    Steps,
    cap,
    checkout,
    inside,
    step,
)
from dispatcher.config import cache_dir
from dispatcher.drift.plan import Finding, PlanError, read_plan
from dispatcher.drift.schema import ProviderSchemas, SchemaCache, SchemaError, schemas_for
from dispatcher.redact import mask

# Passed through when present, whatever the pipeline allows: they tune Terraform, they hold no secret.
SAFE_TF_ENV = ("TF_PLUGIN_CACHE_DIR", "TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE",
               "TF_REGISTRY_CLIENT_TIMEOUT")
# Variables whose values are not secrets, so diagnostics keep them readable; every other passed value
# is masked wherever it appears in a stored error.
NOT_SECRET_ENV = frozenset({
    "PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "TF_IN_AUTOMATION", "TF_INPUT", "TF_WORKSPACE", "TF_CLI_CONFIG_FILE", "CHECKPOINT_DISABLE",
    "AWS_REGION", "AWS_DEFAULT_REGION", "GIT_TERMINAL_PROMPT", "GIT_ALLOW_PROTOCOL", *SAFE_TF_ENV,
})
_WORKSPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,89}$")
_TF_VERSION = re.compile(rb'"terraform_version"\s*:\s*"([^"]{1,40})"')
PLAN_FILE = "nightshift.tfplan"
SCHEMA_MAX_BYTES = 256 * 1024 * 1024  # `providers schema -json` of hashicorp/aws is tens of megabytes


@dataclass(frozen=True)
class Pipeline:
    """What the agent needs from the task's target rows (nightshift.task_targets)."""

    source: str
    branch: str
    tool: str
    working_directory: str
    workspace: str
    var_files: tuple[str, ...]
    env_allowlist: tuple[str, ...]

    @classmethod
    def from_targets(cls, targets: Mapping[str, Any]) -> Pipeline:
        pipeline, repository = targets.get("pipeline"), targets.get("repository")
        if not isinstance(pipeline, Mapping) or not isinstance(repository, Mapping):
            raise StepFailed("the task's targets have no pipeline and repository "
                             "(a drift-scan subject is pipeline/<id>)")
        return cls(
            source=str(repository["url"]),
            branch=str(repository.get("default_branch") or "main"),
            tool=str(repository.get("iac_tool") or "terraform"),
            working_directory=str(pipeline.get("working_directory") or "."),
            workspace=str(pipeline.get("workspace") or "default"),
            var_files=tuple(pipeline.get("var_files") or ()),
            env_allowlist=tuple(pipeline.get("env_allowlist") or ()),
        )


@dataclass
class Merges:
    steps: Steps = field(default_factory=Steps)
    seen: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@register("drift-scan")
class DriftScanAgent(Agent):
    name: ClassVar[str] = "drift-scan"
    needs_targets: ClassVar[bool] = True
    default_timeout: ClassVar[float] = 1800.0
    # `show -json` of a large plan is big: capture up to this much, and say so when it is larger
    max_plan_bytes: ClassVar[int] = 512 * 1024 * 1024

    async def run(self, ctx: AgentContext) -> AgentResult:
        started = datetime.now(UTC)
        run = Steps()
        fetch = Steps()  # the provider schema fetch: cached infrastructure, not a step of the scan itself
        merges = Merges()  # remediation pull requests this checkout has merged (agents/merges.py)
        try:
            report = await self._scan(ctx, run, fetch, merges)
        except StepFailed as exc:
            report = ScanReport(status="ERROR", error=cap(mask(str(exc), run.secrets)),
                                summary={"steps": len(run.steps)})
        if merges.seen or merges.notes:
            report.summary["remediations_merged"] = [m["remediation_id"] for m in merges.seen]
            if merges.notes:
                report.summary["remediation_notes"] = [mask(n, run.secrets) for n in merges.notes]
        report = replace(report, started_at=started,
                         artifacts={**report.artifacts, "steps": run.steps,
                                    **({"schema_steps": fetch.steps} if fetch.steps else {}),
                                    **({"merge_steps": merges.steps.steps} if merges.steps.steps else {})})
        return AgentResult(ok=True, summary=report.summary, scan=report, merged=merges.seen)

    async def _scan(self, ctx: AgentContext, run: Steps, fetch: Steps, merges: Merges) -> ScanReport:
        spec = Pipeline.from_targets(ctx.targets)
        tool = shutil.which(spec.tool)
        if tool is None:
            raise StepFailed(f"{spec.tool} not found on PATH ({os.environ.get('PATH', '')}); install it or "
                             "set the repository's iac_tool")
        home, tmp = ctx.workdir / "home", ctx.workdir / "tmp"
        home.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(exist_ok=True)
        env = pipeline_env(spec, home=home, tmp=tmp)
        run.secrets = fetch.secrets = merges.steps.secrets = [
            value for name, value in env.items() if name not in NOT_SECRET_ENV]

        source = ctx.workdir / "src"
        await checkout(spec.source, spec.branch, source, env, ctx, run)
        # before the plan: the plan judges the code that contains them, and a failing plan must not
        # hide that a pull request was merged
        merges.seen, merges.notes = await merged_remediations(ctx, merges.steps, source, spec.source,
                                                              spec.branch, env)
        cwd = inside(source, spec.working_directory, "working_directory")
        # var files are named from the repository root, so one file can serve several pipelines
        var_files = [f"-var-file={inside(source, name, 'var file')}" for name in spec.var_files]
        plan_file = ctx.workdir / PLAN_FILE

        # init in the default workspace: with TF_WORKSPACE set, init creates a missing workspace
        init_env = {name: value for name, value in env.items() if name != "TF_WORKSPACE"}
        await step(run, ctx, "init", [tool, "init", "-input=false", "-no-color"], cwd, init_env)
        if spec.workspace != "default":
            await check_workspace(run, ctx, tool, spec.workspace, cwd, init_env)
        schemas = await provider_schemas(fetch, ctx, tool, cwd, init_env)
        plan_argv = [tool, "plan", "-input=false", "-detailed-exitcode", "-lock=false", "-no-color",
                     f"-out={plan_file}", *var_files]
        plan = await step(run, ctx, "plan", plan_argv, cwd, env, ok=(0, 2))
        shown = await step(run, ctx, "show", [tool, "show", "-json", "-no-color", str(plan_file)], cwd, env,
                           max_output=self.max_plan_bytes)
        if shown.stdout_truncated:
            raise StepFailed(f"`{spec.tool} show -json` wrote more than {self.max_plan_bytes} bytes; "
                             "raise DriftScanAgent.max_plan_bytes")
        try:
            reading = await asyncio.to_thread(read_plan, shown.stdout, schemas)
        except PlanError as exc:
            raise StepFailed(f"`{spec.tool} show -json` gave an unusable plan: {exc}") from None
        scan = report(reading.findings, spec, plan_exit=plan.returncode, plan_json=shown.stdout)
        # what was seen and deliberately not made a finding (a mirror of another resource, JSON
        # whitespace), counted so an operator can tell "nothing changed" from "nothing reported"
        scan.summary["evidence"] = _count(f"{e.kind}:{e.reason}" for e in reading.evidence)
        scan.summary["provider_schemas"] = schemas is not None
        return scan


async def provider_schemas(
    fetch: Steps, ctx: AgentContext, tool: str, cwd: Path, env: Mapping[str, str],
) -> ProviderSchemas | None:
    """The providers' schemas (sets compared by value, schema-sensitive values masked), fetched once
    per provider version into the cache directory and read once per process; None when they cannot
    be had: the scan goes on, aware of the configuration but not of the schema."""

    async def run_tool(argv: list[str]) -> bytes:
        name = "schema" if "schema" in argv else "version"
        return (await step(fetch, ctx, name, argv, cwd, env, max_output=SCHEMA_MAX_BYTES)).stdout

    try:
        return await schemas_for(SchemaCache(cache_dir() / "provider-schemas"), tool, run_tool)
    except (SchemaError, StepFailed, OSError):
        return None


def report(findings: list[Finding], spec: Pipeline, *, plan_exit: int | None, plan_json: bytes) -> ScanReport:
    drift = [f for f in findings if f.kind == "drift"]
    pending = [f for f in findings if f.kind == "pending-change"]
    version = _TF_VERSION.search(plan_json[:4096])
    summary = {
        "tool": spec.tool,
        "tool_version": version.group(1).decode() if version else None,
        "workspace": spec.workspace,
        "plan_exit_code": plan_exit,
        "drift": len(drift),
        "pending_changes": len(pending),
        "by_change": _count(f"{f.kind}:{f.change}" for f in findings),
    }
    return ScanReport(
        status="DRIFTED" if drift else "CLEAN",
        summary=summary,
        findings=[finding.to_json() for finding in findings],
        artifacts={"plan": {"bytes": len(plan_json), "terraform_version": summary["tool_version"]}},
    )


def _count(keys: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return counts


# --- environment -----------------------------------------------------------------------------------------


def pipeline_env(
    spec: Pipeline, *, home: Path, tmp: Path, source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The child's environment for this pipeline (see the module docstring)."""
    source = os.environ if source is None else source
    names = set(SAFE_TF_ENV)
    for entry in spec.env_allowlist:
        if any(char in entry for char in "*?["):
            # a glob never lets the dispatcher's own settings through
            names.update(name for name in source
                         if fnmatch.fnmatchcase(name, entry) and not name.startswith("NIGHTSHIFT_"))
        else:
            names.add(entry)
    extra = {"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1", "TMPDIR": str(tmp),
             "GIT_TERMINAL_PROMPT": "0", "GIT_ALLOW_PROTOCOL": GIT_PROTOCOLS}
    if spec.workspace != "default":
        if not _WORKSPACE.match(spec.workspace):
            raise StepFailed(f"workspace {spec.workspace!r} is not a valid workspace name")
        extra["TF_WORKSPACE"] = spec.workspace  # selects it for plan and show
    return allowed_env(names, home=home, source=source, extra=extra)


# --- Terraform ---------------------------------------------------------------------------------------


async def check_workspace(
    run: Steps, ctx: AgentContext, tool: str, workspace: str, cwd: Path, env: Mapping[str, str],
) -> None:
    """A missing workspace must be an error: Terraform would plan it as new, every resource a create."""
    listed = await step(run, ctx, "workspace", [tool, "workspace", "list"], cwd, env)
    names = [line.strip().removeprefix("* ") for line in listed.text().splitlines() if line.strip()]
    if workspace not in names:
        raise StepFailed(f"workspace {workspace!r} does not exist (the state has: {', '.join(names)})")
