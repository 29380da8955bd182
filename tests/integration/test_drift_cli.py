"""`nightshift drift parse`: real recorded plans in, JSON lines out; clear one-line errors otherwise."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dispatcher.cli import main

PLANS = Path(__file__).resolve().parents[1] / "fixtures" / "plans"
SCHEMA = PLANS.parent / "schemas" / "aws.json"
FIELDS = {"kind", "address", "module", "type", "name", "provider_id", "change", "severity", "attributes",
          "fingerprint"}
OPTIONAL_FIELDS = {"consequences"}  # only on a drift finding that applying the code would undo elsewhere


def parse(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict], str]:
    code = main(["drift", "parse", *args])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


@pytest.mark.parametrize("plan", sorted(p.name for p in PLANS.glob("*.json")))
def test_every_recorded_plan_parses(capsys: pytest.CaptureFixture[str], plan: str) -> None:
    code, findings, err = parse(capsys, str(PLANS / plan))
    assert (code, err) == (0, "")
    for finding in findings:
        assert set(finding) - OPTIONAL_FIELDS == FIELDS
        assert finding["kind"] in ("drift", "pending-change") and len(finding["fingerprint"]) == 64
        assert all(set(a) == {"path", "before", "after"} for a in finding["attributes"])
    if plan == "clean.json":
        assert findings == []


def test_a_security_group_rule_added_out_of_band(capsys: pytest.CaptureFixture[str]) -> None:
    code, findings, _ = parse(capsys, str(PLANS / "security_group_ingress_added.json"), "--kind", "drift")
    assert code == 0
    [finding] = findings
    assert (finding["address"], finding["type"], finding["change"]) == (
        "aws_security_group.web", "aws_security_group", "update")
    paths = {a["path"]: a["after"] for a in finding["attributes"]}
    assert paths["ingress.1.cidr_blocks.0"] == "203.0.113.7/32" and paths["ingress.1.from_port"] == 22


def test_sensitive_values_never_reach_the_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, findings, _ = parse(capsys, str(PLANS / "ssm_secret_changed.json"))
    assert code == 0
    text = json.dumps(findings)
    assert "(sensitive)" in text
    assert "s3cr3t-Hunter2-initial" not in text and "0ut-0f-band-S3cret-rotated" not in text


def test_schema_and_evidence(capsys: pytest.CaptureFixture[str]) -> None:
    plan = str(PLANS / "estate_inline_rule_removed.json")
    code, lines, err = parse(capsys, "--schema", str(SCHEMA), "--evidence", plan)
    assert (code, err) == (0, "")
    [finding] = [line for line in lines if "evidence" not in line]
    assert {a["path"]: a["before"] for a in finding["attributes"]}["ingress.0.from_port"] == 443
    assert all(a["after"] is None for a in finding["attributes"])  # the removed rule, not shifted ones
    evidence = [line["evidence"] for line in lines if "evidence" in line]
    reasons = {(item["address"], item["reason"]) for item in evidence}
    assert ("aws_sqs_queue.jobs", "json-formatting") in reasons
    assert ("aws_s3_bucket.data", "not-managed-here") in reasons


def test_an_unreadable_schema_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text('{"format_version": "1.0"}')
    code = main(["drift", "parse", "--schema", str(schema), str(PLANS / "clean.json")])
    _, err = capsys.readouterr()
    assert code == 2 and "no provider_schemas" in err and len(err.strip().splitlines()) == 1


def test_standard_input(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    data = (PLANS / "bucket_deleted.json").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, findings, _ = parse(capsys, "-")
    assert code == 0
    seen = {(f["kind"], f["address"], f["change"]) for f in findings}
    assert ("drift", "aws_s3_bucket.archive", "delete") in seen


@pytest.mark.parametrize(("content", "message"), [
    (None, "truncated"),  # the first 3000 bytes of a real plan
    (b"", "empty"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"format_version": "1.2", "values": {}}', "state JSON, not a plan"),
    (b"PK\x03\x04binary", "binary plan file"),
])
def test_malformed_plans_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes | None, message: str,
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_bytes((PLANS / "clean.json").read_bytes()[:3000] if content is None else content)
    code, findings, err = parse(capsys, str(plan))
    assert (code, findings) == (2, [])
    assert err.startswith(f"nightshift: error: {plan}") and message in err
    assert err.count("\n") == 1


def test_a_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = parse(capsys, str(tmp_path / "nope.json"))
    assert code == 2 and "cannot read" in err and "No such file" in err


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text('{"format_version": "1.2", "resource_changes": [{"address": "a.b"}]}')
    done = subprocess.run([sys.executable, "-m", "dispatcher", "drift", "parse", str(plan)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"nightshift: error: {plan}: resource_changes[0] (a.b) has no change object\n"
