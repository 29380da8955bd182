"""The Checkov JSON parser on Checkov's real output for TerraGoat (read in place from ../shared) and on
the shapes Checkov prints for one framework, for nothing to check, and for garbage."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from dispatcher.compliance.checkov import CheckovOutputError, parse_checkov, resource_type

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "terragoat-aws"


@pytest.fixture(scope="module")
def terragoat() -> bytes:
    path = CORPUS / "checkov-output.json"
    if not path.is_file():
        pytest.skip(f"SKIPPED LOUDLY: the TerraGoat Checkov corpus is absent ({path})")
    return path.read_bytes()


@pytest.fixture(scope="module")
def facts() -> dict:
    return json.loads((CORPUS / "checkov-facts.json").read_text())[0]["reports"]


def test_terragoat_findings_match_the_corpus_facts(terragoat: bytes, facts: dict) -> None:
    result = parse_checkov(terragoat, scope="7")
    by_type = Counter(f["check_type"] for f in result.findings)
    assert by_type == {"terraform": 215, "secrets": 4}
    assert result.version == "3.3.30"
    assert result.resource_count == 64 + 4
    terraform = [f for f in result.findings if f["check_type"] == "terraform"]
    assert Counter(f["check_id"] for f in terraform) == facts["terraform"]["failed_by_check_id"]
    resources = {(f["file_path"], f["address"]) for f in terraform}
    assert len(resources) == facts["terraform"]["distinct_failed_resources"]
    assert len({f["fingerprint"] for f in result.findings}) == 219, "one identity per failed check"


def test_a_finding_carries_what_the_team_reads(terragoat: bytes) -> None:
    result = parse_checkov(terragoat, scope="7", extra={"pipeline_id": 7})
    rds = next(f for f in result.findings
               if f["check_id"] == "CKV_AWS_16" and f["address"] == "aws_db_instance.default")
    assert rds["kind"] == "compliance" and rds["scanner"] == "checkov"
    assert rds["type"] == "aws_db_instance" and rds["file_path"] == "/db-app.tf"
    assert rds["check_name"] == "Ensure all data stored in the RDS is securely encrypted at rest"
    assert rds["line_range"] == [1, 42] and rds["evaluated_keys"] == ["storage_encrypted"]
    assert rds["severity"] is None and rds["guideline"] is None, "offline Checkov gives neither"
    assert rds["pipeline_id"] == 7
    secret = next(f for f in result.findings if f["check_type"] == "secrets")
    assert secret["type"] is None and "AKIA" not in json.dumps(secret), "never the secret itself"


def test_passed_failed_and_skipped_are_counted_per_check(terragoat: bytes) -> None:
    result = parse_checkov(terragoat)
    assert result.checks["CKV2_AWS_8"]["failed"] == 9
    assert sum(c["failed"] for c in result.checks.values()) == 219
    # this corpus was produced with --quiet: passes are in the summaries only, not per check
    assert result.reports["terraform"]["passed"] == 115


def test_the_fingerprint_ignores_lines_and_names_the_scope(terragoat: bytes) -> None:
    doc = json.loads(terragoat)
    moved = json.loads(terragoat)
    for report in moved:
        for check in report["results"]["failed_checks"]:
            check["file_line_range"] = [check["file_line_range"][0] + 40, check["file_line_range"][1] + 40]
            check["code_block"] = []
    before = {f["fingerprint"] for f in parse_checkov(json.dumps(doc), scope="1").findings}
    after = {f["fingerprint"] for f in parse_checkov(json.dumps(moved), scope="1").findings}
    other_pipeline = {f["fingerprint"] for f in parse_checkov(json.dumps(doc), scope="2").findings}
    assert before == after, "moving code inside a file keeps every finding"
    for report in moved:
        for check in report["results"]["failed_checks"]:
            check["file_path"] = "/moved" + check["file_path"]
    elsewhere = parse_checkov(json.dumps(moved), scope="1").findings
    assert {f["fingerprint"] for f in elsewhere if f["check_type"] == "secrets"}.isdisjoint(before)
    assert {f["fingerprint"] for f in elsewhere if f["check_type"] == "terraform"}.isdisjoint(before), \
        "another module directory holds other resources"
    assert not before & other_pipeline, "the same file in another pipeline is another finding"


def test_a_single_report_object_is_read_like_a_list(terragoat: bytes) -> None:
    terraform = next(r for r in json.loads(terragoat) if r["check_type"] == "terraform")
    result = parse_checkov(json.dumps(terraform))
    assert len(result.findings) == 215 and list(result.reports) == ["terraform"]


def test_unparsable_files_are_listed(terragoat: bytes) -> None:
    reports = json.loads(terragoat)
    reports[1]["summary"]["parsing_errors"] = 1
    reports[1]["results"]["parsing_errors"] = ["/src/terragoat-aws/broken.tf"]
    result = parse_checkov(json.dumps(reports))
    assert result.parsing_errors == 1 and result.unparsed == ["/src/terragoat-aws/broken.tf"]
    assert parse_checkov(terragoat).unparsed == []


def test_nothing_to_check_is_an_empty_result() -> None:
    # what Checkov 3.3.30 prints for a directory without IaC files
    empty = '{"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0, ' \
            '"checkov_version": "3.3.30"}'
    for output in (empty, "[]"):
        result = parse_checkov(output)
        assert result.findings == [] and result.resource_count == 0


@pytest.mark.parametrize(("output", "message"), [
    (b"Traceback (most recent call last):\n  File x", "not JSON (JSONDecodeError); it begins: Traceback"),
    (b"", "not JSON (JSONDecodeError); it begins: (empty output)"),
    (b"[1]", "report 0 is a int, not an object"),
    (b'[{"check_type": "terraform"}]', "report 0 has no summary object"),
    (b'{"check_type": "terraform", "summary": {}, "results": {"failed_checks": [{"x": 1}]}}',
     "an entry of failed_checks has no check_id"),
])
def test_malformed_output_is_refused(output: bytes, message: str) -> None:
    with pytest.raises(CheckovOutputError) as caught:
        parse_checkov(output)
    assert message in str(caught.value)


@pytest.mark.parametrize(("address", "check_type", "expected"), [
    ("aws_s3_bucket.data", "terraform", "aws_s3_bucket"),
    ("module.net.aws_vpc.main", "terraform", "aws_vpc"),
    ("module.net.aws_subnet.private[0]", "terraform", "aws_subnet"),
    ("aws.plain_text_access_keys_provider", "terraform", None),
    ("fc3f784491eba6121c3bfcc1652a2c57d27b16cb", "secrets", None),
])
def test_resource_type(address: str, check_type: str, expected: str | None) -> None:
    assert resource_type(address, check_type) == expected
