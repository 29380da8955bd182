"""The pump: the hot loop that claims into free slots and completes finished tasks, one round trip
at a time, on the work connection (used by the pump alone); and the listener that wakes it.

A claim and the completions finished since the last one go out together, in that order, each its
own transaction (pipelined, dispatcher/roundtrip.py): the claimed tasks start as soon as the claim's
answer is in, while the server stores the completions; their answer is read at the next round trip
or before waiting idle. Counting (stats, metrics, logs) is done while the server works.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from dispatcher.daemon.runs import Runs
from dispatcher.daemon.state import DaemonState, Done
from dispatcher.daemon.tally import Tally
from dispatcher.errors import DatabaseUnavailable
from dispatcher.roundtrip import Answer
from dispatcher.store import RoundTripAnswer, Store, translate_errors


class Pump:
    def __init__(self, state: DaemonState, tally: Tally, runs: Runs) -> None:
        self.state = state
        self.tally = tally
        self.runs = runs

    async def run(self, work: Store) -> None:
        with translate_errors(self.state.config.url):  # once, not per call of the hot path
            await self._pump(work)

    async def _pump(self, work: Store) -> None:
        state, tally, cfg = self.state, self.tally, self.state.config
        round_trip = work.round_trip
        await round_trip.prepare()
        # completions sent whose answer is unread, oldest first
        unacknowledged: deque[tuple[list[Done], Answer[RoundTripAnswer]]] = deque()
        claiming = False
        try:
            while True:
                free = 0 if state.stopping else cfg.concurrency - len(state.runs)
                limit = free if (free > 0 and state.want_claim) else 0
                if not (state.done or limit or state.to_release):
                    if unacknowledged and round_trip.answer_ready():
                        await self._acknowledge(unacknowledged)
                        continue
                    tally.account()
                    if state.finished() and not unacknowledged:
                        state.stopped.set()
                        return
                    state.wake.clear()
                    if unacknowledged:  # a task that finishes meanwhile need not wait for this answer
                        await round_trip.wait_for_answer(state.wake)
                    else:
                        await state.wake.wait()
                    continue
                earlier = len(unacknowledged)
                gen = state.notify_gen
                claim = None
                if limit:
                    after = None if state.from_head else state.after
                    state.from_head = False
                    claiming = True
                    claim = round_trip.send((), (), cfg.worker, cfg.kinds, limit, state.lease, after)
                if state.done:
                    done, state.done = state.done, []
                    reply = round_trip.send([d[0] for d in done], [d[1] for d in done], cfg.worker,
                                            cfg.kinds, 0, state.lease)
                    unacknowledged.append((done, reply))
                round_trip.flush()
                tally.account()  # while the server works
                for _ in range(earlier):  # answers come in the order sent: these precede the claim's
                    await self._acknowledge(unacknowledged)
                if claim is not None:
                    _, claimed = await claim
                    claiming = False
                    state.session_claimed = True
                    if len(claimed.tasks) < limit and gen == state.notify_gen:
                        state.want_claim = False  # drained; a NOTIFY or the poll timer wakes us again
                    if claimed.position is not None:
                        state.after = claimed.position
                    self.runs.start_all(claimed.tasks)
                    tally.claimed_later(claimed.tasks)
                if state.to_release:
                    while unacknowledged:
                        await self._acknowledge(unacknowledged)
                    await self._release(work)
        except BaseException:
            # not known to be stored: complete again after reconnecting (a completion that did
            # commit is then refused as stale, and logged so)
            state.done = [d for done, _ in unacknowledged for d in done] + state.done
            if claiming:
                state.from_head = True  # tasks it may have claimed come back when their lease ends
            raise

    async def _acknowledge(self, unacknowledged: deque[tuple[list[Done], Answer[RoundTripAnswer]]]) -> None:
        """Read the answer to the oldest completions sent (popped only once it is read)."""
        completed, _ = await unacknowledged[0][1]
        done, _ = unacknowledged.popleft()
        self.tally.completed_later(done, completed)

    async def _release(self, work: Store) -> None:
        """Give the runs stopped at shutdown back to the queue without spending an attempt."""
        state = self.state
        runs, state.to_release = state.to_release, []
        try:
            released = await work.release_many([r.task.id for r in runs], [r.task.attempt for r in runs],
                                               f"released by {state.config.worker} at shutdown")
        except BaseException:
            state.to_release = runs + state.to_release
            raise
        self.tally.released(released)


async def listen(state: DaemonState, conn: Any) -> None:
    """Notifications on the connection that LISTENs (on its own: a notifies() loop blocks other
    statements on its connection, psycopg #340). A NOTIFY only wakes the pump; those about kinds this
    dispatcher does not run are ignored."""
    url = state.config.url
    wanted = set(state.config.kinds or ())
    with translate_errors(url):
        async for notify in conn.notifies():
            if wanted and not _mentions_kind(notify.payload, wanted):
                continue
            state.poke()
    raise DatabaseUnavailable("the LISTEN connection ended")


def _mentions_kind(payload: str, wanted: set[str]) -> bool:
    try:
        kinds = json.loads(payload).get("kinds")
    except (ValueError, AttributeError):
        return True  # not ours to judge: claim and see
    return not isinstance(kinds, list) or bool(wanted.intersection(kinds))
