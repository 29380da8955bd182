"""The `pr-review` agent: a review of the IaC a pull request changes, as one comment on the pull
request (updated in place on every push), a commit status on its head and a scan with findings.

Subject pr/<repository id>/<number>; everything comes in the payload (enqueue_pr_review, from the
webhook): number, base_ref/base_sha, head_ref/head_sha, clone_url (head_clone_url differs for a fork),
and `forge` (kind, repository, API URL, token *reference*; nightshift.forge_of_repository).

1. git: a cached bare repository of the clone URL (dispatcher/agents/git_cache.py), fetched shallow:
   the base branch and the pull request's head (GitHub's refs/pull/N/head, which also exists for forks
   and deleted branches; the branch itself on the local forge; the head SHA as a last resort), deepened
   until the merge base is there; head and merge base checked out in private worktrees.
2. the changed files (merge base...head); no IaC among them: done, CLEAN "nothing to review", no comment.
3. per affected root (dispatcher/review/changes.py): `terraform fmt -check -diff` of its changed files,
   `terraform init -backend=false` + `validate -json`, and Checkov on the root at head and at the
   merge base: only failures the head adds are reported. `tofu` instead of `terraform` when the
   repository's iac_tool says so (the payload's `iac_tool`, nightshift.pr_review_context). Init
   downloads what the code names: for a pull request from a fork it is skipped (and validate with it),
   fmt and Checkov only read files.
4. one Markdown comment (dispatcher/review/render.py), found again by its hidden marker; a commit
   status `nightshift/pr-review` on the head SHA (success, failure, or error when it could not review).
5. the scan: FAILED_CHECKS with one `pr-review` finding per problem, CLEAN, or ERROR with the reason
   it could not review (force-pushed head, repository gone, ...). A forge that refuses the comment or
   the status (403) is recorded in the summary (`forge_error`); the review itself still counts.

A terraform plan is optional and off by default: it runs only for a changed root whose pipeline has
pr_plan (the payload's `plans`, nightshift.plans_of_repository), never for a fork, with the pipeline's
workspace, var files and allow-listed environment (the credentials; their values are masked wherever
Terraform's words are kept). Its counts go into the comment and the summary; a plan that fails (refused
credentials, an unreachable backend) is a reason shown there, not a failed review.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from dispatcher.agents import register
from dispatcher.agents.base import Agent, AgentContext, AgentResult, ScanReport
from dispatcher.agents.compliance_scan import CHECKOV_ARGS, MAX_CHECKOV_OUTPUT, checkov_env
from dispatcher.agents.drift_scan import NOT_SECRET_ENV, SAFE_TF_ENV, Pipeline, pipeline_env
from dispatcher.agents.git_cache import GitCache, fetch_error, git_env
from dispatcher.agents.process import ProcessResult, allowed_env, run_process
from dispatcher.agents.workspace import DEADLINE_RESERVE_SECONDS, GIT_URL, StepFailed, Steps, inside
from dispatcher.compliance.checkov import CheckovOutputError, parse_checkov
from dispatcher.compliance.scanners import ScannerError, require
from dispatcher.config import SecretError, cache_dir, resolve_secret
from dispatcher.drift.plan import PlanError
from dispatcher.forge import Forge, ForgeError, forge_from_payload, hidden_marker
from dispatcher.forge.local import parse_name_status
from dispatcher.redact import mask
from dispatcher.review.changes import affected_roots, is_module_file
from dispatcher.review.plan import PlanSpec, PlanSpecError, failure_reason, plan_specs, summarise
from dispatcher.review.render import RootReview, headline, render_comment
from dispatcher.review.tools import (
    Problem,
    fmt_problems,
    new_compliance_failures,
    parse_errors,
    validate_problems,
)

MARKER = hidden_marker("pr-review")
SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
REF = re.compile(r"^(?![-/.])(?!.*(?:\.\.|//|@\{|\.lock$|/$|\.$))[A-Za-z0-9._/+-]{1,250}$")
FMT_SUFFIXES = (".tf", ".tfvars")  # what terraform fmt formats (not .tf.json, not the lock file)
STATUS_CONTEXT = "nightshift/pr-review"
MAX_REASON_CHARS = 2000
TOOL_OUTPUT = 4 * 1024 * 1024
MAX_PLAN_JSON = 512 * 1024 * 1024  # `show -json` of a large root's plan is big
IAC_TOOLS = ("terraform", "tofu")  # repositories.iac_tool


class NotReviewed(Exception):
    """The pull request could not be reviewed; the message says why (stored, shown in the comment).
    `head_gone`: the head SHA no longer exists, so no status is set on it (the forge would refuse)."""

    def __init__(self, message: str, *, head_gone: bool = False) -> None:
        super().__init__(message)
        self.head_gone = head_gone


@register("pr-review")
class PrReviewAgent(Agent):
    name: ClassVar[str] = "pr-review"
    default_timeout: ClassVar[float] = 1800.0

    async def run(self, ctx: AgentContext) -> AgentResult:
        started = datetime.now(UTC)
        review = Review(ctx)
        try:
            report = await review.run()
        finally:
            await review.close()
        report = replace(report, started_at=started,
                         artifacts={**report.artifacts, "steps": review.steps.steps})
        return AgentResult(ok=True, summary=report.summary, scan=report, forge=review.forge_changes)


class Review:
    """One review run (state shared by its steps)."""

    def __init__(self, ctx: AgentContext) -> None:
        self.ctx = ctx
        self.payload: dict[str, Any] = dict(ctx.task.payload or {})
        self.steps = Steps()
        self.home = ctx.workdir / "home"
        self.forge: Forge | None = None
        self.forge_changes: list[dict[str, Any]] = []
        self.forge_errors: list[str] = []
        self.cache: GitCache | None = None
        self.worktrees: list[Path] = []
        self.skipped: list[str] = []
        self.fork = False
        self.merge_base = ""
        self.because: dict[str, list[str]] = {}
        self.checkov: Path | None = None
        self.token: str | None = None
        self.plans: dict[str, PlanSpec] = {}
        self.tool = "terraform"  # the repository's iac_tool: fmt, init, validate and plan run with it

    # --- the run ---------------------------------------------------------------------------------------

    async def run(self) -> ScanReport:
        self.home.mkdir(parents=True, exist_ok=True)
        number, head_sha = self.payload.get("number"), self.payload.get("head_sha")
        summary: dict[str, Any] = {"number": number, "head_sha": head_sha,
                                   "base_ref": self.payload.get("base_ref")}
        try:
            if not isinstance(number, int) or number < 1 or not isinstance(head_sha, str) \
                    or not SHA.match(head_sha):
                raise NotReviewed("the payload has no pull request number or head SHA (40 hex digits)")
            self.forge = self._forge()
            try:
                self.plans = plan_specs(self.payload.get("plans"))
            except PlanSpecError as exc:
                raise NotReviewed(str(exc)) from None
            self.tool = self._iac_tool()
            merge_base, changed, roots = await self._prepare(number, head_sha)
            summary.update(merge_base=merge_base, changed_files=len(changed))
            if not roots.iac_files:
                summary.update(reviewed=False, reason="nothing to review: no IaC file changed")
                return ScanReport(status="CLEAN", summary=summary)
            reviews = await self._review_roots(roots.roots, merge_base)
        except (NotReviewed, StepFailed) as exc:  # StepFailed: a git step failed or hit the deadline
            reason = _one_line(mask(str(exc), self.steps.secrets))
            summary.update(reviewed=False, reason=reason)
            gone = isinstance(exc, NotReviewed) and exc.head_gone
            await self._publish(number, None if gone else head_sha, None, [], reason)
            summary.update(self._forge_summary())
            return ScanReport(status="ERROR", error=reason, summary=summary)

        findings = _findings(reviews)
        _, line = headline(reviews, None)
        summary.update(reviewed=True, roots=[r.path for r in reviews], iac_files=roots.iac_files,
                       problems=len(findings), result=line, skipped=self.skipped + [
                           f"{r.path}: {s}" for r in reviews for s in r.skipped])
        if plans := {r.path: r.plan for r in reviews if r.plan is not None}:
            summary["plans"] = plans
        await self._publish(number, head_sha, merge_base, reviews, None)
        summary.update(self._forge_summary())
        return ScanReport(status="FAILED_CHECKS" if findings else "CLEAN", summary=summary, findings=findings)

    async def close(self) -> None:
        if self.cache is not None:
            for tree in self.worktrees:
                await self.cache.remove_worktree(tree)
        if self.forge is not None:
            self.forge_changes = self.forge.changes()
            await self.forge.aclose()

    # --- forge -------------------------------------------------------------------------------------------

    def _forge(self) -> Forge:
        spec = self.payload.get("forge")
        if isinstance(spec, dict) and spec.get("kind") == "github" and not spec.get("full_name"):
            # a repository registered by URL only: the webhook named it
            spec = {**spec, "full_name": self.payload.get("full_name")}
        if isinstance(spec, dict) and spec.get("token_ref"):
            with contextlib.suppress(SecretError):  # masked everywhere, even in git's messages
                self.token = resolve_secret(str(spec["token_ref"]))
                self.steps.secrets.append(self.token)
        try:
            return forge_from_payload(spec)
        except ForgeError as exc:
            raise NotReviewed(f"no way to reach the forge: {exc}") from None

    async def _publish(self, number: Any, head_sha: Any, merge_base: str | None, reviews: list[RootReview],
                       not_reviewed: str | None) -> None:
        """The comment (one per pull request) and the commit status; a refusal is recorded, not raised."""
        if self.forge is None or not isinstance(number, int):
            return
        reviewed = str(head_sha or self.payload.get("head_sha") or "?")
        body = render_comment(head_sha=reviewed, merge_base=merge_base, roots=reviews, skipped=self.skipped,
                              not_reviewed=not_reviewed, tool=self.tool)
        try:
            await self.forge.upsert_comment(number, MARKER, body)
        except ForgeError as exc:
            self.forge_errors.append(f"comment not written: {exc}")
        state, line = headline(reviews, not_reviewed)
        if isinstance(head_sha, str) and head_sha:
            try:
                await self.forge.set_status(head_sha, state, f"IaC review: {line}", STATUS_CONTEXT)
            except ForgeError as exc:
                self.forge_errors.append(f"status not set: {exc}")

    def _forge_summary(self) -> dict[str, Any]:
        if not self.forge_errors:
            return {"comment": "written"}
        return {"forge_error": _one_line(mask("; ".join(self.forge_errors), self.steps.secrets))}

    # --- git -----------------------------------------------------------------------------------------

    async def _prepare(self, number: int, head_sha: str) -> tuple[str, list[str], Any]:
        url = str(self.payload.get("clone_url") or (self.payload.get("forge") or {}).get("remote") or "")
        base_ref = str(self.payload.get("base_ref") or "")
        head_ref = str(self.payload.get("head_ref") or "")
        if not url or not base_ref:
            raise NotReviewed("the payload has no clone URL or base branch")
        # they reach git's command line: an option ("-..."), a refspec or a path trick is refused
        if not (GIT_URL.match(url) or url.startswith("/")):
            raise NotReviewed(f"the clone URL {mask(url)!r} is neither a git URL nor an absolute path")
        for name, ref in (("base", base_ref), ("head", head_ref)):
            if ref and not REF.match(ref):
                raise NotReviewed(f"the {name} branch {ref!r} is not a branch name git accepts")
        kind = (self.payload.get("forge") or {}).get("kind")
        self.fork = bool(self.payload.get("head_clone_url")) and self.payload.get("head_clone_url") != url
        env = git_env(self.home, self.token if url.startswith("https://") else None)
        self.cache = cache = GitCache(url, self.ctx, self.steps, env)
        base_spec = f"+refs/heads/{base_ref}:refs/nightshift/base/{base_ref}"
        if kind != "local":  # GitHub keeps the head of every pull request, forks' and deleted branches' too
            head_spec = f"+refs/pull/{number}/head:refs/nightshift/pr/{number}"
        elif head_ref:
            head_spec = f"+refs/heads/{head_ref}:refs/nightshift/pr/{number}"
        else:
            head_spec = head_sha
        async with cache.locked():
            await cache.ensure()
            fetched = await cache.fetch([base_spec, head_spec])
            if fetched.returncode != 0:
                base_only = await cache.fetch([base_spec])
                if base_only.returncode != 0:
                    raise NotReviewed(fetch_error(base_only, url, self.steps.secrets))
                head_spec = head_sha  # the pull request's ref is gone (a deleted branch): by SHA
                by_sha = await cache.fetch([head_sha])
                if by_sha.returncode != 0 and not await cache.has_commit(head_sha):
                    raise NotReviewed(f"the head {head_sha[:12]} is no longer on the remote: the branch "
                                      f"{head_ref or '?'} was deleted or force-pushed", head_gone=True)
            if not await cache.has_commit(head_sha):
                pushed = await cache.rev(f"refs/nightshift/pr/{number}")
                by_sha = await cache.fetch([head_sha])
                if by_sha.returncode != 0 and not await cache.has_commit(head_sha):
                    raise NotReviewed(f"the head {head_sha[:12]} is no longer on the pull request "
                                      f"(force-pushed; it is at {str(pushed)[:12]} now): the newer head is "
                                      "reviewed when its push arrives", head_gone=True)
            base = f"refs/nightshift/base/{base_ref}"
            merge_base = await cache.merge_base(base, head_sha, [base_spec, head_spec])
            if merge_base is None:
                raise NotReviewed(f"{head_sha[:12]} and {base_ref} have no common history")
            changed = parse_name_status(await cache.changed_files(merge_base, head_sha))
            head_tree, base_tree = self.ctx.workdir / "head", self.ctx.workdir / "base"
            await cache.worktree(head_sha, head_tree)
            self.worktrees.append(head_tree)
            await cache.worktree(merge_base, base_tree)
            self.worktrees.append(base_tree)
            all_files = await cache.files_at(head_sha)
        self.head_tree, self.base_tree, self.merge_base = head_tree, base_tree, merge_base
        module_files = [path for path in all_files if is_module_file(path)]
        sources = await asyncio.to_thread(_read_sources, head_tree, module_files)
        paths = [f.path for f in changed] + [f.previous_path for f in changed if f.previous_path]
        roots = affected_roots(paths, module_files, sources)
        # a root removed by the pull request has nothing left to check
        roots.roots = [root for root in roots.roots if (head_tree / root).is_dir()]
        self.because = roots.because
        return merge_base, [f.path for f in changed], roots

    # --- tools -------------------------------------------------------------------------------------------

    async def _review_roots(self, roots: list[str], merge_base: str) -> list[RootReview]:
        try:
            self.checkov = require("checkov")
        except ScannerError as exc:
            self.checkov = None
            self.skipped.append(f"Checkov: {_one_line(str(exc))}")
        if self.fork:
            self.skipped.append(f"{self.tool} init and validate: the pull request comes from a fork, and "
                                "init would download the providers and modules its code names")
        reviews = []
        for root in roots:
            reviews.append(await self._review_root(root))
        return reviews

    async def _review_root(self, root: str) -> RootReview:
        review = RootReview(path=root)
        cwd = self.head_tree / root
        # the changed files of the root and of the modules it calls, as the repository names them
        formattable = [p for p in self.because.get(root, [])
                       if p.endswith(FMT_SUFFIXES) and (self.head_tree / p).is_file()]
        if formattable:
            fmt = await self._tool(f"fmt {root}", [self.tool, "fmt", "-check", "-diff", "-list=true",
                                                   "-no-color", *formattable], self.head_tree)
            review.problems += fmt_problems(root, fmt.returncode, _text(fmt.stdout), _text(fmt.stderr),
                                            relative_to=".", tool=self.tool)
        parses = not any(p.rule == "terraform-fmt" and p.severity != "low" for p in review.problems)
        if not self.fork:
            init = await self._tool(f"init {root}", [self.tool, "init", "-backend=false", "-input=false",
                                                     "-no-color"], cwd)
            if init.returncode != 0:
                if parses:
                    review.problems += parse_errors(root, "terraform-init", _text(init.stderr))
                review.skipped.append(f"{self.tool} validate: init failed")
            else:
                validate = await self._tool(f"validate {root}",
                                            [self.tool, "validate", "-json", "-no-color"], cwd)
                review.problems += validate_problems(root, _text(validate.stdout), self.tool)
        if (spec := self.plans.get(root)) is not None:
            review.plan = await self._plan(root, spec, review)
        if self.checkov is not None:
            review.problems += await self._compliance(root, review)
        return review

    async def _plan(self, root: str, spec: PlanSpec, review: RootReview) -> dict[str, Any]:
        """`plan` of the root with its pipeline's credentials: the counts, or why not."""
        done: dict[str, Any] = {"pipeline": spec.name, "workspace": spec.workspace}
        if self.fork:
            return {**done, "error": "not run: the pull request comes from a fork, and a plan would run "
                                     "its code with the pipeline's credentials"}
        if any(p.rule in ("terraform-init", "terraform-validate") or
               (p.rule == "terraform-fmt" and p.severity != "low") for p in review.problems):
            return {**done, "error": "not run: the root does not validate"}
        cwd = self.head_tree / root
        try:
            pipeline = Pipeline(source="", branch="", tool=self.tool, working_directory=root,
                                workspace=spec.workspace, var_files=spec.var_files,
                                env_allowlist=spec.env_allowlist)
            env = pipeline_env(pipeline, home=self.home, tmp=self.home)
            var_files = [f"-var-file={inside(self.head_tree, name, 'var file')}" for name in spec.var_files]
        except StepFailed as exc:
            return {**done, "error": f"not run: {_one_line(str(exc))}"}
        review_env = self._tf_env()  # the same provider mirror and cache as init and validate
        for name in ("TF_CLI_CONFIG_FILE", "TF_PLUGIN_CACHE_DIR"):
            if name in review_env:
                env.setdefault(name, review_env[name])
        # the allow-listed values are the pipeline's credentials: masked in every kept word
        self.steps.secrets.extend(value for name, value in env.items()
                                  if name not in NOT_SECRET_ENV and value)
        init_env = {name: value for name, value in env.items() if name != "TF_WORKSPACE"}
        init = await self._tool(f"plan init {root}", [self.tool, "init", "-input=false", "-reconfigure",
                                                      "-no-color"], cwd, env=init_env)
        if init.returncode != 0:
            return {**done, "error": self._plan_failure("init", root, init)}
        plan_file = self.home / f"plan-{hashlib.sha256(root.encode()).hexdigest()[:16]}.tfplan"
        plan = await self._tool(f"plan {root}", [self.tool, "plan", "-input=false", "-lock=false",
                                                 "-detailed-exitcode", "-no-color", f"-out={plan_file}",
                                                 *var_files], cwd, env=env)
        if plan.returncode not in (0, 2):
            return {**done, "error": self._plan_failure("plan", root, plan)}
        shown = await self._tool(f"plan show {root}",
                                 [self.tool, "show", "-json", "-no-color", str(plan_file)], cwd, env=env,
                                 max_output=MAX_PLAN_JSON)
        if shown.stdout_truncated:
            return {**done, "error": f"{self.tool} show -json wrote more than {MAX_PLAN_JSON} bytes"}
        if shown.returncode != 0:
            return {**done, "error": self._plan_failure("show -json", root, shown)}
        try:
            counts = await asyncio.to_thread(summarise, shown.stdout)
        except PlanError as exc:
            return {**done, "error": f"the plan is unusable: {exc}"}
        return {**done, **counts}

    def _plan_failure(self, step: str, root: str, result: ProcessResult) -> str:
        reason = failure_reason(root, _text(result.stderr), result.returncode, self.tool)
        return _one_line(mask(f"{self.tool} {step} failed: {reason}", self.steps.secrets))[:1000]

    async def _compliance(self, root: str, review: RootReview) -> list[Problem]:
        assert self.checkov is not None
        head_dir, base_dir = self.head_tree / root, self.base_tree / root
        sides = [self._checkov(head_dir, root, "head")]
        if base_dir.is_dir():
            sides.append(self._base_checkov(base_dir, root))
        results = await asyncio.gather(*sides)
        head = results[0]
        if head is None:
            review.skipped.append("Checkov: it could not parse the root (see the validation errors)")
            return []
        base = results[1] if len(results) > 1 and results[1] is not None else []
        return new_compliance_failures(root, head, base)

    async def _base_checkov(self, directory: Path, root: str) -> list[dict[str, Any]] | None:
        """Checkov at the merge base, kept by the root's git tree id and Checkov's executable: every push
        of a pull request (and every pull request on the same base) shares it."""
        assert self.cache is not None and self.checkov is not None
        tree = await self.cache.rev_tree(self.merge_base, root)
        stat = self.checkov.stat()
        identity = f"{root}|{tree}|{self.checkov}|{stat.st_size}|{stat.st_mtime_ns}"
        key = hashlib.sha256(identity.encode()).hexdigest()
        path = cache_dir() / "pr-review" / "checkov-base" / f"{key}.json"
        if tree is not None:
            with contextlib.suppress(OSError, ValueError):
                found: list[dict[str, Any]] | None = json.loads(path.read_text())
                self.steps.steps.append({"step": f"checkov {root} (base)", "cached": True})
                return found
        result = await self._checkov(directory, root, "base")
        if tree is not None:
            with contextlib.suppress(OSError):
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(result))
                tmp.replace(path)
        return result

    async def _checkov(self, directory: Path, root: str, side: str) -> list[dict[str, Any]] | None:
        assert self.checkov is not None
        result = await self._tool(f"checkov {root} ({side})", [str(self.checkov), *CHECKOV_ARGS], directory,
                                  env=checkov_env(self.home), max_output=MAX_CHECKOV_OUTPUT)
        if result.returncode != 0:
            raise NotReviewed(f"Checkov failed on {root} ({side}) with exit status {result.returncode}: "
                              + _text(result.stderr).strip()[-300:])
        try:
            parsed = parse_checkov(result.stdout, scope=root)
        except CheckovOutputError as exc:
            raise NotReviewed(f"Checkov's output on {root} is unusable: {exc}") from None
        if parsed.parsing_errors:
            return None
        return [f for f in parsed.findings if f.get("check_type") == "terraform"]

    async def _tool(self, name: str, argv: list[str], cwd: Path, *, env: dict[str, str] | None = None,
                    max_output: int = TOOL_OUTPUT) -> Any:
        timeout = self.ctx.remaining() - DEADLINE_RESERVE_SECONDS
        if timeout <= 0:
            raise NotReviewed(f"the deadline passed before `{name}` could start")
        try:
            result = await run_process(argv, cwd=cwd, env=env or self._tf_env(), timeout=timeout,
                                       max_output=max_output)
        except OSError as exc:
            raise NotReviewed(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        self.steps.add(name, argv, result)
        if result.timed_out:
            raise NotReviewed(f"`{name}` was killed at the deadline after {result.seconds:.0f}s")
        return result

    def _iac_tool(self) -> str:
        """The payload's iac_tool (terraform when absent: a payload enqueued before it was carried)."""
        tool = self.payload.get("iac_tool") or "terraform"
        if tool not in IAC_TOOLS:
            raise NotReviewed(f"the payload's iac_tool is {str(tool)[:40]!r}; it must be one of "
                              f"{', '.join(IAC_TOOLS)}")
        return str(tool)

    def _tf_env(self) -> dict[str, str]:
        """Terraform's environment: the safe TF_* names and the operator's CLI configuration (a provider
        mirror); providers are cached across reviews (one download per version, not per root)."""
        plugins = Path(os.environ.get("TF_PLUGIN_CACHE_DIR") or cache_dir() / "terraform-plugins")
        plugins.mkdir(parents=True, exist_ok=True)
        return allowed_env((*SAFE_TF_ENV, "TF_CLI_CONFIG_FILE"), home=self.home, extra={
            "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1", "TMPDIR": str(self.home),
            "GIT_TERMINAL_PROMPT": "0", "TF_PLUGIN_CACHE_DIR": str(plugins)})


def _read_sources(tree: Path, paths: list[str]) -> dict[str, str]:
    sources = {}
    for path in paths:
        with contextlib.suppress(OSError):
            sources[path] = (tree / path).read_text(errors="replace")[:1_000_000]
    return sources


def _findings(reviews: list[RootReview]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for review in reviews:
        for problem in review.problems:
            finding = problem.finding()
            seen.setdefault(finding["fingerprint"], finding)
    return list(seen.values())


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 3] + "..."
