"""Prowler's command line per provider (dispatcher/agents/prowler_scan.py): the login and scope options
built from an integration's credentials (names, paths and ids only), and what is refused before Prowler
starts. The options are Prowler 5.46.0's (`prowler azure --help`, `prowler gcp --help`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dispatcher.agents.prowler_scan import credentials_of, provider_options
from dispatcher.agents.workspace import StepFailed

SP = {"AZURE_CLIENT_ID": "c1d2", "AZURE_TENANT_ID": "t3n4", "AZURE_CLIENT_SECRET": "do-not-print"}


def test_aws_keeps_its_options() -> None:
    options = provider_options("aws", {"regions": ["eu-west-1", "us-east-1"],
                                       "role_arn": "arn:aws:iam::123456789012:role/audit"}, {})
    assert options == ["--scan-unused-services", "--region", "eu-west-1", "us-east-1",
                       "--role", "arn:aws:iam::123456789012:role/audit"]


@pytest.mark.parametrize(("credentials", "expected"), [
    ({"auth": "sp-env", "env": list(SP)}, ["--sp-env-auth"]),
    ({"auth": "az-cli", "env": ["AZURE_CONFIG_DIR"]}, ["--az-cli-auth"]),
    ({"auth": "managed-identity", "subscription_ids": ["sub-a", "sub-b"]},
     ["--managed-identity-auth", "--subscription-ids", "sub-a", "sub-b"]),
])
def test_azure_login_modes(credentials: dict[str, Any], expected: list[str]) -> None:
    options = provider_options("azure", credentials, SP)
    assert options == expected
    assert "do-not-print" not in " ".join(options), "secrets travel in the environment, never in argv"


@pytest.mark.parametrize(("credentials", "environ", "error"), [
    ({"env": list(SP)}, SP, "cloud_integrations.credentials.auth must be one of sp-env, az-cli, "
                            "managed-identity for an azure integration, not None"),
    ({"auth": "browser"}, SP, "cloud_integrations.credentials.auth must be one of"),
    ({"auth": "sp-env", "env": ["AZURE_CLIENT_ID", "AZURE_TENANT_ID"]}, SP,
     "azure service principal login (auth sp-env) needs AZURE_CLIENT_SECRET listed in credentials.env and "
     "set in the dispatcher's environment"),
    ({"auth": "sp-env", "env": list(SP)}, {"AZURE_CLIENT_ID": "c1d2"},
     "azure service principal login (auth sp-env) needs AZURE_TENANT_ID, AZURE_CLIENT_SECRET listed"),
])
def test_azure_logins_that_cannot_work(
    credentials: dict[str, Any], environ: dict[str, str], error: str,
) -> None:
    with pytest.raises(StepFailed) as failed:
        provider_options("azure", credentials, environ)
    assert str(failed.value).startswith(error)


def test_gcp_key_file_impersonation_and_scope(tmp_path: Path) -> None:
    key = tmp_path / "audit.json"
    key.write_text("{}")
    assert provider_options("gcp", {"credentials_file": str(key), "project_ids": ["p-1", "p-2"]}, {}) == [
        "--credentials-file", str(key), "--project-ids", "p-1", "p-2"]
    assert provider_options("gcp", {"impersonate_service_account": "audit@p-1.iam.gserviceaccount.com",
                                    "organization_id": "1234567890"}, {}) == [
        "--impersonate-service-account", "audit@p-1.iam.gserviceaccount.com",
        "--organization-id", "1234567890"]
    # Application Default Credentials: no login option, Prowler's default
    adc = {"env": ["GOOGLE_APPLICATION_CREDENTIALS"]}
    assert provider_options("gcp", adc, {"GOOGLE_APPLICATION_CREDENTIALS": str(key)}) == []


@pytest.mark.parametrize(("credentials", "error"), [
    ({"credentials_file": "/nonexistent/audit.json"},
     "gcp credentials_file /nonexistent/audit.json is not a readable file"),
    ({"credentials_file": "audit.json"}, "gcp credentials_file audit.json is not a readable file"),
    ({"credentials_file": "/etc/hostname", "impersonate_service_account": "a@b"},
     "cloud_integrations.credentials: credentials_file or impersonate_service_account, not both"),
    ({"env": ["GOOGLE_APPLICATION_CREDENTIALS"]},
     "gcp login by Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS is listed"),
])
def test_gcp_logins_that_cannot_work(credentials: dict[str, Any], error: str) -> None:
    with pytest.raises(StepFailed) as failed:
        provider_options("gcp", credentials, {})
    assert str(failed.value).startswith(error)


@pytest.mark.parametrize(("provider", "credentials", "error"), [
    ("azure", {"auth": "sp-env", "role_arn": "arn:x"},
     "unknown key(s) in cloud_integrations.credentials: role_arn; "
     "known for azure: auth, env, subscription_ids"),
    ("gcp", {"regions": ["europe-west1"]},
     "unknown key(s) in cloud_integrations.credentials: regions; "
     "known for gcp: credentials_file, env, impersonate_service_account"),
    ("azure", {"subscription_ids": "sub-a"},
     "cloud_integrations.credentials.subscription_ids must be a list"),
    ("gcp", {"credentials_file": ["/a.json"]},
     "cloud_integrations.credentials.credentials_file must be a non-empty string"),
    ("azure", "sp-env", "cloud_integrations.credentials must be a JSON object"),
])
def test_credentials_are_checked_against_the_provider(provider: str, credentials: object, error: str) -> None:
    with pytest.raises(StepFailed) as failed:
        credentials_of({"provider": provider, "credentials": credentials})
    assert str(failed.value).startswith(error)
