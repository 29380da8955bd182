"""Real drift, end to end: Terraform + the AWS provider against moto_server, scanned by the dispatcher.

The module in tests/fixtures/terraform/aws_drift is applied to a moto_server on loopback, with the
hashicorp/aws provider taken from the local filesystem mirror through a CLI configuration written by
the test (never the user's ~/.terraformrc). Then things change out of band with boto3 — a tag edit, an
added security-group rule, a deleted bucket, a rotated secret — and a real `nightshift dispatcher run`
subprocess claims the drift-scan tasks, runs the drift-scan agent and records the scans. Nothing here
touches the network beyond 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from dispatcher.demo import offline_aws
from dispatcher.demo.offline_aws import ENV_ALLOWLIST, missing_prerequisite, moto_server, terraform_env
from tests.support import blockkit
from tests.support.drift_support import ScanningDispatcher, findings_by_address, make_pipeline
from tests.support.slack_server import SlackLike, slack_server

# terraform against moto takes about a minute on a quiet machine, several on a loaded one
pytestmark = [pytest.mark.terraform, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "tests" / "fixtures" / "terraform" / "aws_drift"
INITIAL_SECRET = "s3cr3t-Hunter2-initial"
ROTATED_SECRET = "0ut-0f-band-S3cret-rotated"
SCAN_TIMEOUT = 300.0


@dataclass(frozen=True)
class Aws:
    """A moto_server on loopback and the environment Terraform needs to manage it."""

    endpoint: str
    env: dict[str, str]

    def client(self, service: str) -> Any:
        return offline_aws.client(self.endpoint, service)

    def reset(self) -> None:
        offline_aws.reset_moto(self.endpoint)

    def terraform(self, cwd: Path, *args: str) -> None:
        offline_aws.terraform(cwd, self.env, *args)


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    if reason := missing_prerequisite():
        pytest.skip(f"SKIPPED LOUDLY: the real AWS drift tests need Terraform, the provider mirror and "
                    f"moto: {reason}")
    tmp = tmp_path_factory.mktemp("aws")
    with moto_server(tmp) as endpoint:
        yield Aws(endpoint=endpoint, env={**terraform_env(tmp, endpoint), "LANG": "C.UTF-8",
                                          "TF_VAR_db_password": INITIAL_SECRET})


class Dispatcher(ScanningDispatcher):
    """`nightshift dispatcher run --kinds drift-scan` with the pipeline's variables in its environment."""

    kind = "drift-scan"

    def __init__(self, db_url: str, env: dict[str, str], log: Path) -> None:
        super().__init__(db_url, log, env)

    def scan(self, conn: psycopg.Connection, subject: str, timeout: float = SCAN_TIMEOUT) -> dict[str, Any]:
        return super().scan(conn, subject, timeout)


@pytest.fixture
def dispatcher(db_url: str, aws: Aws, tmp_path: Path) -> Iterator[Dispatcher]:
    daemon = Dispatcher(db_url, aws.env, tmp_path / "dispatcher.log")
    try:
        yield daemon
    finally:
        daemon.stop()


def security_group_rule(aws: Aws) -> tuple[str, list[dict[str, Any]]]:
    ec2 = aws.client("ec2")
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["nightshift-web"]}])
    rule = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "IpRanges": [{"CidrIp": "203.0.113.7/32", "Description": "ssh from laptop"}]}]
    return groups["SecurityGroups"][0]["GroupId"], rule


def change_out_of_band(aws: Aws) -> None:
    aws.client("s3").put_bucket_tagging(Bucket="nightshift-logs", Tagging={"TagSet": [
        {"Key": "env", "Value": "staging"}, {"Key": "owner", "Value": "platform"},
        {"Key": "hotfix", "Value": "manual"}]})
    group_id, rule = security_group_rule(aws)
    aws.client("ec2").authorize_security_group_ingress(GroupId=group_id, IpPermissions=rule)
    aws.client("s3").delete_bucket(Bucket="nightshift-archive")
    aws.client("ssm").put_parameter(Name="/nightshift/db_password", Value=ROTATED_SECRET,
                                    Type="SecureString", Overwrite=True)


