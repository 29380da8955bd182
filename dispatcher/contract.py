"""The contract between the dispatcher and every agent: what a task is, what a result is, and the
checks a result must pass before it goes near the database.

An agent returns one AgentResult. Its sections are optional and independent: `scan` (a scans row
plus findings upserted by fingerprint), with room for the results of the agents to come
(remediation, review). nightshift.record_result stores any of them and completes the task in one
transaction (DESIGN.md rule 6).

Everything an agent returns is checked here, in Python, by `checked()`: a finding without a
fingerprint, a detail of 10 MB, two findings with one fingerprint or a NUL character would
otherwise be refused by SQL, inside the result transaction, with a message no plug-in author could
act on. A result that fails the check fails its task once, without retry (the same program would
answer the same way), with a message that names the finding and the field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

SCAN_STATUSES = ("CLEAN", "DRIFTED", "FAILED_CHECKS", "ERROR")

# Bounds on what one result may store. Generous for real scanners (a 10,000-resource plan's
# findings are about 10 MB in all), small enough that one bad agent cannot bloat the database.
MAX_FINDINGS = 100_000
MAX_FINDING_BYTES = 1024 * 1024  # one finding as JSON, details included
MAX_SECTION_BYTES = 8 * 1024 * 1024  # a scan's summary or artifacts as JSON
MAX_FIELD_CHARS = {"kind": 100, "fingerprint": 500, "severity": 50, "address": 2000, "type": 200,
                   "module": 2000, "provider_id": 2000, "change": 50, "check_id": 500}
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600
# the columns of nightshift.findings that a finding's keys fill (upsert_findings); the rest is details
FINDING_COLUMNS = tuple(MAX_FIELD_CHARS)


class ContractError(ValueError):
    """An agent's result does not follow the contract; the message says what to fix."""


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
class Finding:
    """One finding, mirroring the columns of nightshift.findings; `details` holds everything else.

    Agents may return findings as these or as plain dicts with the same keys (the `command` agent's
    JSON); `to_json()` is what reaches SQL.
    """

    kind: str
    fingerprint: str
    severity: str | None = None
    address: str | None = None
    type: str | None = None
    module: str | None = None
    provider_id: str | None = None
    change: str | None = None
    check_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc = {name: getattr(self, name) for name in FINDING_COLUMNS if getattr(self, name) is not None}
        return {**self.details, **doc}


def fingerprint(*parts: str) -> str:
    """A finding's stable identity: sha256 over its identifying parts (kind, resource, rule...).

    Every agent builds fingerprints here, so that one rule holds for all: no line numbers, no
    timestamps, nothing that changes when the finding itself has not.
    """
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class ScanReport:
    """What a scanning agent saw: stored as one scans row plus findings upserted by fingerprint.

    Sensitive values must already be masked: what is here is stored as is.
    """

    status: str
    summary: dict[str, Any] = field(default_factory=dict)
    findings: Sequence[dict[str, Any] | Finding] = field(default_factory=list)
    artifacts: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    started_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.status not in SCAN_STATUSES:
            raise ValueError(f"scan status {self.status!r} is not one of {', '.join(SCAN_STATUSES)}")

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "summary": self.summary, "findings": self.findings_json(),
                "artifacts": self.artifacts, "error": self.error,
                "started_at": self.started_at.isoformat() if self.started_at else None}

    def findings_json(self) -> list[dict[str, Any]]:
        if not isinstance(self.findings, list | tuple):  # an agent's mistake, for check_findings to name
            return self.findings  # type: ignore[return-value]
        return [f.to_json() if isinstance(f, Finding) else f for f in self.findings]


