"""Prowler in the compliance-scan agent.

Two parts:
- a stand-in `prowler` (writes the recorded OCSF output of tests/fixtures/prowler, or fails): the agent's
  handling of its output, credentials and failures, in every `make test`;
- the real Prowler 5.46.0 against moto_server on loopback: a bucket without a TLS-only policy and a
  security group with SSH open to the world fail CIS AWS 3.0 requirements 2.1.1 and 5.2; boto3 fixes
  them and the next scan resolves the findings. Prowler is about 2.3 GB and a scan takes minutes on two
  cores, so this part runs with `make test-prowler` (which installs Prowler and sets
  NIGHTSHIFT_TEST_PROWLER=1), not in `make test`.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dispatcher.compliance import scanners
from dispatcher.compliance.prowler import parse_prowler
from dispatcher.demo.offline_aws import client, moto_server, moto_server_path
from tests.support.compliance_support import ROOT, make_integration, open_checks, scan_compliance

FIXTURE = ROOT / "tests" / "fixtures" / "prowler" / "moto_cis_3.0_aws.ocsf.json"
SSH = "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22"
TLS = "s3_bucket_secure_transport_policy"
CREDENTIALS = {"env": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL",
                       "AWS_DEFAULT_REGION"],
               "regions": ["us-east-1"]}


def fake_prowler(bin_dir: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in Prowler: `$out` is its --output-directory, `$@` its arguments."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "prowler"
    script.write_text('#!/bin/sh\nprev=""; for a in "$@"; do [ "$prev" = "--output-directory" ] && out="$a";'
                      ' prev="$a"; done\necho "$@" > "$out/argv"\n' + body)
    script.chmod(0o755)
    monkeypatch.setenv("NIGHTSHIFT_PROWLER", str(script))
    return script


def live_integration(conn: psycopg.Connection, credentials: object = CREDENTIALS, **kwargs: object) -> str:
    subject = make_integration(conn, None, **kwargs)  # type: ignore[arg-type]
    conn.execute("UPDATE nightshift.cloud_integrations SET credentials = %s WHERE id = %s",
                 (json.dumps(credentials), int(subject.split("/")[1])))
    return subject


def test_prowler_findings_are_recorded_with_their_requirements(
    conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_prowler(tmp_path / "bin", f'cp {FIXTURE} "$out/nightshift.ocsf.json"\n', monkeypatch)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-the-dispatcher-log")
    subject = live_integration(conn, frameworks=("CIS", "SOC2"))
    scan = scan_compliance(conn, subject)
    assert scan["status"] == "FAILED_CHECKS", scan["error"]
    assert open_checks(conn, subject) == {(SSH, "arn:aws:ec2:us-east-1:123456789012:security-group/"
                                                "sg-9b4480f1e4aea2473"),
                                          (TLS, "arn:aws:s3:::nightshift-reports")}
    prowler = scan["summary"]["prowler"]
    assert prowler["compliance"] == ["cis_3.0_aws", "soc2_aws"] and prowler["prowler_version"] == "5.46.0"
    assert (prowler["failed"], prowler["passed"], prowler["manual"]) == (2, 1, 1)
    assert scan["summary"]["check_results"]["prowler"][SSH] == {"passed": 1, "failed": 1, "manual": 0}
    argv = scan["artifacts"]["steps"][0]["argv"]
    assert argv[1:4] == ["aws", "--compliance", "cis_3.0_aws"] and "--region" in argv
    assert "not-for-the-dispatcher-log" not in json.dumps(scan, default=str)
    rows = conn.execute("SELECT check_id, details -> 'requirements', severity, provider_id"
                        " FROM nightshift.findings WHERE subject = %s ORDER BY check_id",
                        (subject,)).fetchall()
    # only the enabled frameworks' requirements are kept (the fixture also maps CIS-1.4, ISO27001-2022)
    assert rows[0][:3] == (SSH, {"CIS-3.0": ["5.2", "5.3"], "SOC2": ["cc_6_6", "cc_7_2"]}, "high")
    assert rows[1] == (TLS, {"CIS-3.0": ["2.1.1"]}, "medium", "arn:aws:s3:::nightshift-reports")


@pytest.mark.parametrize(("provider", "fixture", "failed", "requirements"), [
    ("azure", "azure_cis_6.0.ocsf.json",
     ("storage_secure_transfer_required_is_enabled",
      "/subscriptions/9c6b2a1e-3f4d-4e5a-8b7c-0d1e2f3a4b5c/resourceGroups/audit-rg/providers/"
      "Microsoft.Storage/storageAccounts/nsreports"),
     {"CIS-6.0": ["9.3.4"], "SOC2": ["cc_6_2", "cc_6_7"]}),
    ("gcp", "gcp_cis_5.0.ocsf.json", ("cloudsql_instance_public_access", "orders-db"),
     {"CIS-5.0": ["6.5", "6.7"], "SOC2": ["cc_6_2"]}),
])
def test_azure_and_gcp_findings_are_recorded_with_their_requirements(
    conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: str, fixture: str,
    failed: tuple[str, str], requirements: dict[str, list[str]],
) -> None:
    """Prowler's own OCSF output for an Azure and a GCP check (tests/fixtures/prowler/README.md), through
    the agent: the provider's CIS file is asked for, and the requirements of the enabled frameworks kept."""
    output = FIXTURE.parent / fixture
    fake_prowler(tmp_path / "bin", f'cp {output} "$out/nightshift.ocsf.json"\n', monkeypatch)
    key = tmp_path / "gcp-audit.json"
    key.write_text("{}")
    credentials = {"auth": "managed-identity"} if provider == "azure" else {"credentials_file": str(key)}
    subject = live_integration(conn, credentials, provider=provider, frameworks=("CIS", "SOC2"))
    scan = scan_compliance(conn, subject)
    assert scan["status"] == "FAILED_CHECKS", scan["error"]
    assert open_checks(conn, subject) == {failed}
    prowler = scan["summary"]["prowler"]
    assert prowler["compliance"] == [f"cis_{'6.0' if provider == 'azure' else '5.0'}_{provider}",
                                     f"soc2_{provider}"]
    assert (prowler["failed"], prowler["passed"], prowler["manual"]) == (1, 1, 0)
    row = conn.execute("SELECT details -> 'requirements', details ->> 'region', severity"
                       " FROM nightshift.findings WHERE subject = %s", (subject,)).fetchone()
    assert row == (requirements, "westeurope" if provider == "azure" else "europe-west1",
                   "high" if provider == "azure" else "critical")


