"""Agent runs: each claimed task becomes an asyncio task running its agent, under its deadline.

A run ends in exactly one of: a result to complete or store (state.done / state.to_write), a
failure to store, or a release back to the queue (shutdown). A lost lease drops the result: the
task belongs to another attempt now. What an agent returns is checked against the contract first
(dispatcher/contract.py), so the database never sees a result it would refuse for its shape.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from dispatcher import agents
from dispatcher.agents.base import Agent, AgentContext
from dispatcher.contract import AgentResult, ContractError, Task, checked, payload_timeout
from dispatcher.cost.loader import CostLoader
from dispatcher.daemon.state import DaemonState, Run
from dispatcher.daemon.tally import Tally

log = logging.getLogger("nightshift.dispatcher")
SHARED_TMP = Path(tempfile.gettempdir())


class Runs:
    def __init__(self, state: DaemonState, tally: Tally,
                 load_targets: Callable[[Task], Awaitable[dict[str, Any]]],
                 cost_loader: CostLoader | None = None) -> None:
        self.state = state
        self.tally = tally
        self.load_targets = load_targets
        self.cost_loader = cost_loader
        self._agents: dict[str, Agent] = {}

    def start_all(self, tasks: Sequence[Task]) -> None:
        now = time.monotonic()
        runs = self.state.runs
        loop = asyncio.get_running_loop()
        for task in tasks:
            run = Run(task, now)
            runs[task.id] = run
            try:
                agent = self._agent(task.kind)
            except agents.UnknownAgent as exc:
                self.finish(run, AgentResult(ok=False, error=str(exc), retry=False))
                continue
            run.future = loop.create_task(self._execute(run, agent))

    def _agent(self, kind: str) -> Agent:
        agent = self._agents.get(kind)
        if agent is None:
            agent = self._agents[kind] = agents.get(kind)()
        return agent

    async def _execute(self, run: Run, agent: Agent) -> None:
        task = run.task
        if self.state.on_start is not None:
            self.state.on_start(task)
        try:
            timeout = payload_timeout(task, agent.default_timeout)
        except ContractError as exc:  # bad input, not bad luck: the same payload fails the same way
            self.finish(run, AgentResult(ok=False, error=f"{task.kind}: {exc}", retry=False))
            return
        result: AgentResult | None
        workdir = None
        timer = None
        try:
            targets = await self.load_targets(task) if agent.needs_targets else {}
            if agent.needs_workdir:
                workdir = Path(tempfile.mkdtemp(prefix=f"nightshift-task-{task.id}-"))
            ctx = AgentContext(task=task, workdir=workdir or SHARED_TMP, deadline=time.monotonic() + timeout,
                               targets=targets,
                               cost_loader=self.cost_loader if agent.needs_cost_loader else None)
            # a timer handle rather than asyncio.timeout(): the same cancellation at the deadline for
            # about a third of the cost (profiled), and this runs for every task
            timer = asyncio.get_running_loop().call_later(timeout, self._time_out, run)
            result = await agent.run(ctx)
        except ContractError as exc:  # the agent found its own input unusable: no retry, no traceback
            result = AgentResult(ok=False, error=f"{task.kind}: {exc}", retry=False)
        except asyncio.CancelledError:
            # the deadline, the shutdown timeout or a lost lease: the process group is already killed
            result = AgentResult(ok=False, error=f"{task.kind}: timed out after {timeout:g}s") \
                if run.timed_out else None
        except Exception as exc:  # an agent bug fails the task, never the dispatcher
            log.exception("agent raised", extra={"event": "agent_error", "task_id": task.id})
            result = AgentResult(ok=False, error=f"{task.kind}: {type(exc).__name__}: {exc}")
        finally:
            if timer is not None:
                timer.cancel()
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
        self.finish(run, result)

    @staticmethod
    def _time_out(run: Run) -> None:
        if run.future is not None and not run.future.done():
            run.timed_out = True
            run.future.cancel()

    def finish(self, run: Run, result: AgentResult | None) -> None:
        """Hand a run's outcome to whoever writes it; None: released (shutdown) or dropped (lost)."""
        state = self.state
        task = run.task
        state.runs.pop(task.id, None)
        state.metrics.kind(task.kind).run_seconds.observe(time.monotonic() - run.started)
        if result is None:
            if not run.lost:
                state.to_release.append(run)
        else:
            result = checked(result)  # refused here, with a message for the agent's author, not by SQL
            if result.ok and not result.needs_record:  # the hot path: completed in batches, pipelined
                state.done.append((task.id, task.attempt, task.kind))
            else:
                state.to_write.append((run, result))
                state.write_wake.set()
        state.wake.set()

    def cancel_all(self) -> None:
        for run in list(self.state.runs.values()):
            if run.future is not None:
                run.future.cancel()
