"""The drift part of `nightshift demo`: a real drift scan, end to end, with no cloud account.

1. start moto_server (a local AWS API) on loopback and apply examples/demo to it with Terraform, the
   hashicorp/aws provider coming from a local filesystem mirror (a CLI configuration written here:
   nothing is downloaded, the user's ~/.terraformrc is not read);
2. change two things out of band with boto3: a bucket tag, and an SSH rule on a security group;
3. enqueue a drift scan of the demo pipeline and run `nightshift dispatcher run` until it is recorded
   and its notification delivered (the dispatcher sends the outbox; the demo pipeline's channel is
   the `log` channel demo-log, so the message lands in the dispatcher's log);
4. print the scan, its findings and the message the dispatcher logged; revert the changes, scan
   again, and show the findings resolved (and the "resolved" message).

Needs terraform (or tofu) on PATH, the provider in the mirror ($NIGHTSHIFT_TF_PLUGIN_MIRROR, default
/opt/tf-plugins) and moto_server + boto3 (the dev extras). Without them it says what is missing and
the rest of the demo goes on.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dispatcher.db import connect
from dispatcher.demo import offline_aws
from dispatcher.demo.offline_aws import ENV_ALLOWLIST, moto_server, terraform, terraform_env

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "demo"
SCAN_TIMEOUT = 300.0
NOTIFY_TIMEOUT = 30.0  # the dispatcher sends the outbox within a moment of the scan's commit
SSH_RULE = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "IpRanges": [{"CidrIp": "203.0.113.7/32", "Description": "ssh from a laptop"}]}]
TAGS = {"env": "prod", "owner": "platform"}


def missing_prerequisite() -> str | None:
    if reason := offline_aws.missing_prerequisite():
        return reason
    try:
        import boto3  # noqa: F401
    except ImportError:
        return "no boto3 (pip install boto3)"
    if not EXAMPLE.is_dir():
        return f"no {EXAMPLE} (run the demo from a checkout)"
    return None


def run(url: str, workdir: Path) -> None:
    """The whole drift demo against the database at `url`; files under `workdir`."""
    if reason := missing_prerequisite():
        print(f"\ndrift scan demo skipped: {reason}")
        return
    print("\ndrift scan demo: Terraform + hashicorp/aws (local mirror) against moto_server on loopback")
    shutil.rmtree(workdir, ignore_errors=True)
    infra = workdir / "infra"
    shutil.copytree(EXAMPLE, infra)
    with moto_server(workdir) as endpoint:
        env = terraform_env(workdir, endpoint)
        started = time.monotonic()
        # the long steps say what they do before they start: the demo must not look hung
        print("  terraform init + apply to the local AWS (about 20-60 s)...", flush=True)
        terraform(infra, env, "init")
        terraform(infra, env, "apply", "-auto-approve")
        print(f"  applied {EXAMPLE.relative_to(ROOT)} (working copy {infra}) to {endpoint} "
              f"in {time.monotonic() - started:.0f}s")
        with connect(url, autocommit=True) as conn:
            subject = demo_pipeline(conn, infra)
            aws = Clients(endpoint)
            aws.change()
            print("  changed out of band with boto3: tag env=prod -> staging on the bucket, "
                  "tcp/22 from 203.0.113.7/32 added to the security group")
            log = workdir / "dispatcher.log"
            show(conn, scan(conn, url, subject, env, log), subject, log)
            aws.revert()
            print("  reverted both changes with boto3")
            show(conn, scan(conn, url, subject, env, log), subject, log)
    print("  the findings: nightshift findings list --target demo/infra/network; their history: "
          "nightshift db psql, then\n"
          "    SELECT target, resource_address, status, occurrences, reopened_count, resolved_at\n"
          "      FROM nightshift.findings_report;")


def demo_pipeline(conn: psycopg.Connection, infra: Path) -> str:
    """The demo's sample pipeline (see demo_cmd.SAMPLE), pointed at the working copy."""
    row = conn.execute(
        """
        UPDATE nightshift.pipelines AS p
           SET env_allowlist = %s
          FROM nightshift.repositories AS r, nightshift.organizations AS o
         WHERE r.id = p.repository_id AND o.id = r.organization_id
           AND o.name = 'demo' AND r.name = 'infra' AND p.name = 'network'
        RETURNING p.id, r.id
        """,
        (ENV_ALLOWLIST,),
    ).fetchone()
    assert row is not None, "the demo pipeline is registered first"
    conn.execute("UPDATE nightshift.repositories SET url = %s WHERE id = %s", (str(infra), row[1]))
    return f"pipeline/{row[0]}"


