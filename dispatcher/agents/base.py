"""The agent contract: what an agent receives and what it returns.

An agent turns one claimed task into a result. It never sees the database: the dispatcher hands it
the task, the rows that describe the task's subject (when it asks for them), a private working
directory that is removed afterwards, and a deadline. It returns an AgentResult; the dispatcher
stores it in one transaction (DESIGN.md rule 6).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

# The result types live in dispatcher/contract.py (with the checks a result must pass); agents may
# import them from here, next to the Agent base class.
from dispatcher.contract import SCAN_STATUSES, AgentResult, Finding, ScanReport, Task, fingerprint

if TYPE_CHECKING:
    from dispatcher.cost.loader import CostLoader

__all__ = ["SCAN_STATUSES", "Agent", "AgentContext", "AgentResult", "Finding", "ScanReport", "Task",
           "fingerprint"]

@dataclass(frozen=True)
class AgentContext:
    task: Task
    workdir: Path
    deadline: float  # time.monotonic() value after which the agent is killed
    targets: dict[str, Any] = field(default_factory=dict)
    # for agents with needs_cost_loader: sessions as the least-privileged nightshift_cost_loader role
    # (dispatcher/cost/loader.py); no agent gets a database URL
    cost_loader: CostLoader | None = None

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


class Agent(ABC):
    """Base class of agents; register subclasses with `dispatcher.agents.register`."""

    name: ClassVar[str]
    # load the subject's rows (pipeline, repository, ...) into AgentContext.targets before running
    needs_targets: ClassVar[bool] = False
    # seconds, unless the task payload says `timeout_seconds`
    default_timeout: ClassVar[float] = 3600.0
    # a private working directory (created before, removed after the run); agents that never touch
    # the disk (noop, sleep) set False and get the system temporary directory, shared, instead
    needs_workdir: ClassVar[bool] = True
    # the cost-analysis agent loads billing exports and runs SQL analyses: AgentContext.cost_loader
    needs_cost_loader: ClassVar[bool] = False

    @abstractmethod
    async def run(self, ctx: AgentContext) -> AgentResult:
        """Do the work; raise only for bugs (the dispatcher turns an exception into a failure)."""
