"""The Prowler OCSF parser on Prowler 5.46.0's real output (tests/fixtures/prowler): AWS against moto, and
Azure and GCP written by Prowler's own output code from its own check reports (generate_azure_gcp.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dispatcher.compliance.prowler import ProwlerOutputError, compliance_key, parse_prowler

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prowler"
FIXTURE = FIXTURES / "moto_cis_3.0_aws.ocsf.json"
SSH = "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22"


def test_failures_become_findings_with_their_cis_requirements() -> None:
    result = parse_prowler(FIXTURE.read_bytes(), requirements={compliance_key("CIS", "3.0")})
    assert result.version == "5.46.0"
    by_check = {f["check_id"]: f for f in result.findings}
    assert sorted(by_check) == [SSH, "s3_bucket_secure_transport_policy"]
    bucket = by_check["s3_bucket_secure_transport_policy"]
    assert bucket["address"] == "arn:aws:s3:::nightshift-reports" and bucket["type"] == "AwsS3Bucket"
    assert bucket["severity"] == "medium" and bucket["region"] == "us-east-1"
    assert bucket["account"] == "123456789012"
    assert bucket["requirements"] == {"CIS-3.0": ["2.1.1"]}, "only the frameworks asked for"
    assert by_check[SSH]["requirements"] == {"CIS-3.0": ["5.2", "5.3"]}
    assert by_check[SSH]["severity"] == "high"
    assert by_check[SSH]["guideline"].startswith("https://hub.prowler.com/check/")
    assert result.checks[SSH] == {"passed": 1, "failed": 1, "manual": 0}
    manual = result.checks["account_maintain_current_contact_details"]
    assert manual == {"passed": 0, "failed": 0, "manual": 1}


def test_the_fingerprint_is_check_resource_and_region() -> None:
    doc = json.loads(FIXTURE.read_bytes())
    first = {f["fingerprint"] for f in parse_prowler(json.dumps(doc)).findings}
    for item in doc:
        item["status_detail"] = "reworded by a newer Prowler"
        item["time"] = 0
    assert {f["fingerprint"] for f in parse_prowler(json.dumps(doc)).findings} == first
    for item in doc:
        item["resources"][0]["region"] = "eu-west-1"
    assert not {f["fingerprint"] for f in parse_prowler(json.dumps(doc)).findings} & first


@pytest.mark.parametrize(("output", "message"), [
    (b"Traceback (most recent call last):", "not JSON (JSONDecodeError); it begins: Traceback"),
    (b'{"status_code": "FAIL"}', "expected a JSON array of OCSF findings, got a dict"),
    (b'[{"status_code": "FAIL"}]', "finding 0 has no check id"),
    (b'[{"metadata": {"event_code": "x"}, "status_code": "MAYBE"}]', "finding 0 has no check id"),
])
def test_malformed_output_is_refused(output: bytes, message: str) -> None:
    with pytest.raises(ProwlerOutputError) as caught:
        parse_prowler(output)
    assert message in str(caught.value)


def test_no_findings_is_an_empty_result() -> None:
    result = parse_prowler(b"[]")
    assert result.findings == [] and result.checks == {}


# What each fixture's one FAIL must become: Prowler's fields as the parser maps them, per provider.
AZURE_ACCOUNT = "/subscriptions/9c6b2a1e-3f4d-4e5a-8b7c-0d1e2f3a4b5c/resourceGroups/audit-rg/providers/" \
                "Microsoft.Storage/storageAccounts/"
OTHER_CLOUDS = {
    "azure": ("azure_cis_6.0.ocsf.json", "CIS-6.0", {
        "check_id": "storage_secure_transfer_required_is_enabled",
        "address": AZURE_ACCOUNT + "nsreports", "provider_id": AZURE_ACCOUNT + "nsreports",
        "region": "westeurope", "severity": "high", "type": "microsoft.storage/storageaccounts",
        "account": "9c6b2a1e-3f4d-4e5a-8b7c-0d1e2f3a4b5c", "resource_name": "nsreports",
        "requirements": {"CIS-6.0": ["9.3.4"], "ISO27001-2022": ["A.8.12", "A.8.14", "A.8.24"]},
        "guideline": "https://hub.prowler.com/check/storage_secure_transfer_required_is_enabled",
    }),
    "gcp": ("gcp_cis_5.0.ocsf.json", "CIS-5.0", {
        "check_id": "cloudsql_instance_public_access",
        "address": "orders-db", "provider_id": "orders-db",
        "region": "europe-west1", "severity": "critical", "type": "sqladmin.googleapis.com/Instance",
        "account": "nightshift-audit-123456", "resource_name": "orders-db",
        "requirements": {"CIS-5.0": ["6.5", "6.7"], "ISO27001-2022": ["A.8.1"]},
        "guideline": "https://hub.prowler.com/check/cloudsql_instance_public_access",
    }),
}


@pytest.mark.parametrize("provider", sorted(OTHER_CLOUDS))
def test_azure_and_gcp_failures_become_findings_with_their_cis_requirements(provider: str) -> None:
    name, cis, expected = OTHER_CLOUDS[provider]
    result = parse_prowler((FIXTURES / name).read_bytes(), requirements={cis, "ISO27001-2022"})
    assert result.version == "5.46.0"
    [finding] = result.findings  # the storage account / instance that fails; the other one passes
    assert {key: finding[key] for key in expected} == expected
    assert finding["kind"] == "compliance" and finding["scanner"] == "prowler"
    assert finding["status_detail"].startswith(("Storage account nsreports ", "Database Instance orders-db "))
    assert result.checks == {expected["check_id"]: {"passed": 1, "failed": 1, "manual": 0}}


def test_a_gcp_finding_is_one_per_project() -> None:
    """GCP uids are unique within a project only (a Cloud SQL instance's is its name): the same instance
    name in two projects of one integration is two findings, not one dropped as a duplicate."""
    doc = json.loads((FIXTURES / "gcp_cis_5.0.ocsf.json").read_bytes())
    failed = next(item for item in doc if item["status_code"] == "FAIL")
    other = json.loads(json.dumps(failed))
    other["cloud"]["account"]["uid"] = "nightshift-audit-654321"
    result = parse_prowler(json.dumps([*doc, other]))
    assert [(f["address"], f["account"]) for f in result.findings] == [
        ("orders-db", "nightshift-audit-123456"), ("orders-db", "nightshift-audit-654321")]
    assert len({f["fingerprint"] for f in result.findings}) == 2
    # the same holds for nothing else: an ARN or an Azure resource id already names its account
    azure = json.loads((FIXTURES / "azure_cis_6.0.ocsf.json").read_bytes())
    moved = json.loads(json.dumps(azure[0]))
    moved["cloud"]["account"]["uid"] = "another-subscription"
    assert len(parse_prowler(json.dumps([azure[0], moved])).findings) == 1
