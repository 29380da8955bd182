"""The compliance-scan agent: real Checkov through the real dispatcher on the project's own vulnerable
Terraform (examples/compliance), and every way a scan can fail to look.

Checkov is installed once into .nightshift/scanners (tests/support/compliance_support.ensure_checkov);
the failure cases use a stand-in executable, so they take milliseconds and can crash on purpose.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dispatcher.compliance import scanners
from tests.support.compliance_support import (
    CORPORA,
    FIXTURE,
    DispatcherProcess,
    ensure_checkov,
    fake_checkov,
    make_integration,
    open_checks,
    scan_compliance,
)

OPEN_TO_THE_WORLD = {("CKV_AWS_24", "aws_security_group.admin"), ("CKV_AWS_25", "aws_security_group.admin")}


@pytest.fixture(scope="module")
def checkov() -> Path:
    return ensure_checkov()


def vulnerable_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(FIXTURE / "main.tf", repo / "main.tf")
    return repo


def fix_security_group(repo: Path) -> None:
    text = (repo / "main.tf").read_text()
    start = text.index('resource "aws_security_group" "admin"')
    (repo / "main.tf").write_text(text[:start])
    shutil.copy(FIXTURE / "fixed_security_group.tf.txt", repo / "security_group.tf")


@pytest.fixture
def dispatcher(db_url: str, tmp_path: Path, checkov: Path) -> Iterator[DispatcherProcess]:
    daemon = DispatcherProcess(db_url, tmp_path / "dispatcher.log")
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.mark.slow
def test_checkov_through_the_dispatcher_finds_reuses_and_resolves(
    conn: psycopg.Connection, tmp_path: Path, dispatcher: DispatcherProcess,
) -> None:
    repo = vulnerable_repo(tmp_path)
    subject = make_integration(conn, repo, auto_remediate=True)

    first = dispatcher.scan(conn, subject)
    assert first["status"] == "FAILED_CHECKS", first["error"]
    assert OPEN_TO_THE_WORLD <= open_checks(conn, subject)
    assert ("CKV_AWS_18", "aws_s3_bucket.reports") in open_checks(conn, subject), "bucket without access logs"
    summary = first["summary"]
    assert summary["checkov_version"] == "3.3.30" and summary["reused"] == 0
    assert summary["failed"] == len(open_checks(conn, subject)) and summary["passed"] > 0
    assert summary["check_results"]["checkov"]["CKV_AWS_24"] == {"passed": 0, "failed": 1, "skipped": 0}
    assert summary["remediation"] == "requested", "auto-remediation on: recorded, nothing enqueued"
    others = conn.execute("SELECT count(*) FROM nightshift.tasks WHERE kind <> 'compliance-scan'").fetchone()
    assert others == (0,)
    details = conn.execute("SELECT details FROM nightshift.findings"
                           " WHERE subject = %s AND check_id = 'CKV_AWS_24'",
                           (subject,)).fetchone()
    assert details is not None
    assert details[0]["file_path"] == "/main.tf" and details[0]["scanner"] == "checkov"

    # nothing changed: Checkov does not run, the open findings are reported again and stay open
    second = dispatcher.scan(conn, subject)
    assert second["status"] == "FAILED_CHECKS" and second["summary"]["reused"] == 1
    assert [s["step"] for s in second["artifacts"]["steps"]] == ["checkov-version"], "Checkov not run"
    assert second["summary"]["findings"]["resolved"] == 0 and second["summary"]["findings"]["new"] == 0
    assert second["summary"]["failed"] == first["summary"]["failed"]

    # the security group is fixed in the code: the next scan runs Checkov again and resolves its findings
    fix_security_group(repo)
    third = dispatcher.scan(conn, subject)
    assert third["summary"]["reused"] == 0 and third["status"] == "FAILED_CHECKS", "the bucket still fails"
    assert [s["step"] for s in third["artifacts"]["steps"]] == ["checkov network"], "--version is cached"
    assert not OPEN_TO_THE_WORLD & open_checks(conn, subject)
    resolved = conn.execute("SELECT count(*) FROM nightshift.findings"
                            " WHERE subject = %s AND status = 'RESOLVED'"
                            " AND check_id IN ('CKV_AWS_24', 'CKV_AWS_25')", (subject,)).fetchone()
    assert resolved == (2,)
    assert third["summary"]["findings"]["resolved"] == 2
    moved = conn.execute("SELECT status, occurrences, details ->> 'file_path' FROM nightshift.findings"
                         " WHERE subject = %s AND check_id = 'CKV2_AWS_5'", (subject,)).fetchall()
    assert moved == [("OPEN", 3, "/security_group.tf")], "moved to another file of the module: same finding"
    outbox = dict(conn.execute("SELECT scan_id, count(*) FROM nightshift.notifications"
                               " GROUP BY 1").fetchall())
    assert outbox == {first["id"]: 1, third["id"]: 1}, "one row per transition, none for the unchanged scan"
    payload = conn.execute("SELECT payload FROM nightshift.notifications WHERE scan_id = %s",
                           (third["id"],)).fetchone()
    assert payload is not None and payload[0]["counts"]["resolved"] == 2


def test_a_tree_without_iac_files_is_an_error(
    conn: psycopg.Connection, tmp_path: Path, checkov: Path,
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("no terraform here\n")
    scan = scan_compliance(conn, make_integration(conn, repo))
    assert scan["status"] == "ERROR"
    assert scan["error"] == "pipeline network: Checkov found nothing to check in '.' (1 files)"


def test_a_file_checkov_cannot_parse_is_an_error(
    conn: psycopg.Connection, tmp_path: Path, checkov: Path,
) -> None:
    repo = vulnerable_repo(tmp_path)
    (repo / "broken.tf").write_text('resource "aws_s3_bucket" "broken" {\n  bucket =\n')
    scan = scan_compliance(conn, make_integration(conn, repo))
    assert scan["status"] == "ERROR"
    assert scan["error"] == "pipeline network: Checkov could not parse 1 file(s): /broken.tf"


@pytest.fixture
def scanned(conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """An integration with open findings from a successful scan (a stand-in Checkov printing the corpus)."""
    corpus = CORPORA / "terragoat-aws" / "checkov-output.json"
    if not corpus.is_file():
        pytest.skip(f"SKIPPED LOUDLY: the TerraGoat Checkov corpus is absent ({corpus})")
    script = fake_checkov(tmp_path / "bin", f"cat {corpus}\n")
    monkeypatch.setenv("NIGHTSHIFT_CHECKOV", str(script))
    repo = vulnerable_repo(tmp_path)
    subject = make_integration(conn, repo)
    scan = scan_compliance(conn, subject)
    assert scan["status"] == "FAILED_CHECKS" and scan["summary"]["failed"] == 219
    # a changed tree, so that the next scan runs Checkov instead of reusing this one
    with (repo / "main.tf").open("a") as file:
        file.write("# changed\n")
    return subject, script


def assert_error_resolves_nothing(conn: psycopg.Connection, subject: str, error: str) -> None:
    scan = scan_compliance(conn, subject, timeout=8)
    assert scan["status"] == "ERROR"
    assert scan["error"].startswith(error), scan["error"]
    assert "\n" not in scan["error"], "one line"
    counts = conn.execute("SELECT status, count(*) FROM nightshift.findings WHERE subject = %s GROUP BY 1",
                          (subject,)).fetchall()
    assert counts == [("OPEN", 219)], "a scan that did not look resolves nothing"


@pytest.mark.parametrize(("body", "error"), [
    ('echo "Traceback (most recent call last):" >&2\necho "KeyError: boom" >&2\nexit 2\n',
     "pipeline network: checkov failed with exit status 2: KeyError: boom"),
    ("echo 'this is not json'\n",
     "pipeline network: Checkov's output is unusable: not JSON (JSONDecodeError); "
     "it begins: this is not json"),
    ("exec sleep 60\n", "pipeline network: checkov was killed at the deadline after"),
])
def test_a_crashing_garbled_or_hanging_checkov_is_an_error(
    conn: psycopg.Connection, scanned: tuple[str, Path], body: str, error: str,
) -> None:
    subject, script = scanned
    fake_checkov(script.parent, body)
    assert_error_resolves_nothing(conn, subject, error)


def test_a_missing_checkov_is_an_error(
    conn: psycopg.Connection, scanned: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    subject, _ = scanned
    monkeypatch.setenv("NIGHTSHIFT_CHECKOV", str(tmp_path / "nowhere" / "checkov"))
    assert_error_resolves_nothing(conn, subject, f"checkov at {tmp_path}/nowhere/checkov (from env) is not "
                                  "an executable file")
    monkeypatch.delenv("NIGHTSHIFT_CHECKOV")
    monkeypatch.setenv("NIGHTSHIFT_SCANNERS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert_error_resolves_nothing(conn, subject, "checkov is not installed: run `nightshift scanners install "
                                  "checkov`")


def test_unknown_frameworks_and_empty_trees_are_errors(
    conn: psycopg.Connection, scanned: tuple[str, Path], tmp_path: Path,
) -> None:
    subject, _ = scanned
    integration_id = int(subject.split("/")[1])
    conn.execute("UPDATE nightshift.cloud_integrations SET frameworks = '{CIS,HIPPA}' WHERE id = %s",
                 (integration_id,))
    assert_error_resolves_nothing(conn, subject,
                                  "unknown framework 'HIPPA'; known: CIS, ISO27001, NIST80053, SOC2")
    conn.execute("UPDATE nightshift.cloud_integrations SET frameworks = '{cis,iso-27001}' WHERE id = %s",
                 (integration_id,))
    empty = tmp_path / "empty"
    empty.mkdir()
    conn.execute("UPDATE nightshift.repositories SET url = %s", (str(empty),))
    assert_error_resolves_nothing(conn, subject, "pipeline network: '.' holds no file")


def test_an_integration_without_pipelines_is_an_error(conn: psycopg.Connection) -> None:
    scan = scan_compliance(conn, make_integration(conn, None))
    assert scan["status"] == "ERROR" and scan["error"].startswith("nothing to scan: no pipeline is linked")


def test_explicit_links_choose_the_pipelines(conn: psycopg.Connection, tmp_path: Path) -> None:
    subject = make_integration(conn, tmp_path)
    integration_id = int(subject.split("/")[1])
    conn.execute("INSERT INTO nightshift.pipelines (repository_id, name, working_directory)"
                 " SELECT id, 'storage', 'storage' FROM nightshift.repositories")
    other = conn.execute("INSERT INTO nightshift.organizations (name) VALUES ('other')"
                         " RETURNING id").fetchone()
    assert other is not None
    conn.execute("WITH r AS (INSERT INTO nightshift.repositories (organization_id, name, url)"
                 " VALUES (%s, 'theirs', '/x') RETURNING id)"
                 " INSERT INTO nightshift.pipelines (repository_id, name) SELECT id, 'theirs' FROM r",
                 (other[0],))

    def names() -> list[str]:
        row = conn.execute("SELECT nightshift.compliance_pipelines(%s)", (integration_id,)).fetchone()
        assert row is not None
        return [item["pipeline"]["name"] for item in row[0]]

    assert names() == ["network", "storage"], "no links: every pipeline of the organization, no other"
    conn.execute("INSERT INTO nightshift.cloud_integration_pipelines (cloud_integration_id, pipeline_id)"
                 " SELECT %s, id FROM nightshift.pipelines WHERE name IN ('storage', 'theirs')",
                 (integration_id,))
    assert names() == ["storage"], "links narrow it; a pipeline of another organization is never scanned"
    targets = conn.execute("SELECT nightshift.task_targets(%s)", (subject,)).fetchone()
    assert targets is not None and json.dumps(targets[0]["pipelines"]).count('"storage"') >= 1


@pytest.mark.slow
def test_a_scan_that_cannot_look_does_not_stop_the_dispatcher(
    conn: psycopg.Connection, tmp_path: Path, dispatcher: DispatcherProcess,
) -> None:
    """An ERROR scan (an unknown framework) is recorded, and the same dispatcher goes on to the next task."""
    broken = make_integration(conn, None, frameworks=("CIS", "PCI-DSS-9"), name="broken")
    good = make_integration(conn, vulnerable_repo(tmp_path), name="good")
    conn.commit()
    failed = dispatcher.scan(conn, broken)
    assert failed["status"] == "ERROR" and failed["error"].startswith("unknown framework 'PCI-DSS-9'")
    scanned = dispatcher.scan(conn, good)
    assert scanned["status"] == "FAILED_CHECKS", scanned["error"]
    assert OPEN_TO_THE_WORLD <= open_checks(conn, good)
    assert dispatcher.process.poll() is None, "one dispatcher for both"


def test_checkov_keeps_its_parser_cache_in_the_scanners_private_directory(
    conn: psycopg.Connection, tmp_path: Path, checkov: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The HCL grammar tables outlive the scan (rebuilding them costs ~0.6 s a run), in a 0700 directory."""
    monkeypatch.setenv("NIGHTSHIFT_CHECKOV", str(checkov))
    monkeypatch.setenv(scanners.DIR_ENV, str(tmp_path / "scanners"))
    subject = make_integration(conn, vulnerable_repo(tmp_path))
    assert scan_compliance(conn, subject)["status"] == "FAILED_CHECKS"
    cache = tmp_path / "scanners" / "cache"
    assert cache.stat().st_mode & 0o777 == 0o700
    assert list(cache.glob(".lark_cache_*")), "Checkov's parser wrote its grammar cache there"


