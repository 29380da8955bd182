"""The agent contract's checks (dispatcher/contract.py): what a result must be before SQL sees it."""

from __future__ import annotations

import pytest

from dispatcher.contract import (
    AgentResult,
    ContractError,
    Finding,
    ScanReport,
    Task,
    check_findings,
    checked,
    fingerprint,
    payload_timeout,
)

GOOD = {"kind": "compliance", "fingerprint": "fp", "severity": "low"}


def test_a_valid_result_passes_unchanged() -> None:
    result = AgentResult(scan=ScanReport(status="FAILED_CHECKS", findings=[GOOD, Finding("cost", "fp2")]))
    assert checked(result) is result


@pytest.mark.parametrize(("findings", "message"), [
    ([{"kind": "compliance"}], "finding 0 needs a non-empty string 'fingerprint'"),
    ([GOOD, {"fingerprint": "x"}], "finding 1 needs a non-empty string 'kind'"),
    ([{**GOOD, "address": ["a"]}], "'address' must be a string or null, not list"),
    ([{**GOOD, "detail": "x" * 10_000_000}], "finding 0 is 10.0 MB as JSON, at most 1.0 MB"),
    ([GOOD, {**GOOD, "severity": "high"}], "findings 0 and 1 share the fingerprint 'fp'"),
    ([{**GOOD, "note": "a\0b"}], "finding 0 contains a NUL character"),
    ([{**GOOD, "score": float("nan")}], "finding 0 is not JSON"),
    (["not an object"], "finding 0 must be an object, not str"),
    ({"a": 1}, "findings must be a list, not dict"),
])
def test_bad_findings_are_refused_with_a_message_naming_the_finding(findings: object, message: str) -> None:
    with pytest.raises(ContractError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_findings(findings)


def test_a_refused_result_becomes_a_failure_without_retry() -> None:
    result = checked(AgentResult(scan=ScanReport(status="CLEAN", findings=[{"kind": "x"}])))
    assert (result.ok, result.retry, result.scan) == (False, False, None)
    assert result.error is not None and result.error.startswith("invalid agent result: finding 0")


def test_a_nul_in_an_error_is_shown_not_refused() -> None:
    result = checked(AgentResult(ok=False, error="stderr: a\0b"))
    assert result.error == "stderr: a\\0b" and result.retry
    scanned = checked(AgentResult(scan=ScanReport(status="ERROR", error="terraform: a\0b")))
    assert scanned.ok and scanned.scan is not None and scanned.scan.error == "terraform: a\\0b"


def test_fingerprint_is_stable_and_separates_its_parts() -> None:
    assert fingerprint("drift", "a.b", "update") == fingerprint("drift", "a.b", "update")
    assert fingerprint("ab", "c") != fingerprint("a", "bc")


@pytest.mark.parametrize("value", ["abc", float("inf"), float("nan"), 10**400, 8 * 86400, -5, 0, True, [1]])
def test_bad_timeouts_are_refused_naming_the_field(value: object) -> None:
    task = Task(id=1, kind="sleep", subject="s", payload={"timeout_seconds": value}, attempt=1,
                max_attempts=3)
    with pytest.raises(ContractError, match="payload field 'timeout_seconds' must be a number of seconds"):
        payload_timeout(task, 60)


def test_timeout_defaults_and_payload_must_be_an_object() -> None:
    assert payload_timeout(Task(1, "k", "s", {}, 1, 3), 60) == 60
    assert payload_timeout(Task(1, "k", "s", {"timeout_seconds": 2.5}, 1, 3), 60) == 2.5
    with pytest.raises(ContractError, match="must be a JSON object, not an array"):
        payload_timeout(Task(1, "k", "s", [1], 1, 3), 60)  # type: ignore[arg-type]


def test_merged_remediations_a_scan_reports_are_checked_before_sql_sees_them() -> None:
    seen = {"remediation_id": 7, "branch": "nightshift/drift-network-7", "commit": "c0ffee",
            "how": "contained", "merged_at": "2026-11-29T00:30:00+00:00"}
    result = AgentResult(scan=ScanReport(status="CLEAN"), merged=[seen])
    assert checked(result) is result and result.to_json()["merged"] == [seen]
    assert "merged" not in AgentResult(scan=ScanReport(status="CLEAN")).to_json()
    for bad, why in (
        ({**seen, "remediation_id": "7"}, "remediation_id must be an integer"),
        ({**seen, "how": "guess"}, "needs a branch and how (contained, forge)"),
        ({**seen, "merged_at": "yesterday"}, "is not ISO 8601"),
        ({**seen, "pr_number": "4"}, "pr_number must be an integer or null"),
    ):
        refused = checked(AgentResult(scan=ScanReport(status="CLEAN"), merged=[bad]))
        assert not refused.ok and not refused.retry and why in (refused.error or ""), (bad, refused.error)
