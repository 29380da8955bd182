"""The `command` agent: any executable, speaking JSON, is an agent.

Payload of a `command` task::

    {"command": ["/opt/agents/review.py", "--strict"],   # argv; argv[0] absolute or found on PATH
     "env": ["GITHUB_TOKEN"],                            # names passed from the dispatcher's environment
     "timeout_seconds": 600}                             # optional; default 3600

The executable must match one of the dispatcher's allowed patterns (`nightshift dispatcher run
--allow-command GLOB`, or $NIGHTSHIFT_COMMAND_ALLOW, paths separated by ':'): whoever can enqueue a
task must not be able to run arbitrary programs on the dispatcher's machine. It runs in its own process
group, in a private working directory (also its HOME), with an allow-listed environment, killed with
its whole group at the deadline; stdout and stderr are capped at 1 MiB each.

stdin receives one JSON object::

    {"task": {"id": 42, "kind": "command", "subject": "repo/7", "payload": {...}, "attempt": 1,
              "max_attempts": 3, "priority": 0},
     "workdir": "/tmp/nightshift-task-42-...", "deadline_seconds": 599.9}

stdout must be one JSON object (exit status 0)::

    {"ok": true,                  # false fails the task
     "error": "why it failed",    # with ok=false
     "retry": true,               # with ok=false: false means do not retry (status `failed`)
     "summary": {...},            # free-form, logged
     "scan": {                    # optional: store a scan (and its findings) for the task
        "status": "CLEAN" | "DRIFTED" | "FAILED_CHECKS" | "ERROR",
        "summary": {...}, "artifacts": {...}, "error": null,
        "findings": [{"kind": "...", "fingerprint": "...", "severity": "...", ...}]}}

A non-zero exit status fails the task (retried) with the end of stderr; output that is not such a JSON
object fails it without retry. Values of passed environment variables are masked in stored errors.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
from collections.abc import Sequence
from typing import Any

from dispatcher.agents import register
from dispatcher.agents.base import Agent, AgentContext, AgentResult, ScanReport
from dispatcher.agents.process import allowed_env, run_process
from dispatcher.redact import mask

ALLOW_ENV = "NIGHTSHIFT_COMMAND_ALLOW"
STDERR_TAIL = 4000  # characters of stderr kept in a stored error


class CommandError(Exception):
    """The task's payload or the program's answer does not follow the contract."""


def allowed_patterns() -> list[str]:
    return [p for p in os.environ.get(ALLOW_ENV, "").split(os.pathsep) if p]


def resolve_executable(argv0: str, patterns: Sequence[str]) -> str:
    """The absolute path of argv[0], when it matches an allowed pattern."""
    path = argv0 if os.path.isabs(argv0) else shutil.which(argv0)
    if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise CommandError(f"command {argv0!r} is not an executable file")
    real = os.path.realpath(path)
    if not any(fnmatch.fnmatchcase(p, pattern) for p in {path, real} for pattern in patterns):
        allowed = ", ".join(patterns) or "nothing (pass --allow-command GLOB to the dispatcher)"
        raise CommandError(f"command {path!r} is not allowed on this dispatcher; allowed: {allowed}")
    return path


@register("command")
class CommandAgent(Agent):
    async def run(self, ctx: AgentContext) -> AgentResult:
        payload = ctx.task.payload
        argv = payload.get("command")
        if isinstance(argv, str):
            argv = [argv]
        env_names = payload.get("env") or []
        try:
            if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
                raise CommandError('payload "command" must be a list of strings (the argv)')
            if not (isinstance(env_names, list) and all(isinstance(n, str) for n in env_names)):
                raise CommandError('payload "env" must be a list of variable names')
            executable = resolve_executable(argv[0], allowed_patterns())
        except CommandError as exc:
            return AgentResult(ok=False, error=str(exc), retry=False)

        env = allowed_env(env_names, home=ctx.workdir)
        secrets = [value for name, value in env.items() if name in env_names]
        stdin = json.dumps({
            "task": {"id": ctx.task.id, "kind": ctx.task.kind, "subject": ctx.task.subject,
                     "payload": payload, "attempt": ctx.task.attempt,
                     "max_attempts": ctx.task.max_attempts, "priority": ctx.task.priority},
            "workdir": str(ctx.workdir), "deadline_seconds": round(ctx.remaining(), 3),
        }).encode()
        result = await run_process([executable, *argv[1:]], cwd=ctx.workdir, env=env,
                                   timeout=ctx.remaining(), stdin=stdin)
        if result.timed_out:
            return AgentResult(ok=False, error=f"command timed out after {result.seconds:.1f}s")
        if result.returncode != 0:
            tail = mask(result.text("stderr"), secrets)[-STDERR_TAIL:]
            return AgentResult(ok=False, error=f"command exited with status {result.returncode}: {tail}")
        try:
            return parse_answer(result.text("stdout"))
        except CommandError as exc:
            return AgentResult(ok=False, error=mask(str(exc), secrets), retry=False)


def parse_answer(text: str) -> AgentResult:
    """The program's stdout as an AgentResult (see the module docstring for the schema)."""
    try:
        answer: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"command output is not JSON ({exc}): {text[:200]!r}") from None
    if not isinstance(answer, dict):
        raise CommandError("command output must be a JSON object")
    scan = None
    if answer.get("scan") is not None:
        raw = answer["scan"]
        if not isinstance(raw, dict):
            raise CommandError('"scan" must be an object')
        try:
            scan = ScanReport(status=str(raw.get("status")), summary=dict(raw.get("summary") or {}),
                              findings=raw.get("findings") or [],  # checked by the contract
                              artifacts=dict(raw.get("artifacts") or {}), error=raw.get("error"))
        except (TypeError, ValueError) as exc:
            raise CommandError(f"invalid scan: {exc}") from None
    ok = bool(answer.get("ok", True))
    error = answer.get("error")
    return AgentResult(ok=ok, summary=dict(answer.get("summary") or {}), scan=scan,
                       error=None if error is None else str(error),
                       retry=bool(answer.get("retry", True)))
