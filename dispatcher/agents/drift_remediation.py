"""The `drift-remediation` agent: a pull request that fixes a pipeline's drift.

nightshift.request_remediation enqueues it, after the guard rails, with everything it needs in the
payload (it never sees the database, and the payload holds no secret value):
    remediation_id, branch (nightshift/drift-<pipeline>-<id>), base, update, expected_head,
    findings: [{id, address, module, type, change, first_seen, attributes: [{path, before, after}]}]
    forge: how pull requests are opened (dispatcher/forge: GitHub, or the local forge's rows)
and the pipeline's rows as targets. It

1. clones the repository's default branch (a git remote is required: a branch is pushed);
2. refuses to touch a branch that exists on the remote unless it is this remediation's own, at the
   head it last pushed (expected_head): then it builds on it, merging the newer default branch first
   (a conflict fails the remediation); nothing is ever force-pushed;
3. decides adopt or revert per finding (dispatcher/remediation/fixes.py) and rewrites only the bytes
   of the adopted literals, then `terraform fmt` on the files it changed;
4. runs init + plan + show on the branch: the verification plan must show no change for the adopted
   resources (else the remediation fails and nothing is pushed); its text for the reverted ones goes
   into the pull request;
5. commits (an empty commit when only reverts are proposed: a pull request needs one), pushes, and
   opens the pull request through the forge with a Jinja2 body (dispatcher/remediation/templates/), or,
   updating, finds the open one and comments the new state on it.

Every failure is the remediation's `failed` status with the reason (masked and capped), never a crashed
task; the findings stay open. The result's "remediation" section is stored by record_remediation.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from dispatcher.agents import register
from dispatcher.agents.base import Agent, AgentContext, AgentResult
from dispatcher.agents.drift_scan import NOT_SECRET_ENV, PLAN_FILE, Pipeline, check_workspace, pipeline_env
from dispatcher.agents.workspace import GIT_URL, StepFailed, Steps, cap, inside, step
from dispatcher.forge import ForgeError, forge_from_payload, hidden_marker
from dispatcher.redact import mask
from dispatcher.remediation.body import commit_message, render_body, title
from dispatcher.remediation.fixes import RISKS, Fix, decide
from dispatcher.remediation.hcl import HclError, HclFile, NotAdoptable, apply_edits, parse_root

BRANCH = re.compile(r"^nightshift/[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Nightshift",
    "GIT_AUTHOR_EMAIL": "nightshift@localhost",
    "GIT_COMMITTER_NAME": "Nightshift",
    "GIT_COMMITTER_EMAIL": "nightshift@localhost",
}
MAX_PLAN_LINES = 80  # per reverted resource in the body
NO_CHANGE = ({"no-op"}, {"read"})


@register("drift-remediation")
class DriftRemediationAgent(Agent):
    name: ClassVar[str] = "drift-remediation"
    needs_targets: ClassVar[bool] = True
    default_timeout: ClassVar[float] = 1800.0
    max_plan_bytes: ClassVar[int] = 512 * 1024 * 1024

    async def run(self, ctx: AgentContext) -> AgentResult:
        steps = Steps()
        forge_changes: list[dict[str, Any]] = []
        started = datetime.now(UTC)
        try:
            report = await self._remediate(ctx, steps, forge_changes)
        except (StepFailed, ForgeError) as exc:
            report = {"status": "failed", "reason": cap(mask(str(exc), steps.secrets))}
        summary = {
            "remediation": report["status"],
            "steps": steps.steps,
            "seconds": round((datetime.now(UTC) - started).total_seconds(), 3),
        }
        if report["status"] == "failed":
            summary["reason"] = report["reason"][:500]
        return AgentResult(
            ok=True,
            summary=summary,
            remediation=report,
            forge=forge_changes,
        )

    async def _remediate(
        self, ctx: AgentContext, steps: Steps, forge_changes: list[dict[str, Any]]
    ) -> dict[str, Any]:
        payload = ctx.task.payload or {}
        branch, base = str(payload.get("branch") or ""), str(payload.get("base") or "")
        if not BRANCH.match(branch) or ".." in branch or branch.endswith((".lock", ".")):
            raise StepFailed(f"the payload's branch {branch[:80]!r} is not a nightshift/... branch name")
        findings = [f for f in payload.get("findings") or [] if isinstance(f, Mapping)]
        if not findings:
            raise StepFailed("the payload names no findings to remediate")
        spec = Pipeline.from_targets(ctx.targets)
        base = base or spec.branch
        if not GIT_URL.match(spec.source):
            raise StepFailed(
                f"repository {spec.source} is a local directory, not a git remote: a remediation "
                "pushes a branch, so the repository's url must be one git can push to"
            )
        git, tool = shutil.which("git"), shutil.which(spec.tool)
        if git is None or tool is None:
            raise StepFailed(f"{'git' if git is None else spec.tool} not found on PATH")
        home, tmp = ctx.workdir / "home", ctx.workdir / "tmp"
        home.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(exist_ok=True)
        env = pipeline_env(spec, home=home, tmp=tmp)
        steps.secrets = [value for name, value in env.items() if name not in NOT_SECRET_ENV]
        git_env = {**env, **GIT_IDENTITY}
        src = ctx.workdir / "src"

        async def run_git(name: str, *args: str, ok: tuple[int, ...] = (0,)) -> Any:
            return await step(
                steps, ctx, name, [git, *args], src if src.exists() else ctx.workdir, git_env, ok=ok
            )

        await run_git(
            "clone",
            "clone",
            "--quiet",
            "--no-tags",
            "--single-branch",
            "--branch",
            base,
            "--",
            spec.source,
            str(src),
        )
        await self._prepare_branch(run_git, branch, base, payload)

        cwd = inside(src, spec.working_directory, "working_directory")
        try:
            files = parse_root(cwd)
        except HclError as exc:
            raise StepFailed(f"cannot remediate: {exc}") from None
        fixes = [decide(finding, files) for finding in findings]
        changed = self._write_edits(fixes)
        if changed:
            await step(steps, ctx, "fmt", [tool, "fmt", "-no-color", *(str(p) for p in changed)], cwd, env)

        plan_text, verification = await self._verify(ctx, steps, spec, tool, src, cwd, env, fixes)
        for fix in fixes:
            fix.plan = _plan_block(plan_text, fix.address) if fix.fix == "revert" else None

        adopt = [f for f in fixes if f.fix == "adopt"]
        revert = [f for f in fixes if f.fix == "revert"]
        fix_docs = [f.to_json() for f in fixes]
        pipeline = str(payload.get("pipeline") or spec.working_directory)
        if changed:
            await run_git("add", "add", "--", *(str(p.relative_to(src)) for p in changed))
        await run_git(
            "commit", "commit", "--quiet", "--allow-empty", "-m", commit_message(pipeline, fix_docs)
        )
        head = (await run_git("rev-parse", "rev-parse", "HEAD")).text().strip()
        pushed = await run_git(
            "push", "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", ok=(0, 1, 128)
        )
        if pushed.returncode != 0:
            raise StepFailed(
                f"the remote refused the push of {branch}: "
                f"{pushed.text('stderr').strip()[-800:] or 'no message'}; nothing was forced"
            )

        pr_title = title(pipeline, len(adopt), len(revert))
        body = render_body(self._context(ctx, payload, spec, fixes, verification, tool, cwd, src, branch))
        async with forge_from_payload(payload.get("forge"), git_dir=src) as forge:
            existing = await forge.find_pull_request(branch, base) if payload.get("update") else None
            if existing is not None and existing.number is not None:
                await forge.upsert_comment(
                    existing.number,
                    hidden_marker(f"remediation-{branch}"),
                    "Nightshift updated this branch for the drift it sees now.\n\n" + body,
                )
                pull = existing
            else:
                pull = await forge.open_pull_request(branch, base, pr_title, body)
            forge_changes.extend(forge.changes())
        return {
            "status": "pr_opened",
            "branch": branch,
            "base": base,
            "commit": head,
            "pr_url": pull.url,
            "pr_number": pull.number,
            "created": pull.created,
            "title": pr_title,
            "fixes": fix_docs,
            "verification": verification,
        }

    async def _prepare_branch(self, run_git: Any, branch: str, base: str, payload: Mapping[str, Any]) -> None:
        """A new branch from the default branch, or this remediation's own branch brought up to date."""
        listed = await run_git("ls-remote", "ls-remote", "--heads", "origin", f"refs/heads/{branch}")
        remote_head = next(
            (
                line.split("\t")[0]
                for line in listed.text().splitlines()
                if line.endswith(f"\trefs/heads/{branch}")
            ),
            None,
        )
        if remote_head is None:
            await run_git("branch", "checkout", "--quiet", "-b", branch)
            return
        expected = payload.get("expected_head")
        if not payload.get("update") or remote_head != expected:
            raise StepFailed(
                f"branch {branch} already exists on the remote with commits Nightshift did not "
                f"make (head {remote_head[:12]}"
                + (f", Nightshift last pushed {str(expected)[:12]}" if expected else "")
                + "): nothing was pushed over it"
            )
        await run_git(
            "fetch",
            "fetch",
            "--quiet",
            "--no-tags",
            "origin",
            f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
        )
        await run_git("branch", "checkout", "--quiet", "-b", branch, f"origin/{branch}")
        merged = await run_git("merge", "merge", "--quiet", "--no-edit", f"origin/{base}", ok=(0, 1))
        if merged.returncode != 0:
            conflicts = await run_git("conflicts", "diff", "--name-only", "--diff-filter=U", ok=(0, 1))
            raise StepFailed(
                f"merge conflict between {branch} and the newer {base} in "
                f"{', '.join(conflicts.text().split()) or 'some files'}: nothing was pushed"
            )

    def _write_edits(self, fixes: list[Fix]) -> list[Path]:
        """Apply each file's edits in one pass; a finding whose edit collides with another is reverted."""
        by_file: dict[Path, tuple[HclFile, list[Any]]] = {}
        for fix in fixes:
            for hcl, edit in fix.edits:
                by_file.setdefault(hcl.path, (hcl, []))[1].append(edit)
        changed = []
        for path, (hcl, edits) in by_file.items():
            try:
                text = apply_edits(hcl.source, edits)
            except NotAdoptable as exc:
                raise StepFailed(f"{path.name}: {exc}") from None
            if text != hcl.source:
                path.write_bytes(text)
                changed.append(path)
        return changed

    async def _verify(
        self,
        ctx: AgentContext,
        steps: Steps,
        spec: Pipeline,
        tool: str,
        src: Path,
        cwd: Path,
        env: Mapping[str, str],
        fixes: list[Fix],
    ) -> tuple[str, dict[str, Any]]:
        """init + plan + show on the branch; the adopted resources must plan no change."""
        init_env = {name: value for name, value in env.items() if name != "TF_WORKSPACE"}
        await step(steps, ctx, "init", [tool, "init", "-input=false", "-no-color"], cwd, init_env)
        if spec.workspace != "default":
            await check_workspace(steps, ctx, tool, spec.workspace, cwd, init_env)
        plan_file = ctx.workdir / PLAN_FILE
        var_files = [f"-var-file={inside(src, name, 'var file')}" for name in spec.var_files]
        await step(
            steps,
            ctx,
            "plan",
            [tool, "plan", "-input=false", "-lock=false", "-no-color", f"-out={plan_file}", *var_files],
            cwd,
            env,
        )
        shown = await step(
            steps,
            ctx,
            "show",
            [tool, "show", "-json", "-no-color", str(plan_file)],
            cwd,
            env,
            max_output=self.max_plan_bytes,
        )
        text = await step(steps, ctx, "show", [tool, "show", "-no-color", str(plan_file)], cwd, env)
        try:
            plan = json.loads(shown.stdout)
        except ValueError:
            raise StepFailed("the verification plan is not JSON") from None
        actions = {
            str(c.get("address")): set((c.get("change") or {}).get("actions") or [])
            for c in plan.get("resource_changes") or []
            if isinstance(c, Mapping)
        }
        adopted = [f.address for f in fixes if f.fix == "adopt"]
        still = [a for a in adopted if actions.get(a, {"no-op"}) not in NO_CHANGE]
        if still:
            raise StepFailed(
                "after adopting the live values the verification plan still changes "
                f"{', '.join(still)}: nothing was pushed"
            )
        changes = sum(1 for a in actions.values() if a not in NO_CHANGE)
        return (
            mask(text.text(), steps.secrets),
            {
                "adopted": len(adopted),
                "summary": f"{changes} resource(s) would change when the code is applied"
                if changes
                else "no other change",
            },
        )

    def _context(
        self,
        ctx: AgentContext,
        payload: Mapping[str, Any],
        spec: Pipeline,
        fixes: list[Fix],
        verification: dict[str, Any],
        tool: str,
        cwd: Path,
        src: Path,
        branch: str,
    ) -> dict[str, Any]:
        def item(fix: Fix) -> dict[str, Any]:
            finding = fix.finding
            return {
                "address": fix.address,
                "change": finding.get("change") or "",
                "first_seen": str(finding.get("first_seen") or "?")[:19].replace("T", " ") + " UTC",
                "provider_id": finding.get("provider_id"),
                "attributes": fix.attributes(),
                "why": fix.why,
                "risk": RISKS.get(str(finding.get("change")), "review the plan before applying"),
                "plan": fix.plan,
            }

        reverts = [f for f in fixes if f.fix == "revert"]
        targets = " ".join(f"-target='{f.address}'" for f in reverts)
        var_files = " ".join(f"-var-file={Path(name).as_posix()}" for name in spec.var_files)
        workdir = cwd.relative_to(src).as_posix() or "."
        command = " ".join(
            part
            for part in (
                f"{spec.tool} -chdir={workdir}" if workdir != "." else spec.tool,
                "apply",
                var_files,
                targets,
            )
            if part
        )
        return {
            "marker": hidden_marker(f"remediation-{branch}"),
            "pipeline": payload.get("pipeline") or "",
            "subject": ctx.task.subject,
            "adopt": [item(f) for f in fixes if f.fix == "adopt"],
            "revert": [item(f) for f in reverts],
            "revert_command": command,
            "verification": verification,
            "tool": tool.rsplit("/", 1)[-1],
            "working_directory": workdir,
            "remediation_id": payload.get("remediation_id"),
            "scan_id": payload.get("scan_id"),
        }


def _plan_block(text: str, address: str) -> str | None:
    """The plan's own text for one resource, from its `# address ...` line to the next resource."""
    _, found, actions = text.partition("Terraform will perform the following actions:")
    if not found:
        return None
    lines, inside_block = [], False
    for line in actions.splitlines():
        if line.startswith("  # "):
            inside_block = line.startswith(f"  # {address} ")
        elif line.startswith("Plan:"):
            break
        if inside_block:
            lines.append(line)
    if not lines:
        return None
    if len(lines) > MAX_PLAN_LINES:
        lines = [*lines[:MAX_PLAN_LINES], f"    ... ({len(lines) - MAX_PLAN_LINES} more lines)"]
    return "\n".join(lines).rstrip().replace("```", "'''")