@dataclass(frozen=True)
class AgentResult:
    """ok=False fails the task (retried with backoff while `retry` and attempts remain)."""

    ok: bool = True
    summary: dict[str, Any] = field(default_factory=dict)
    scan: ScanReport | None = None
    error: str | None = None
    retry: bool = True
    # what the agent did on the local forge (dispatcher/forge/local.py: Forge.changes()), stored by
    # nightshift.apply_forge_changes in the completing transaction; [] for GitHub, which holds its own
    forge: list[dict[str, Any]] = field(default_factory=list)
    # a remediation agent's report (sql/functions/remediation_record.sql): status pr_opened or failed
    remediation: dict[str, Any] | None = None
    # remediation pull requests a drift scan found merged into the code it scanned
    # (sql/functions/remediation_seen_merged.sql): the database decides which it marks merged
    merged: list[dict[str, Any]] = field(default_factory=list)

    @property
    def needs_record(self) -> bool:
        """Whether a successful result carries more than "done" (then record_result stores it)."""
        return (self.scan is not None or bool(self.summary) or bool(self.forge)
                or self.remediation is not None or bool(self.merged))

    def to_json(self) -> dict[str, Any]:
        """The document nightshift.record_result stores (sql/functions/result_record.sql)."""
        doc: dict[str, Any] = {"summary": self.summary}
        if self.scan is not None:
            doc["scan"] = self.scan.to_json()
        if self.forge:
            doc["forge"] = self.forge
        if self.remediation is not None:
            doc["remediation"] = self.remediation
        if self.merged:
            doc["merged"] = self.merged
        return doc


# --- checks ------------------------------------------------------------------------------------------


def checked(result: AgentResult) -> AgentResult:
    """The result itself when it follows the contract, else a failure (no retry) saying why.

    An error message is always storable: NUL characters (which PostgreSQL text cannot hold) are
    shown as \\0 rather than refusing the failure too.
    """
    if (result.scan is None and not result.summary and not result.forge and result.remediation is None
            and not result.merged and "\0" not in (result.error or "")):
        return result  # nothing to check: the hot path's noop and sleep results
    if result.scan is not None and isinstance(result.scan.error, str) and "\0" in result.scan.error:
        # a scan's error quotes a tool's output, which may hold anything: shown, not refused
        result = replace(result, scan=replace(result.scan, error=printable(result.scan.error)))
    try:
        if result.scan is not None:
            check_scan(result.scan)
        _check_json("summary", result.summary, MAX_SECTION_BYTES)
        _check_json("forge changes", result.forge, MAX_SECTION_BYTES)
        if result.remediation is not None:
            check_remediation(result.remediation)
        if result.merged:
            check_merged(result.merged)
    except ContractError as exc:
        return AgentResult(ok=False, error=f"invalid agent result: {exc}", retry=False)
    if result.error is not None and "\0" in result.error:
        return replace(result, error=printable(result.error))
    return result


def printable(text: str) -> str:
    """Text PostgreSQL can store: NUL characters shown as \\0."""
    return text.replace("\0", "\\0")


def check_scan(scan: ScanReport) -> None:
    if scan.status not in SCAN_STATUSES:
        raise ContractError(f"scan status {scan.status!r} is not one of {', '.join(SCAN_STATUSES)}")
    if scan.error is not None and not isinstance(scan.error, str):
        raise ContractError(f"scan error must be a string or null, not {type(scan.error).__name__}")
    _check_json("scan summary", scan.summary, MAX_SECTION_BYTES)
    _check_json("scan artifacts", scan.artifacts, MAX_SECTION_BYTES)
    check_findings(scan.findings_json())


REMEDIATION_STATUSES = ("pr_opened", "failed")


def check_remediation(doc: Any) -> None:
    if not isinstance(doc, dict):
        raise ContractError(f"remediation must be an object, not {type(doc).__name__}")
    if doc.get("status") not in REMEDIATION_STATUSES:
        raise ContractError(f"remediation status {doc.get('status')!r} is not one of "
                            f"{', '.join(REMEDIATION_STATUSES)}")
    _check_json("remediation", doc, MAX_SECTION_BYTES)


MERGED_HOW = ("contained", "forge")


def check_merged(items: Any) -> None:
    """Each merged remediation names its id, branch and how it was seen; a time is ISO 8601 or null."""
    if not isinstance(items, list):
        raise ContractError(f"merged must be a list, not {type(items).__name__}")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ContractError(f"merged[{index}] must be an object")
        if not isinstance(item.get("remediation_id"), int) or isinstance(item.get("remediation_id"), bool):
            raise ContractError(f"merged[{index}].remediation_id must be an integer")
        if not isinstance(item.get("branch"), str) or item.get("how") not in MERGED_HOW:
            raise ContractError(f"merged[{index}] needs a branch and how ({', '.join(MERGED_HOW)})")
        if item.get("pr_number") is not None and not isinstance(item.get("pr_number"), int):
            raise ContractError(f"merged[{index}].pr_number must be an integer or null")
        when = item.get("merged_at")
        if when is not None:
            try:
                datetime.fromisoformat(str(when))
            except ValueError:
                raise ContractError(f"merged[{index}].merged_at {str(when)[:40]!r} is not ISO 8601") from None
    _check_json("merged", items, MAX_SECTION_BYTES)


