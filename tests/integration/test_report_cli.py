"""`nightshift report` as a user runs it: the terminal summary, --json, --organization, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from dispatcher.cli import main
from tests.support.report_support import INSTANCE, make_history


def test_the_terminal_summary_says_what_drifts_broke_and_waits(
    conn: psycopg.Connection, db_url: str, capsys: pytest.CaptureFixture[str],
) -> None:
    make_history(conn)
    assert main(["report", "--database-url", db_url]) == 0
    out = capsys.readouterr().out
    for section in ("Organizations", "Drifting or failing checks now", "Broke since yesterday",
                    "Worst offenders", "Queue health"):
        assert section in out
    assert "acme/infra-network/network" in out and "DRIFTED" in out
    assert "123 USD" in out  # acme's savings per month


def test_json_for_one_organization_holds_only_its_rows(
    conn: psycopg.Connection, db_url: str, capsys: pytest.CaptureFixture[str],
) -> None:
    history = make_history(conn)
    assert main(["report", "--database-url", db_url, "--organization", "acme", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [o["name"] for o in report["organizations"]] == ["acme"]
    acme = report["organizations"][0]
    assert acme["kpis"]["open_findings"] == 3 and acme["kpis"]["monthly_saving"] == {"USD": 123.4}
    assert {t["subject"] for t in acme["targets"]} >= {history.network, history.dns, history.edge}
    assert acme["resources"][0]["resource"] == INSTANCE
    network = next(t for t in acme["targets"] if t["subject"] == history.network)
    assert network["last_status"] == "DRIFTED" and "T" in network["last_scan_at"]  # ISO 8601
    assert network in acme["drifting_now"]
    # by id as well as by name; globex's report knows nothing of acme
    assert main(["report", "--database-url", db_url, "--org", str(history.globex), "--json"]) == 0
    globex = json.loads(capsys.readouterr().out)["organizations"][0]
    assert globex["name"] == "globex" and "acme" not in json.dumps(globex)


def test_bad_input_gives_one_clear_line(
    conn: psycopg.Connection, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # an empty database: nothing to report, not an error
    assert main(["report", "--database-url", db_url]) == 0
    assert "no organizations yet" in capsys.readouterr().out
    assert main(["report", "--database-url", db_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["organizations"] == []
    make_history(conn)
    assert main(["report", "--database-url", db_url, "--org", "initech"]) == 3
    assert "no organization 'initech'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--database-url", db_url, "--mttr-days", "45"])
    assert exit_.value.code == 2 and "invalid choice: 45" in capsys.readouterr().err
    assert main(["report", "--database-url", db_url, "--html", str(tmp_path / "no" / "such" / "r.html")]) == 2
    assert "is not a directory" in capsys.readouterr().err
