"""Framework requirements and mappings loaded from Prowler's own files and Checkov's own references
(the compliance-mapping corpus, read in place), and the posture views over a recorded scan."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from dispatcher.compliance.mappings import MappingFileError, read_any
from tests.support.compliance_support import CORPORA, ROOT, make_integration
from tests.support.drift_support import claim

MAPPINGS = CORPORA / "compliance-mapping"
PROWLER = MAPPINGS / "prowler-5.46.0"
CHECKOV_REFS = MAPPINGS / "checkov-3.3.30-source-framework-refs.json"


@pytest.fixture(scope="module")
def corpus() -> Path:
    if not MAPPINGS.is_dir():
        pytest.skip(f"SKIPPED LOUDLY: the compliance-mapping corpus is absent ({MAPPINGS})")
    return MAPPINGS


def load(db_url: str, *files: Path) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "dispatcher", "frameworks", "load", "--database-url", db_url,
                           *map(str, files)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_prowler_and_checkov_files_load_with_their_counts(db_url: str, conn: psycopg.Connection,
                                                          corpus: Path) -> None:
    lines = load(db_url, PROWLER / "cis_3.0_aws.trimmed.json", PROWLER / "soc2_aws.trimmed.json",
                 PROWLER / "iso27001_2022_aws.trimmed.json", CHECKOV_REFS)
    # the counts of prowler-5.46.0/facts.json
    assert lines[0] == "prowler:cis_3.0_aws: CIS 3.0 (aws): 62 requirements, 73 check mappings"
    assert lines[1] == "prowler:soc2_aws: SOC2  (aws): 27 requirements, 251 check mappings"
    assert lines[2] == "prowler:iso27001_2022_aws: ISO27001 2022 (aws): 92 requirements, 627 check mappings"
    assert lines[3].startswith("checkov:3.3.30:nist_800_53_r5: NIST80053 rev5 (aws): ")
    row = conn.execute("SELECT r.title, r.section, r.assessment, array_agg(m.check_id)"
                       " FROM nightshift.compliance_requirements AS r"
                       " JOIN nightshift.compliance_check_mappings AS m ON m.requirement_id = r.id"
                       " WHERE r.source_name = 'prowler:cis_3.0_aws' AND r.requirement = '1.10'"
                       " GROUP BY r.id").fetchone()
    assert row == ("Ensure multi-factor authentication (MFA) is enabled for all IAM users that have a "
                   "console password", "1 Identity and Access Management", "automated",
                   ["iam_user_mfa_enabled_console_access"])
    checkov = conn.execute("SELECT m.source, m.judgement FROM nightshift.compliance_check_mappings AS m"
                           " JOIN nightshift.compliance_requirements AS r ON r.id = m.requirement_id"
                           " WHERE m.check_id = 'CKV_AWS_301' AND r.requirement = 'AC-3'").fetchone()
    assert checkov == ("checkov 3.3.30 source: "
                       "checkov/terraform/checks/resource/aws/LambdaFunctionIsNotPublic.py", False)
    unmapped = conn.execute("SELECT count(*) FROM nightshift.compliance_check_mappings"
                            " WHERE scanner = 'checkov' AND check_id = 'CKV_AWS_24'").fetchone()
    assert unmapped == (0,), "a Checkov check without a cited source stays unmapped"
    again = load(db_url, PROWLER / "cis_3.0_aws.trimmed.json")[0]
    assert again.endswith("62 requirements, 73 check mappings"), "loading again replaces, never duplicates"


def test_a_file_that_is_no_framework_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"something": 1}')
    with pytest.raises(MappingFileError, match="neither a Prowler compliance file nor a Checkov"):
        read_any(bad)
    done = subprocess.run([sys.executable, "-m", "dispatcher", "frameworks", "load", str(bad)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "neither a Prowler" in done.stderr


def test_posture_counts_passes_failures_and_manual_requirements(db_url: str, conn: psycopg.Connection,
                                                                corpus: Path, tmp_path: Path) -> None:
    load(db_url, CHECKOV_REFS, PROWLER / "cis_3.0_aws.trimmed.json")
    subject = make_integration(conn, tmp_path, frameworks=("nist-800-53", "CIS"))
    # a recorded scan: CKV_AWS_301 (NIST AC-3, AC-6, ...) fails on one function, CKV_AWS_305 passes
    task = claim(conn, subject, kind="compliance-scan")
    finding = {"kind": "compliance", "fingerprint": "f1", "check_id": "CKV_AWS_301", "severity": None,
               "address": "aws_lambda_function.api", "scanner": "checkov"}
    conn.execute("SELECT nightshift.record_scan(%s, %s, 'FAILED_CHECKS', %s, %s, '{}', NULL, now())",
                 (task.id, task.attempt,
                  Jsonb({"check_results": {"checkov": {
                      "CKV_AWS_301": {"passed": 2, "failed": 1, "skipped": 0},
                      "CKV_AWS_305": {"passed": 1, "failed": 0, "skipped": 0}}}}),
                  Jsonb([finding])))
    rows = dict(conn.execute(
        "SELECT requirement, concat_ws(',', passed, failed, manual, status)"
        " FROM nightshift.compliance_posture"
        " WHERE subject = %s AND framework = 'NIST80053' AND requirement IN ('AC-3', 'SC-7(16)')",
        (subject,)).fetchall())
    assert rows["AC-3"] == "2,1,0,FAIL"
    assert rows["SC-7(16)"] == "3,1,0,FAIL", "CKV_AWS_301 and CKV_AWS_305 both map to SC-7(16)"
    cis = conn.execute("SELECT status, count(*) FROM nightshift.compliance_posture"
                       " WHERE subject = %s AND framework = 'CIS' GROUP BY 1 ORDER BY 1",
                       (subject,)).fetchall()
    # CIS maps Prowler checks only: a Checkov-only scan evaluates none of them
    assert dict(cis) == {"MANUAL": dict(cis)["MANUAL"], "NOT_EVALUATED": 62 - dict(cis)["MANUAL"]}
    # the finding is accepted as a risk: it no longer fails the requirement
    conn.execute("UPDATE nightshift.findings SET status = 'SUPPRESSED' WHERE fingerprint = 'f1'")
    row = conn.execute("SELECT passed, failed, suppressed, status FROM nightshift.compliance_posture"
                       " WHERE subject = %s AND requirement = 'AC-3'", (subject,)).fetchone()
    assert row == (2, 0, 1, "PASS")
    score = conn.execute("SELECT requirements, passing, failing, score FROM nightshift.compliance_scores"
                         " WHERE subject = %s AND framework = 'NIST80053'", (subject,)).fetchone()
    assert score is not None and score[2] == 0 and score[1] >= 1 and score[3] == 100
