"""The dispatcher: turns queued tasks into agent runs, on one machine or many against one database.

One asyncio process, in small services around one shared state (DaemonState), like River's
maintenance services or Oban's producer/executor:

- supervisor.py  Dispatcher: sessions (four connections), reconnect with capped backoff, shutdown
- pump.py        the hot loop: claim into free slots, complete finished tasks, pipelined on the work
                 connection; the listener (LISTEN on its own connection) that wakes it
- runs.py        agent runs under their deadline; results checked against the contract
- results.py     results and failures stored one transaction each (aux connection)
- leases.py      heartbeats on their own connection; runs whose lease is lost are stopped
- housekeeping.py  the poll timer, requeueing expired leases, queue gauges
- tally.py       stats, metrics and log lines
- signals.py     SIGTERM/SIGINT

Every write names the task's attempt (the fencing token): a dispatcher that lost its lease (stopped,
partitioned, too slow) is told so by the database and changes nothing (DESIGN.md rules 4-7).
Shutdown: stop claiming, let running tasks finish within the shutdown timeout, then cancel them
(process.run_process kills their processes) and release them to the queue without spending an
attempt. A second signal exits at once.
"""

from __future__ import annotations

from dispatcher.daemon.config import CHANNEL, DispatcherConfig, default_worker_name
from dispatcher.daemon.state import Stats
from dispatcher.daemon.supervisor import Dispatcher

__all__ = ["CHANNEL", "Dispatcher", "DispatcherConfig", "Stats", "default_worker_name"]
