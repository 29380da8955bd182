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


def test_the_page_of_many_organizations_is_an_overview_of_the_same_targets(
    conn: psycopg.Connection, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from dispatcher.report.build import DETAIL_LIMIT, OVERVIEW_SECTIONS, build_report

    history = make_history(conn)
    for n in range(DETAIL_LIMIT):  # more organizations than one page details
        conn.execute("INSERT INTO nightshift.organizations (name) VALUES (%s)", (f"quiet-{n}",))
    detail = build_report(conn)
    overview = build_report(conn, detail=None)
    assert not detail.overview and overview.overview
    assert [o["name"] for o in overview.organizations] == [o["name"] for o in detail.organizations]
    for full, brief in zip(detail.organizations, overview.organizations, strict=True):
        # the overview counts open findings in one pass: the same rows as target_status gives
        assert brief["targets"] == full["targets"], full["name"]
        assert brief["queue"] == full["queue"]
        assert brief["broke_since_yesterday"] == full["broke_since_yesterday"]
        for key in ("targets", "drifting", "overdue", "failing_scans"):
            assert brief["kpis"][key] == full["kpis"][key], (full["name"], key)
        assert brief["kpis"]["open_findings"] == sum(t["open_findings"] for t in full["targets"])
        # what it did not read is empty or unknown, never a made-up zero
        unread = ("open_summary", "trend", "mttr", "posture", "savings", "resources")
        assert all(brief[section] == [] for section in unread)
        assert brief["kpis"]["mttr_seconds"] is None and brief["kpis"]["critical_high"] is None
    assert set(OVERVIEW_SECTIONS) == {"targets", "queue"}
    acme = next(o for o in overview.organizations if o["id"] == history.acme)
    worst = {t["worst_severity"] for t in acme["targets"]}
    assert acme["kpis"]["open_findings"] == 3 and acme["kpis"]["worst_severity"] == "critical"
    assert worst == {"critical", "high", "medium", None}  # the worst of its targets
    # the CLI writes the overview page, one row per organization; one organization gets its full page
    page = tmp_path / "all.html"
    assert main(["report", "--database-url", db_url, "--html", str(page)]) == 0
    assert "an overview" in capsys.readouterr().err
    html = page.read_text()
    assert "<h2>Organizations</h2>" in html and f'id="org-{history.acme}"' in html
    assert "quiet-0" in html and "Every target" not in html
    assert main(["report", "--database-url", db_url, "--html", str(page), "--detail"]) == 0
    assert "Every target" in page.read_text() and "<h2>Organizations</h2>" not in page.read_text()
    assert main(["report", "--database-url", db_url, "--org", "acme", "--html", str(page)]) == 0
    assert "Every target" in page.read_text() and "<h2>Organizations</h2>" not in page.read_text()
