"""Built-in agents for tests, benchmarks and health checks: `noop` and `sleep`."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from dispatcher.agents import register
from dispatcher.agents.base import Agent, AgentContext, AgentResult
from dispatcher.contract import payload_seconds

_OK = AgentResult()


@register("noop")
class NoopAgent(Agent):
    """Does nothing and succeeds: measures the queue itself."""

    needs_workdir: ClassVar[bool] = False

    async def run(self, ctx: AgentContext) -> AgentResult:
        return _OK


@register("sleep")
class SleepAgent(Agent):
    """Sleeps `payload.seconds` (default 1), then succeeds; `payload.fail: true` fails instead."""

    needs_workdir: ClassVar[bool] = False

    async def run(self, ctx: AgentContext) -> AgentResult:
        payload = ctx.task.payload
        await asyncio.sleep(payload_seconds(payload, "seconds", 1.0))
        if payload.get("fail"):
            return AgentResult(ok=False, error=str(payload.get("error") or "sleep: failing as asked"),
                               retry=bool(payload.get("retry", True)))
        return _OK
