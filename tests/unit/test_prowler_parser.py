"""The Prowler OCSF parser on Prowler 5.46.0's real output against moto (tests/fixtures/prowler)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dispatcher.compliance.prowler import ProwlerOutputError, compliance_key, parse_prowler

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "prowler" / "moto_cis_3.0_aws.ocsf.json"
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