def check_findings(findings: Any) -> None:
    """Each finding an object with a kind and a fingerprint, string columns, bounded size, and no
    two findings sharing a fingerprint (one row each: which would win?)."""
    if not isinstance(findings, list):
        raise ContractError(f"findings must be a list, not {type(findings).__name__}")
    if len(findings) > MAX_FINDINGS:
        raise ContractError(f"{len(findings):,} findings: at most {MAX_FINDINGS:,} per result")
    seen: dict[str, int] = {}
    for index, finding in enumerate(findings):
        where = f"finding {index}"
        if not isinstance(finding, dict):
            raise ContractError(f"{where} must be an object, not {type(finding).__name__}")
        for name in ("kind", "fingerprint"):
            if not isinstance(finding.get(name), str) or not finding[name].strip():
                raise ContractError(f"{where} needs a non-empty string {name!r}, got {finding.get(name)!r}")
        for name, limit in MAX_FIELD_CHARS.items():
            value = finding.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ContractError(f"{where} ({finding['fingerprint'][:40]}): {name!r} must be a string "
                                    f"or null, not {type(value).__name__}")
            if len(value) > limit:
                raise ContractError(f"{where}: {name!r} is {len(value):,} characters, at most {limit:,}")
        _check_json(where, finding, MAX_FINDING_BYTES)
        earlier = seen.setdefault(finding["fingerprint"], index)
        if earlier != index:
            raise ContractError(f"findings {earlier} and {index} share the fingerprint "
                                f"{finding['fingerprint'][:64]!r}: each finding needs its own")


def _check_json(where: str, value: Any, limit: int) -> None:
    """Serialisable as PostgreSQL jsonb: finite numbers, no NUL, at most `limit` bytes."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, default=_refuse)
    except (TypeError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise ContractError(f"{where} is not JSON: {exc}") from None
    if "\\u0000" in text:
        raise ContractError(f"{where} contains a NUL character (\\u0000), which PostgreSQL cannot store")
    size = len(text.encode())
    if size > limit:
        raise ContractError(f"{where} is {size / 1e6:.1f} MB as JSON, at most {limit / 1e6:.1f} MB")


def _refuse(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"a {type(value).__name__} is not JSON")


# --- task payloads -----------------------------------------------------------------------------------


def payload_timeout(task: Task, default: float) -> float:
    """The task's `timeout_seconds`, checked: a finite number of seconds above zero."""
    if not isinstance(task.payload, dict):
        raise ContractError(f"the task payload must be a JSON object, not {_json_type(task.payload)}")
    return payload_seconds(task.payload, "timeout_seconds", default, minimum_exclusive=True)


def payload_seconds(payload: dict[str, Any], name: str, default: float, *,
                    minimum_exclusive: bool = False) -> float:
    """A payload field that is a number of seconds (0 allowed unless minimum_exclusive, at most 7 days);
    ContractError naming the field otherwise. Agents raise it for their own fields too: the task then
    fails once, without retry, and without a traceback in the log."""
    value = payload.get(name)
    if value is None:
        return default
    # compared, never converted first: jsonb hands 1e400 over as a 401-digit int, and NaN compares false
    number = isinstance(value, int | float) and not isinstance(value, bool)
    in_range = number and (value > 0 if minimum_exclusive else value >= 0) and value <= MAX_TIMEOUT_SECONDS
    if not in_range:
        above = "above 0" if minimum_exclusive else "at least 0"
        raise ContractError(f"payload field {name!r} must be a number of seconds {above} and at "
                            f"most {MAX_TIMEOUT_SECONDS:,} (7 days), got {_shown(value)}")
    return float(value)


def _shown(value: Any) -> str:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    text = repr(value) if number else json.dumps(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)