def revert_out_of_band(aws: Aws) -> None:
    aws.client("s3").put_bucket_tagging(Bucket="nightshift-logs", Tagging={"TagSet": [
        {"Key": "env", "Value": "prod"}, {"Key": "owner", "Value": "platform"}]})
    group_id, rule = security_group_rule(aws)
    aws.client("ec2").revoke_security_group_ingress(GroupId=group_id, IpPermissions=rule)
    aws.client("s3").create_bucket(Bucket="nightshift-archive")
    aws.client("ssm").put_parameter(Name="/nightshift/db_password", Value=INITIAL_SECRET,
                                    Type="SecureString", Overwrite=True)


def attributes(finding: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {a["path"]: (a["before"], a["after"]) for a in finding["details"]["attributes"]}


def everything_stored(conn: psycopg.Connection) -> str:
    tables = ("scans", "findings", "notifications", "tasks", "remediations")
    return "\n".join(str(row[0]) for table in tables for row in conn.execute(
        f"SELECT row_to_json(t)::text FROM nightshift.{table} AS t").fetchall())


def slack_messages(slack: SlackLike, count: int, dispatcher: Dispatcher) -> list[dict[str, Any]]:
    """The Slack bodies received, once there are `count` (the dispatcher sends the outbox)."""
    deadline = time.monotonic() + 60
    while len(slack.received()) < count and time.monotonic() < deadline:
        assert dispatcher.process.poll() is None, f"the dispatcher exited: {dispatcher.tail()}"
        time.sleep(0.1)
    time.sleep(0.5)  # a second message (there must be none) would have left by now
    return [r.json() for r in slack.received()]


def message_text(body: dict[str, Any]) -> str:
    return "\n".join(str(b.get("text", {}).get("text", "")) for b in body["blocks"])


def test_real_drift_is_found_tracked_and_resolved_through_the_dispatcher(
    conn: psycopg.Connection, aws: Aws, dispatcher: Dispatcher, tmp_path: Path,
) -> None:
    aws.reset()
    # the dispatcher delivers the outbox too: its messages go to a Slack-like receiver on loopback,
    # the webhook URL read from a file by the sender (the dispatcher runs already; a file reference
    # needs nothing in its environment)
    slack = ExitStack()
    receiver = slack.enter_context(slack_server())
    hook = tmp_path / "slack-hook"
    hook.write_text(receiver.url("/ok/T0001/B0002/sEcReT") + "\n")
    conn.execute("INSERT INTO nightshift.notification_channels (name, kind, settings, min_interval)"
                 " VALUES ('drift-slack', 'slack', %s, '0')", (Jsonb({"webhook_url": f"file:{hook}"}),))
    conn.execute("UPDATE nightshift.settings SET value = 'drift-slack'"
                 " WHERE key = 'notifications.default_channel'")
    with slack:
        _drift_found_tracked_and_resolved(conn, aws, dispatcher, tmp_path, receiver)


def _drift_found_tracked_and_resolved(conn: psycopg.Connection, aws: Aws, dispatcher: Dispatcher,
                                      tmp_path: Path, slack: SlackLike) -> None:
    repo = tmp_path / "infra"
    shutil.copytree(MODULE, repo)
    aws.terraform(repo, "init")
    aws.terraform(repo, "apply", "-auto-approve")
    subject = make_pipeline(conn, repo, env_allowlist=ENV_ALLOWLIST)

    # 1. nothing changed: a clean scan, no findings
    clean = dispatcher.scan(conn, subject)
    assert (clean["status"], clean["error"]) == ("CLEAN", None)
    assert clean["summary"]["plan_exit_code"] == 0 and findings_by_address(conn, subject) == {}

    # 2. four changes out of band
    change_out_of_band(aws)
    drifted = dispatcher.scan(conn, subject)
    assert drifted["status"] == "DRIFTED", drifted["error"]
    found = findings_by_address(conn, subject)
    assert {(kind, address): f["change_type"] for (kind, address), f in found.items()} == {
        ("drift", "aws_s3_bucket.logs"): "update",
        ("drift", "aws_security_group.web"): "update",
        ("drift", "aws_s3_bucket.archive"): "delete",
        ("drift", "aws_ssm_parameter.db_password"): "update",
    }
    assert {f["status"] for f in found.values()} == {"OPEN"}
    logs = attributes(found[("drift", "aws_s3_bucket.logs")])
    assert logs["tags.env"] == ("prod", "staging") and logs["tags.hotfix"] == (None, "manual")
    web = attributes(found[("drift", "aws_security_group.web")])
    assert (None, "203.0.113.7/32") in web.values() and (None, 22) in web.values()
    assert found[("drift", "aws_security_group.web")]["provider_id"].startswith("sg-")
    assert found[("drift", "aws_s3_bucket.archive")]["severity"] == "high"
    assert attributes(found[("drift", "aws_ssm_parameter.db_password")])["value"] == (
        "(sensitive)", "(sensitive)")
    stored = everything_stored(conn)
    assert INITIAL_SECRET not in stored and ROTATED_SECRET not in stored, "a secret reached the database"
    [note] = conn.execute("SELECT template, payload FROM nightshift.notifications").fetchall()
    assert note[0] == "drift-changed" and note[1]["counts"]["new"] == 4
    # exactly one Slack message, within Block Kit's limits, naming every changed resource, and no
    # value of the SecureString parameter (before or after its rotation)
    [drifted_message] = slack_messages(slack, 1, dispatcher)
    assert blockkit.problems(drifted_message) == []
    assert drifted_message["blocks"][0]["text"]["text"].startswith("Drift: 4 new on ")
    for address in ("aws_s3_bucket.logs", "aws_security_group.web", "aws_s3_bucket.archive",
                    "aws_ssm_parameter.db_password"):
        assert address in message_text(drifted_message)
    sent = json.dumps(drifted_message)
    assert INITIAL_SECRET not in sent and ROTATED_SECRET not in sent, "a secret reached Slack"

    # 3. reverted out of band: all four resolve. The parameter was rewritten, so its computed `version`
    # still differs from the state, but Terraform plans no change: that is not drift (issue 19)
    revert_out_of_band(aws)
    reverted = dispatcher.scan(conn, subject)
    found = findings_by_address(conn, subject)
    assert {address: f["status"] for (_, address), f in found.items()} == {
        "aws_s3_bucket.logs": "RESOLVED", "aws_security_group.web": "RESOLVED",
        "aws_s3_bucket.archive": "RESOLVED", "aws_ssm_parameter.db_password": "RESOLVED"}
    assert reverted["status"] == "CLEAN" and reverted["summary"]["plan_exit_code"] == 0
    [_, resolved_message] = slack_messages(slack, 2, dispatcher)
    assert blockkit.problems(resolved_message) == []
    assert resolved_message["blocks"][0]["text"]["text"].startswith("Drift: 4 resolved on ")

    # 4. the team accepts the new version into the state: still clean, nothing to announce
    aws.terraform(repo, "apply", "-refresh-only", "-auto-approve")
    final = dispatcher.scan(conn, subject)
    assert final["status"] == "CLEAN"
    assert {f["status"] for f in findings_by_address(conn, subject).values()} == {"RESOLVED"}
    notes = conn.execute("SELECT payload FROM nightshift.notifications ORDER BY id").fetchall()
    assert [n[0]["counts"]["resolved"] for n in notes] == [0, 4], "one notification per change"
    assert len(slack_messages(slack, 2, dispatcher)) == 2, "a clean scan without changes is silent"
    statuses = conn.execute("SELECT status::text, response FROM nightshift.notifications").fetchall()
    assert statuses == [("sent", "ok"), ("sent", "ok")]
    assert conn.execute("SELECT count(*) FROM nightshift.open_findings").fetchone() == (0,)
