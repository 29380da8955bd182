"""The result writer: stores results that carry more than "done" (scans, findings, summaries) and
failures, one transaction each, in the order they finished, on the aux connection.

A result the database refuses (a constraint, input the contract's checks missed) would be refused
again: its task is failed at once, without retry, with the refusal as its error, and the writer
goes on with the others. Only a lost connection (DatabaseUnavailable) keeps a result queued for the
next session.
"""

from __future__ import annotations

import logging

from dispatcher.contract import AgentResult, printable
from dispatcher.daemon.state import DaemonState, Run
from dispatcher.daemon.tally import Tally
from dispatcher.redact import mask
from dispatcher.store import Store, StoreError

log = logging.getLogger("nightshift.dispatcher")


class ResultWriter:
    def __init__(self, state: DaemonState, tally: Tally) -> None:
        self.state = state
        self.tally = tally

    async def run(self, aux: Store) -> None:
        state = self.state
        while True:
            await state.write_wake.wait()
            state.write_wake.clear()
            while state.to_write:
                run, result = state.to_write[0]
                try:
                    if result.ok:
                        await self._store_result(aux, run, result)
                    else:
                        await self._store_failure(aux, run, result)
                except StoreError as exc:
                    if result.ok or result.retry:
                        state.to_write[0] = (run, AgentResult(
                            ok=False, retry=False, error=f"the database refused the result: {exc}"))
                        continue
                    log.error("the database refused a task's failure; its lease will expire", extra={
                        "event": "result_refused", "task_id": run.task.id, "error": mask(str(exc))[:500]})
                state.to_write.popleft()
                state.wake.set()

    async def _store_result(self, aux: Store, run: Run, result: AgentResult) -> None:
        stored, scan_id = await aux.record_result(run.task, result)
        if not stored:
            self.tally.stale("result", run.task.id, run.task.attempt)
            return
        self.tally.result_stored(run, scan_id, result.scan.status if result.scan is not None else None)

    async def _store_failure(self, aux: Store, run: Run, result: AgentResult) -> None:
        task = run.task
        # an agent's error may quote a URL with credentials (a git remote, a webhook): never stored
        error = printable(mask(result.error or "failed without an error message"))
        status = await aux.fail(task.id, task.attempt, error, result.retry)
        if status is None:
            self.tally.stale("failure", task.id, task.attempt, kind=task.kind, error=error[:500])
            return
        self.tally.failure_stored(task, status, error)