def scan(conn: psycopg.Connection, url: str, subject: str, env: dict[str, str], log: Path) -> dict[str, Any]:
    """Enqueue a drift scan, run the dispatcher until it is recorded, return the scans row."""
    row = conn.execute("SELECT nightshift.enqueue('drift-scan', %s)", (subject,)).fetchone()
    if row is None or row[0] is None:
        raise RuntimeError(f"a drift scan of {subject} is already queued or running")
    task_id = row[0]
    print(f"  drift scan of {subject}: task {task_id}, running `nightshift dispatcher run` until its "
          "scan is recorded (terraform plan, about 10-30 s)...", flush=True)
    started = time.monotonic()
    with log.open("ab") as out:
        daemon = subprocess.Popen(
            # the URL (with its password) goes through the environment: argv is visible to every
            # user of the machine in `ps`
            [sys.executable, "-m", "dispatcher", "dispatcher", "run",
             "--kinds", "drift-scan", "--poll-interval", "0.5", "--log-json"],
            env={**os.environ, **env, "NIGHTSHIFT_DATABASE_URL": url}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while time.monotonic() - started < SCAN_TIMEOUT:
            result = conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM nightshift.scans WHERE task_id = %s", (task_id,)).fetchone()
            if result is not None:
                seconds = time.monotonic() - started
                wait_for_notification(conn, result["id"], daemon)
                return {**result, "seconds": seconds}
            if daemon.poll() is not None:
                raise RuntimeError(f"the dispatcher exited; see {log}")
            time.sleep(0.25)
        raise RuntimeError(f"no scan of task {task_id} within {SCAN_TIMEOUT:.0f}s; see {log}")
    finally:
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=60)


def wait_for_notification(conn: psycopg.Connection, scan_id: int, daemon: subprocess.Popen[bytes]) -> None:
    """Until the scan's outbox row (if it wrote one) is no longer pending: the dispatcher delivered it."""
    deadline = time.monotonic() + NOTIFY_TIMEOUT
    while time.monotonic() < deadline and daemon.poll() is None:
        row = conn.execute("SELECT count(*) FILTER (WHERE status IN ('pending', 'sending'))"
                           "  FROM nightshift.notifications WHERE scan_id = %s", (scan_id,)).fetchone()
        if row is None or row[0] == 0:
            return
        time.sleep(0.2)


def logged_messages(log: Path, notification_id: int) -> list[str]:
    """The messages the log channel wrote into the dispatcher's log (JSON lines) for this row."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (isinstance(entry, dict) and entry.get("event") == "notify_log"
                and notification_id in (entry.get("notifications") or [])):
            # the message without the log line's own first line ("notification to demo-log:")
            found.append(str(entry.get("msg", "")).partition("\n")[2] or str(entry.get("msg", "")))
    return found


def show(conn: psycopg.Connection, scan: dict[str, Any], subject: str, log: Path) -> None:
    counts = scan["summary"].get("findings", {})
    changed = ", ".join(f"{k} {v}" for k, v in counts.items() if v and k != "seen") or "no change"
    print(f"  scan {scan['id']} (task {scan['task_id']}, by `nightshift dispatcher run`): "
          f"{scan['status']} in {scan['seconds']:.0f}s — findings: {changed}")
    if scan["error"]:
        print("    " + scan["error"].replace("\n", "\n    ")[:2000])
    # seen by this scan, or resolved by it (resolved_at is the now() of the scan's transaction)
    rows = conn.execute(
        "SELECT status, kind, resource_address, change_type, severity, details -> 'attributes'"
        "  FROM nightshift.findings"
        " WHERE subject = %(subject)s"
        "   AND (last_scan_id = %(scan)s OR (status = 'RESOLVED' AND resolved_at = %(finished)s))"
        " ORDER BY resource_address",
        {"subject": subject, "scan": scan["id"], "finished": scan["finished_at"]},
    ).fetchall()
    for status, kind, address, change, severity, attributes in rows:
        moved = ", ".join(f"{a['path']}: {_value(a['before'])} -> {_value(a['after'])}"
                          for a in (attributes or [])[:3])
        print(f"    {status:<9} {kind:<6} {address:<26} {change:<7} {severity:<7} {moved}")
    note = conn.execute("SELECT id, channel, template, status::text, last_error FROM nightshift.notifications"
                        " WHERE scan_id = %s", (scan["id"],)).fetchone()
    if note is None:
        return
    notification_id, channel, template, status, error = note
    print(f"  notification {notification_id} ({template}) to channel {channel!r}: {status}"
          + (f" ({error})" if error else ""))
    for message in logged_messages(log, notification_id):
        print("    " + message.replace("\n", "\n    "))


def _value(value: Any) -> str:
    return "null" if value is None else repr(value)


# --- boto3 ------------------------------------------------------------------------------------------


class Clients:
    """boto3 against moto: the out-of-band changes and their revert."""

    def __init__(self, endpoint: str) -> None:
        self.s3, self.ec2 = offline_aws.client(endpoint, "s3"), offline_aws.client(endpoint, "ec2")
        groups = self.ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": ["nightshift-demo-web"]}])["SecurityGroups"]
        self.group_id = groups[0]["GroupId"]

    def _tag(self, tags: dict[str, str]) -> None:
        self.s3.put_bucket_tagging(Bucket="nightshift-demo-logs", Tagging={
            "TagSet": [{"Key": key, "Value": value} for key, value in tags.items()]})

    def change(self) -> None:
        self._tag({**TAGS, "env": "staging"})
        self.ec2.authorize_security_group_ingress(GroupId=self.group_id, IpPermissions=SSH_RULE)

    def revert(self) -> None:
        self._tag(TAGS)
        self.ec2.revoke_security_group_ingress(GroupId=self.group_id, IpPermissions=SSH_RULE)
