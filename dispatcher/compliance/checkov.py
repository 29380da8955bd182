"""Turn `checkov -d DIR -o json` output into compliance findings. Pure: no I/O, no database.

Shape (Checkov 3.x, see ../shared/corpora/terragoat-aws/README.md): a JSON **list** of reports, one per
framework that found files (`terraform`, `secrets`, `kubernetes`, ...), or a **single object** when only
one framework reports. Each report has `check_type`, `summary` {passed, failed, skipped,
parsing_errors, resource_count, checkov_version} and `results` {failed_checks, passed_checks,
skipped_checks}. When no framework found anything to check, Checkov prints an object holding only a
`summary` (or an empty list): that is reported as `resource_count == 0`, and the agent refuses it as
a scan that looked at nothing.

One finding per failed check:
    kind         "compliance"
    check_id     CKV_AWS_20, CKV2_AWS_6, CKV_SECRET_2 ...
    address      the resource (`aws_s3_bucket.data`, `module.net.aws_vpc.main`; for secrets Checkov
                 gives a hash of the secret, never the secret itself)
    type         the resource type (the address' last `type.name` pair), for IaC frameworks
    severity     as Checkov gives it: null offline (it comes only from the Prisma Cloud platform)
    details      check_name, check_type (framework), file_path (relative to the scanned directory),
                 line_range, guideline, evaluated_keys, scanner "checkov", plus the caller's extra keys

Identity: fingerprint = sha256 of ("compliance", "checkov", scope, check_id, location, resource).
No line numbers: moving a block inside its file keeps the finding. `location` is the file path, except
for Terraform, where an address is unique within its module directory: there it is the directory, so
moving a resource to another file of the same module keeps the finding too. `scope` is the caller's (the agent
passes the pipeline id: two pipelines may hold the same relative file). Two failures with one
fingerprint (never seen in real output) are reported once.

Passed checks are counted per check id (`checks` in the result), so framework posture can tell "passed"
from "not evaluated". Skipped checks (`#checkov:skip=` in the code) are counted, never findings.
Malformed input raises CheckovOutputError naming the problem.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dispatcher.errors import NightshiftError

KIND = "compliance"
SCANNER = "checkov"
# type.name pairs in an address; the last one is the resource itself (module.x.aws_s3_bucket.y)
_TYPED_ADDRESS = re.compile(r"(?:^|\.)(?:data\.)?([a-z][a-z0-9]*_[a-z0-9_]+)\.[^.]+(?:\[[^\]]*\])?$")


class CheckovOutputError(NightshiftError):
    """Checkov's output is not the JSON report it should be."""


@dataclass
class CheckovResult:
    findings: list[dict[str, Any]] = field(default_factory=list)
    # check_id -> {"passed": n, "failed": n, "skipped": n}
    checks: dict[str, dict[str, int]] = field(default_factory=dict)
    # check_type -> Checkov's own summary of that report
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    # files Checkov could not parse (results.parsing_errors of every report)
    unparsed: list[str] = field(default_factory=list)
    version: str | None = None

    @property
    def resource_count(self) -> int:
        return sum(int(r.get("resource_count") or 0) for r in self.reports.values())

    @property
    def parsing_errors(self) -> int:
        return sum(int(r.get("parsing_errors") or 0) for r in self.reports.values())


def parse_checkov(
    data: bytes | str, *, scope: str = "", extra: Mapping[str, Any] | None = None,
) -> CheckovResult:
    """The findings and per-check counts of one Checkov JSON output."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        first = text.strip().splitlines()[0][:200] if text.strip() else "(empty output)"
        raise CheckovOutputError(f"not JSON ({exc.__class__.__name__}); it begins: {first}") from None
    if isinstance(doc, dict) and "summary" not in doc and "resource_count" in doc:
        doc = []  # nothing found to check: Checkov prints only the (empty) summary
    reports = doc if isinstance(doc, list) else [doc]
    result = CheckovResult()
    seen: set[str] = set()
    for index, report in enumerate(reports):
        if not isinstance(report, dict):
            raise CheckovOutputError(f"report {index} is a {type(report).__name__}, not an object")
        summary = report.get("summary")
        if not isinstance(summary, dict):
            raise CheckovOutputError(f"report {index} has no summary object")
        check_type = str(report.get("check_type") or "unknown")
        result.reports[check_type] = summary
        result.version = result.version or summary.get("checkov_version")
        results = report.get("results") or {}
        if not isinstance(results, dict):
            raise CheckovOutputError(f"report {check_type}: results is not an object")
        result.unparsed += [str(path) for path in results.get("parsing_errors") or []]
        for outcome in ("passed", "failed", "skipped"):
            for check in _checks(results, f"{outcome}_checks", check_type):
                counts = result.checks.setdefault(check["check_id"], {"passed": 0, "failed": 0, "skipped": 0})
                counts[outcome] += 1
                if outcome == "failed":
                    finding = _finding(check, check_type, scope, extra or {})
                    if finding["fingerprint"] not in seen:
                        seen.add(finding["fingerprint"])
                        result.findings.append(finding)
    return result


def fingerprint(scope: str, check_id: str, location: str, resource: str) -> str:
    key = "\x1f".join((KIND, SCANNER, scope, check_id, location, resource))
    return hashlib.sha256(key.encode()).hexdigest()


def resource_type(address: str, check_type: str) -> str | None:
    if check_type == "secrets":
        return None
    match = _TYPED_ADDRESS.search(address)
    return match.group(1) if match else None


def _checks(results: Mapping[str, Any], key: str, check_type: str) -> Iterable[Mapping[str, Any]]:
    checks = results.get(key) or []
    if not isinstance(checks, list):
        raise CheckovOutputError(f"report {check_type}: {key} is not a list")
    for check in checks:
        if not isinstance(check, dict) or not isinstance(check.get("check_id"), str):
            raise CheckovOutputError(f"report {check_type}: an entry of {key} has no check_id")
        yield check


def _finding(
    check: Mapping[str, Any], check_type: str, scope: str, extra: Mapping[str, Any],
) -> dict[str, Any]:
    check_id = check["check_id"]
    file_path = str(check.get("file_path") or "")
    resource = str(check.get("resource") or "")
    evaluated = (check.get("check_result") or {}).get("evaluated_keys")
    return {
        **extra,
        "kind": KIND,
        "fingerprint": fingerprint(scope, check_id, _location(file_path, check_type), resource),
        "scanner": SCANNER,
        "check_id": check_id,
        "address": resource,
        "type": resource_type(resource, check_type),
        "severity": _lower(check.get("severity")),
        "check_name": check.get("check_name"),
        "check_type": check_type,
        "file_path": file_path,
        "line_range": check.get("file_line_range"),
        "guideline": check.get("guideline"),
        "bc_check_id": check.get("bc_check_id"),
        "evaluated_keys": evaluated if isinstance(evaluated, list) else None,
    }


def _location(file_path: str, check_type: str) -> str:
    if check_type == "terraform":
        return posixpath.dirname(file_path)
    return file_path


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and value else None