def test_checkov_runs_offline_with_the_private_cache_as_its_tmpdir(
    conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = tmp_path / "env.txt"
    monkeypatch.setenv("NIGHTSHIFT_CHECKOV", str(fake_checkov(tmp_path / "bin", f"env > {seen}\nexit 2\n")))
    monkeypatch.setenv(scanners.DIR_ENV, str(tmp_path / "scanners"))
    subject = make_integration(conn, vulnerable_repo(tmp_path))
    assert scan_compliance(conn, subject)["status"] == "ERROR"
    env = dict(line.split("=", 1) for line in seen.read_text().splitlines() if "=" in line)
    assert env["TMPDIR"] == str(tmp_path / "scanners" / "cache")
    assert env["CKV_SKIP_PACKAGE_UPDATE_CHECK"] == "true", "no request to pypi.org on every start"
    assert env["BC_SKIP_MAPPING"] == "TRUE"

    # a cache directory others may write to is not trusted (Checkov loads a pickle from it): the run's
    # private home is used instead
    (tmp_path / "scanners" / "cache").chmod(0o777)
    (tmp_path / "other").mkdir()
    subject = make_integration(conn, vulnerable_repo(tmp_path / "other"), name="other")
    assert scan_compliance(conn, subject)["status"] == "ERROR"
    env = dict(line.split("=", 1) for line in seen.read_text().splitlines() if "=" in line)
    assert env["TMPDIR"] == env["HOME"] and env["HOME"].endswith("/home")