@pytest.mark.parametrize(("credentials", "frameworks", "provider", "error"), [
    ({"env": ["AWS_PROFILE"], "key": "x"}, ("CIS",), "aws",
     "unknown key(s) in cloud_integrations.credentials: key; known for aws: env, regions, role_arn"),
    ({"env": "AWS_PROFILE"}, ("CIS",), "aws", "cloud_integrations.credentials.env must be a list of names"),
    (CREDENTIALS, ("NIST-800-53",), "aws",
     "none of the enabled frameworks (NIST80053) has a Prowler mapping for aws; "
     "enable one of: CIS, ISO27001"),
    ({"auth": "sp-env", "env": ["AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"]}, ("CIS",),
     "azure", "azure service principal login (auth sp-env) needs AZURE_CLIENT_ID, AZURE_TENANT_ID, "
              "AZURE_CLIENT_SECRET listed in credentials.env and set in the dispatcher's environment"),
    ({"credentials_file": "/nonexistent/gcp-audit.json"}, ("CIS",), "gcp",
     "gcp credentials_file /nonexistent/gcp-audit.json is not a readable file"),
    (CREDENTIALS, ("CIS",), "gcp",
     "unknown key(s) in cloud_integrations.credentials: regions; known for gcp"),
])
def test_credentials_that_cannot_work_are_an_error(
    conn: psycopg.Connection, credentials: object, frameworks: tuple[str, ...], provider: str, error: str,
) -> None:
    subject = live_integration(conn, credentials, frameworks=frameworks, provider=provider)
    scan = scan_compliance(conn, subject)
    assert scan["status"] == "ERROR" and scan["error"].startswith(error), scan["error"]


@pytest.mark.parametrize(("body", "error"), [
    ('echo "2026-11-28 [Module: provider] CRITICAL: ClientError: InvalidClientTokenId'
     ' sk=$AWS_SECRET_ACCESS_KEY" >&2\necho "done" >&2\nexit 1\n',
     "prowler failed with exit status 1: 2026-11-28 [Module: provider] CRITICAL: ClientError: "
     "InvalidClientTokenId sk=***"),
    ("exit 0\n", "prowler exited 0 but wrote no nightshift.ocsf.json"),
    ('echo "<html>" > "$out/nightshift.ocsf.json"\n', "Prowler's output is unusable: not JSON"),
    ('echo "[]" > "$out/nightshift.ocsf.json"\n', "Prowler checked nothing"),
])
def test_a_failing_prowler_is_an_error_that_resolves_nothing(
    conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, error: str,
) -> None:
    script = fake_prowler(tmp_path / "bin", f'cp {FIXTURE} "$out/nightshift.ocsf.json"\n', monkeypatch)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-value-1234")
    subject = live_integration(conn)
    assert scan_compliance(conn, subject)["status"] == "FAILED_CHECKS"
    fake_prowler(script.parent, body, monkeypatch)
    scan = scan_compliance(conn, subject)
    assert scan["status"] == "ERROR" and scan["error"].startswith(error), scan["error"]
    assert "s3cr3t" not in scan["error"] and "\n" not in scan["error"]
    assert len(open_checks(conn, subject)) == 2, "a scan that did not look resolves nothing"


