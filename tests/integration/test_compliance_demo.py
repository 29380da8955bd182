"""The compliance step of `nightshift demo` (dispatcher/demo/compliance_demo.py): real Checkov through
the real dispatcher over examples/compliance, then an unchanged rescan; skipped, saying why, without it."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from dispatcher.cli.demo_cmd import SAMPLE
from dispatcher.compliance import scanners
from dispatcher.demo import compliance_demo
from tests.support.compliance_support import ensure_checkov


@pytest.mark.timeout(900)
def test_the_demo_scans_the_vulnerable_example_then_reuses_the_results(
    db_url: str, conn: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    ensure_checkov()
    conn.execute(SAMPLE, {"repo_url": "examples/demo"})
    conn.commit()
    compliance_demo.run(db_url, tmp_path)
    out = capsys.readouterr().out
    assert "FAILED_CHECKS" in out and "Checkov's results reused" in out, out
    scans = conn.execute("SELECT status::text, (summary ->> 'reused')::int FROM nightshift.scans"
                         " WHERE kind = 'compliance-scan' ORDER BY id").fetchall()
    assert scans == [("FAILED_CHECKS", 0), ("FAILED_CHECKS", 1)]
    open_checks = {row[0] for row in conn.execute(
        "SELECT check_id FROM nightshift.findings WHERE kind = 'compliance' AND status = 'OPEN'")}
    assert {"CKV_AWS_24", "CKV_AWS_25"} <= open_checks, "SSH and RDP open to the world"
    # linked to its own pipeline: the drift demo's Terraform (examples/demo) is not Checkov-scanned
    scanned = conn.execute("SELECT DISTINCT details ->> 'pipeline_id' FROM nightshift.findings"
                           " WHERE kind = 'compliance'").fetchall()
    names = conn.execute("SELECT name FROM nightshift.pipelines WHERE id = ANY(%s)",
                         ([int(row[0]) for row in scanned],)).fetchall()
    assert names == [("vulnerable",)]


def test_without_checkov_the_demo_says_so_and_goes_on(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("NIGHTSHIFT_CHECKOV", raising=False)
    monkeypatch.setenv(scanners.DIR_ENV, str(tmp_path / "no-scanners"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    compliance_demo.run(db_url, tmp_path)
    assert capsys.readouterr().out.strip() == (
        "compliance scan demo skipped: Checkov is not installed "
        "(`make scanners` or `nightshift scanners install checkov`)")
