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
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

SCAN_STATUSES = ("CLEAN", "DRIFTED", "FAILED_CHECKS", "ERROR")


@dataclass(frozen=True)
class Task:
    """A claimed task. `attempt` is the fencing token every later write must name."""

    id: int
    kind: str
    subject: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    priority: int = 0
    schedule_id: int | None = None
    locked_until: datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Task:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__ if name in row})


@dataclass(frozen=True)
class AgentContext:
    task: Task
    workdir: Path
    deadline: float  # time.monotonic() value after which the agent is killed
    targets: dict[str, Any] = field(default_factory=dict)

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


@dataclass(frozen=True)
class ScanReport:
    """What a scanning agent saw: stored as one scans row plus findings upserted by fingerprint.

    Each finding is a dict with at least `kind`, `fingerprint`, `severity`; scanners add
    `address`, `type`, `module`, `provider_id`, `change`, `check_id`, `attributes`... Sensitive
    values must already be masked: what is here is stored as is.
    """

    status: str
    summary: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    artifacts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    started_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.status not in SCAN_STATUSES:
            raise ValueError(f"scan status {self.status!r} is not one of {', '.join(SCAN_STATUSES)}")


@dataclass(frozen=True)
class AgentResult:
    """ok=False fails the task (retried with backoff while `retry` and attempts remain)."""

    ok: bool = True
    summary: dict[str, Any] = field(default_factory=dict)
    scan: ScanReport | None = None
    error: str | None = None
    retry: bool = True


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

    @abstractmethod
    async def run(self, ctx: AgentContext) -> AgentResult:
        """Do the work; raise only for bugs (the dispatcher turns an exception into a failure)."""