# --- the real Prowler against moto (make test-prowler) ----------------------------------------------------


@pytest.fixture(scope="module")
def real_prowler() -> Path:
    if os.environ.get("NIGHTSHIFT_TEST_PROWLER") != "1":
        pytest.skip("the real Prowler tests run with `make test-prowler` (Prowler is about 2.3 GB and a scan "
                    "takes minutes): set NIGHTSHIFT_TEST_PROWLER=1 to run them here")
    if moto_server_path() is None:
        pytest.fail("moto_server is missing (pip install 'moto[server]')")
    os.environ.setdefault(scanners.DIR_ENV, str(ROOT / ".nightshift" / "scanners"))
    found = scanners.locate("prowler")
    return found.path if found else scanners.install("prowler")


@pytest.fixture
def moto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_prowler: Path) -> Iterator[str]:
    with moto_server(tmp_path) as endpoint:
        for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                            ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ENDPOINT_URL", endpoint)):
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("NIGHTSHIFT_PROWLER", raising=False)
        yield endpoint


def posture(conn: psycopg.Connection, subject: str, *requirements: str) -> dict[str, str]:
    rows = conn.execute("SELECT requirement, status FROM nightshift.compliance_posture"
                        " WHERE subject = %s AND framework = 'CIS' AND requirement = ANY(%s)",
                        (subject, list(requirements))).fetchall()
    return dict(rows)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two Prowler scans, minutes each on a shared two-core machine
