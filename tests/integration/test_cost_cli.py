"""Issue 15: `nightshift cost ingest` and `nightshift cost report`, as a user runs them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from dispatcher.cli import main
from tests.support.cost_support import SAMPLE_12, add_organization, corpus_file, line, write_export


def test_ingest_then_report(conn: psycopg.Connection, db_url: str, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    add_organization(conn, "acme")
    sample = corpus_file(SAMPLE_12)
    assert main(["cost", "ingest", str(sample), "--database-url", db_url]) == 2
    assert "is not a cost source of any organization; add it with --org NAME" in capsys.readouterr().err
    assert main(["cost", "ingest", str(sample), "--org", "acme", "--database-url", db_url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("loaded") and "1000 rows  FOCUS 1.2" in out
    assert main(["cost", "ingest", str(sample), "--database-url", db_url]) == 0  # now a known source
    assert capsys.readouterr().out.startswith("unchanged")

    assert main(["cost", "report", "--org", "acme", "--database-url", db_url]) == 0
    assert capsys.readouterr().out.strip() == "no open cost findings"
    # on demand: the analysis of the data's last 30 days, nothing recorded
    assert main(["cost", "report", "--org", "acme", "--now", "--database-url", db_url]) == 0
    out = capsys.readouterr().out
    assert "unused-commitment" in out and "total USD:" in out
    assert conn.execute("SELECT count(*) FROM nightshift.findings").fetchone() == (0,)


def test_report_of_recorded_findings_totals_each_currency(conn: psycopg.Connection, db_url: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    org = add_organization(conn, "acme")
    for resource, saving, currency in (("vol-1", "10.50", "USD"), ("vol-2", "4.25", "USD"),
                                       ("ip-9", "3.00", "EUR")):
        conn.execute(
            "INSERT INTO nightshift.findings"
            " (kind, subject, fingerprint, provider_id, check_id, severity, details)"
            " VALUES ('cost', %s, %s, %s, 'idle-resource', 'low', jsonb_build_object("
            "'estimated_monthly_saving', %s::text, 'currency', %s::text))",
            (f"organization/{org}", resource, resource, saving, currency))
    assert main(["cost", "report", "--org", "acme", "--database-url", db_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["SEVERITY", "RECOMMENDATION", "RESOURCE", "SAVING/MONTH", "CURRENCY"]
    assert [ln.split()[2] for ln in lines[1:4]] == ["ip-9", "vol-1", "vol-2"]
    assert lines[-2:] == ["total EUR: 3.00 per month from 1 finding",
                          "total USD: 14.75 per month from 2 findings"]
    assert sum(Decimal(ln.split()[3]) for ln in lines[1:4]) == Decimal("17.75")
    assert main(["cost", "report", "--org", "nobody", "--database-url", db_url]) == 3  # not found
    assert "no organization named 'nobody'" in capsys.readouterr().err


def test_a_bad_file_is_one_line_on_stderr(conn: psycopg.Connection, db_url: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    add_organization(conn, "acme")
    rows = [line("2026-05-01", "abc")]
    write_export(tmp_path / "bad.csv", rows)
    assert main(["cost", "ingest", str(tmp_path), "--org", "acme", "--database-url", db_url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.csv: column BilledCost: 'abc' is not a valid numeric" in err
