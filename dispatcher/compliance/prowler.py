"""Turn Prowler's OCSF JSON output (`-M json-ocsf`) into compliance findings. Pure: no I/O, no database.

Prowler 5 writes a JSON array of OCSF 1.5 Detection Findings, one per check and resource, of one shape
for AWS, Azure and GCP (tests/fixtures/prowler/: real output of each). What is read of each:

    metadata.event_code        the Prowler check id (s3_bucket_secure_transport_policy)
    status_code                PASS, FAIL or MANUAL
    severity                   Informational, Low, Medium, High, Critical (lower-cased here)
    resources[0].uid / region / type / name    the resource's uid, region, type: an ARN and an AWS
                               region; an Azure resource id (/subscriptions/.../storageAccounts/x) and
                               location (westeurope, or global); for GCP often the bare resource name
                               (a Cloud SQL instance's uid is its name) and a region (europe-west1)
    cloud.account.uid          the account: AWS account, Azure subscription, GCP project
    cloud.provider             aws, azure, gcp
    unmapped.compliance        {"CIS-3.0": ["5.2", "5.3"], "SOC2": [...], ...}: the framework requirements
                               Prowler maps the check to (kept for the frameworks asked for)
    status_detail, finding_info.title, remediation.references

One finding per FAIL. PASS and MANUAL are counted per check (`checks`), for the posture.
Identity: fingerprint = sha256 of ("compliance", "prowler", check id, resource uid, region): one finding
per check and resource, whatever Prowler's wording of the status detail. For GCP the project is part of
it too: its uids are unique within a project only, and one integration may scan several projects (two
projects' "orders-db" instances are two findings). ARNs and Azure resource ids are unique as they are.
Malformed input raises ProwlerOutputError naming the problem.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from dispatcher.errors import NightshiftError

KIND = "compliance"
SCANNER = "prowler"
STATUSES = {"PASS": "passed", "FAIL": "failed", "MANUAL": "manual"}


class ProwlerOutputError(NightshiftError):
    """Prowler's output is not the OCSF JSON it should be."""


@dataclass
class ProwlerResult:
    findings: list[dict[str, Any]] = field(default_factory=list)
    # check_id -> {"passed": n, "failed": n, "manual": n}
    checks: dict[str, dict[str, int]] = field(default_factory=dict)
    version: str | None = None


def compliance_key(framework: str, version: str) -> str:
    """The key of unmapped.compliance for a Prowler framework file: CIS-3.0, SOC2, ISO27001-2022."""
    return f"{framework}-{version}" if version else framework


def parse_prowler(data: bytes | str, *, requirements: Collection[str] | None = None) -> ProwlerResult:
    """Findings and per-check counts; `requirements` names the unmapped.compliance keys to keep."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        first = text.strip().splitlines()[0][:200] if text.strip() else "(empty output)"
        raise ProwlerOutputError(f"not JSON ({exc.__class__.__name__}); it begins: {first}") from None
    if not isinstance(doc, list):
        raise ProwlerOutputError(f"expected a JSON array of OCSF findings, got a {type(doc).__name__}")
    result = ProwlerResult()
    seen: set[str] = set()
    for index, item in enumerate(doc):
        if not isinstance(item, dict):
            raise ProwlerOutputError(f"finding {index} is a {type(item).__name__}, not an object")
        metadata = item.get("metadata") or {}
        check_id = metadata.get("event_code")
        status = item.get("status_code")
        if not isinstance(check_id, str) or status not in STATUSES:
            raise ProwlerOutputError(f"finding {index} has no check id (metadata.event_code) or no "
                                     f"PASS/FAIL/MANUAL status_code")
        result.version = result.version or (metadata.get("product") or {}).get("version")
        counts = result.checks.setdefault(check_id, {"passed": 0, "failed": 0, "manual": 0})
        counts[STATUSES[status]] += 1
        if status == "FAIL":
            finding = _finding(item, check_id, requirements)
            if finding["fingerprint"] not in seen:
                seen.add(finding["fingerprint"])
                result.findings.append(finding)
    return result


def fingerprint(check_id: str, resource: str, region: str, project: str | None = None) -> str:
    """`project` only for uids that are unique within a project alone (GCP)."""
    key = "\x1f".join((KIND, SCANNER, check_id, resource, region, *((project,) if project else ())))
    return hashlib.sha256(key.encode()).hexdigest()


def _finding(item: Mapping[str, Any], check_id: str, requirements: Collection[str] | None) -> dict[str, Any]:
    resources = item.get("resources") or [{}]
    resource = resources[0] if isinstance(resources[0], dict) else {}
    cloud = item.get("cloud") or {}
    uid = str(resource.get("uid") or resource.get("name") or "")
    region = str(resource.get("region") or cloud.get("region") or "")
    account = (cloud.get("account") or {}).get("uid")
    project = str(account) if cloud.get("provider") == "gcp" and account else None
    compliance = ((item.get("unmapped") or {}).get("compliance")) or {}
    if requirements is not None:
        compliance = {key: value for key, value in compliance.items() if key in requirements}
    severity = item.get("severity")
    references = (item.get("remediation") or {}).get("references") or []
    return {
        "kind": KIND,
        "fingerprint": fingerprint(check_id, uid, region, project),
        "scanner": SCANNER,
        "check_id": check_id,
        "address": uid,
        "provider_id": uid,
        "type": resource.get("type"),
        "severity": severity.lower() if isinstance(severity, str) and severity else None,
        "region": region,
        "account": account,
        "resource_name": resource.get("name"),
        "check_name": (item.get("finding_info") or {}).get("title"),
        "status_detail": item.get("status_detail"),
        "requirements": compliance,
        "guideline": references[0] if references else None,
    }