def test_real_prowler_on_moto_fails_cis_and_resolves_after_the_fix(
    conn: psycopg.Connection, db_url: str, moto: str, real_prowler: Path,
) -> None:
    from dispatcher.compliance.mappings import read_prowler

    package = next(real_prowler.parent.parent.glob("lib/python*/site-packages/prowler/compliance/aws"))
    cis = read_prowler(package / "cis_3.0_aws.json")
    conn.execute("SELECT nightshift.load_framework(%s, %s, %s, %s, %s)",
                 (cis.source_name, cis.framework, cis.version, cis.provider, json.dumps(cis.requirements)))
    s3, ec2 = client(moto, "s3"), client(moto, "ec2")
    s3.create_bucket(Bucket="nightshift-reports")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName="admin", Description="admin", VpcId=vpc)["GroupId"]
    ssh = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=ssh)
    subject = live_integration(conn)

    first = scan_compliance(conn, subject, timeout=1200)
    assert first["status"] == "FAILED_CHECKS", first["error"]
    failing = open_checks(conn, subject)
    bucket = (TLS, "arn:aws:s3:::nightshift-reports")
    sg = (SSH, f"arn:aws:ec2:us-east-1:123456789012:security-group/{group}")
    assert {bucket, sg} <= failing
    assert posture(conn, subject, "2.1.1", "5.2") == {"2.1.1": "FAIL", "5.2": "FAIL"}

    s3.put_bucket_policy(Bucket="nightshift-reports", Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                       "Resource": ["arn:aws:s3:::nightshift-reports", "arn:aws:s3:::nightshift-reports/*"],
                       "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=ssh)

    second = scan_compliance(conn, subject, timeout=1200)
    assert second["status"] == "FAILED_CHECKS", "moto's account fails other CIS checks (no CloudTrail ...)"
    assert not {bucket, sg} & open_checks(conn, subject)
    resolved = conn.execute("SELECT check_id FROM nightshift.findings"
                            " WHERE subject = %s AND status = 'RESOLVED'", (subject,)).fetchall()
    assert {TLS, SSH} <= {row[0] for row in resolved}
    assert posture(conn, subject, "2.1.1", "5.2")["2.1.1"] == "PASS"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_real_prowler_refused_by_the_cloud_is_an_error(
    conn: psycopg.Connection, moto: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: every call is refused
    scan = scan_compliance(conn, live_integration(conn), timeout=1200)
    assert scan["status"] == "ERROR"
    assert scan["error"].startswith("prowler failed with exit status 1: ") and "CRITICAL" in scan["error"]


# --- the real Prowler, Azure and GCP: what can be tested without an account (make test-prowler) ---------

GCP_KEY_WITHOUT_A_KEY = {"type": "service_account", "project_id": "nightshift-test",
                         "client_email": "audit@nightshift-test.iam.gserviceaccount.com"}


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("provider", ["azure", "gcp"])
def test_real_prowler_refusing_azure_and_gcp_logins_is_an_error_that_resolves_nothing(
    conn: psycopg.Connection, real_prowler: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    provider: str,
) -> None:
    """Azure: a service principal whose secret no tenant knows (and no network to ask one); GCP: a key file
    without its private key. The real Prowler refuses both: an ERROR with Prowler's reason on one line,
    no secret in it, and the open finding of an earlier scan stays open."""
    monkeypatch.delenv("NIGHTSHIFT_PROWLER", raising=False)
    if provider == "azure":
        for name, value in (("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001"),
                            ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000002"),
                            ("AZURE_CLIENT_SECRET", "s3cr3t-azure-value")):
            monkeypatch.setenv(name, value)
        credentials: dict[str, object] = {
            "auth": "sp-env", "env": ["AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"],
            "subscription_ids": ["00000000-0000-0000-0000-000000000003"]}
    else:
        key = tmp_path / "gcp-audit.json"
        key.write_text(json.dumps(GCP_KEY_WITHOUT_A_KEY))
        credentials = {"credentials_file": str(key), "project_ids": ["nightshift-test"]}
    subject = live_integration(conn, credentials, provider=provider)
    conn.execute(
        "INSERT INTO nightshift.findings (kind, subject, fingerprint, check_id, resource_address)"
        " VALUES ('compliance', %s, 'earlier', 'storage_secure_transfer_required_is_enabled', 'earlier')",
        (subject,))
    conn.commit()
    scan = scan_compliance(conn, subject, timeout=800)
    assert scan["status"] == "ERROR", scan
    assert scan["error"].startswith("prowler failed with exit status "), scan["error"]
    assert "\n" not in scan["error"] and "s3cr3t" not in scan["error"]
    assert "s3cr3t" not in json.dumps(scan["artifacts"]), "passed secrets are masked in the stored steps"
    argv = scan["artifacts"]["steps"][-1]["argv"]
    assert argv[1] == provider and ("--sp-env-auth" in argv if provider == "azure"
                                    else "--credentials-file" in argv)
    assert open_checks(conn, subject) == {("storage_secure_transfer_required_is_enabled", "earlier")}


@pytest.mark.parametrize("how", ["missing", "hanging"])
def test_a_missing_or_hanging_prowler_is_an_error_that_resolves_nothing(
    conn: psycopg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str,
) -> None:
    script = fake_prowler(tmp_path / "bin", f'cp {FIXTURE} "$out/nightshift.ocsf.json"\n', monkeypatch)
    subject = live_integration(conn)
    assert scan_compliance(conn, subject)["status"] == "FAILED_CHECKS"
    if how == "missing":
        monkeypatch.delenv("NIGHTSHIFT_PROWLER")
        monkeypatch.setenv(scanners.DIR_ENV, str(tmp_path / "no-scanners"))
        monkeypatch.setenv("PATH", "/usr/bin:/bin")
        scan = scan_compliance(conn, subject)
        expected = "prowler is not installed: run `nightshift scanners install prowler`"
    else:
        fake_prowler(script.parent, "sleep 600\n", monkeypatch)
        scan = scan_compliance(conn, subject, timeout=25)
        expected = "prowler was killed at the deadline after"
    assert scan["status"] == "ERROR" and scan["error"].startswith(expected), scan["error"]
    assert len(open_checks(conn, subject)) == 2, "a scan that did not look resolves nothing"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_installed_prowler_writes_azure_and_gcp_output_the_parser_reads(
    real_prowler: Path, tmp_path: Path,
) -> None:
    """The Azure and GCP fixtures again, written now by the installed Prowler's own code (the generator
    of tests/fixtures/prowler, untrimmed): a newer Prowler whose shape moved fails here."""
    python = real_prowler.parent / "python"
    assert python.is_file(), f"no Python next to {real_prowler}: `nightshift scanners install prowler`"
    generator = FIXTURE.parent / "generate_azure_gcp.py"
    done = subprocess.run([str(python), str(generator), str(tmp_path)], capture_output=True, text=True,
                          timeout=500, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    azure = parse_prowler((tmp_path / "azure_cis_6.0.ocsf.json").read_bytes(), requirements={"CIS-6.0"})
    gcp = parse_prowler((tmp_path / "gcp_cis_5.0.ocsf.json").read_bytes(), requirements={"CIS-5.0"})
    assert [(f["check_id"], f["address"].rsplit("/", 1)[-1], f["region"], f["requirements"], f["severity"])
            for f in azure.findings + gcp.findings] == [
        ("storage_secure_transfer_required_is_enabled", "nsreports", "westeurope", {"CIS-6.0": ["9.3.4"]},
         "high"),
        ("cloudsql_instance_public_access", "orders-db", "europe-west1", {"CIS-5.0": ["6.5", "6.7"]},
         "critical")]
    assert [f["account"] for f in azure.findings + gcp.findings] == [
        "9c6b2a1e-3f4d-4e5a-8b7c-0d1e2f3a4b5c", "nightshift-audit-123456"]
