"""Secrets never land in stored errors or artifacts: known values and URL credentials are masked."""

from dispatcher.agents.process import allowed_env
from dispatcher.redact import mask


def test_known_secret_values_are_masked_longest_first() -> None:
    assert mask("token=abcd1234 and abcd", ["abcd", "abcd1234"]) == "token=*** and ***"


def test_short_values_are_not_treated_as_secrets() -> None:
    assert mask("a b c", ["a", ""]) == "a b c"  # masking 'a' would destroy every message


def test_url_credentials_are_masked_whatever_the_scheme() -> None:
    text = ("fatal: unable to access 'https://x-access-token:ghp_s3cret@github.com/org/infra.git/'\n"
            "postgresql://nightshift:pw0rd@127.0.0.1:5432/nightshift ssh://git:pw@host/repo")
    masked = mask(text)
    assert "ghp_s3cret" not in masked and "pw0rd" not in masked and ":pw@" not in masked
    assert "https://***@github.com/org/infra.git/" in masked
    assert "git@github.com:org/repo" in mask("git@github.com:org/repo")  # no credentials: unchanged


def test_the_database_url_never_reaches_an_agent_even_when_allow_listed() -> None:
    source = {"PATH": "/bin", "NIGHTSHIFT_DATABASE_URL": "postgresql://u:p@h/d", "PGPASSWORD": "p",
              "AWS_REGION": "eu-west-1", "SECRET": "s"}
    env = allowed_env(["NIGHTSHIFT_DATABASE_URL", "PGPASSWORD", "AWS_REGION"], source=source)
    assert env == {"PATH": "/bin", "AWS_REGION": "eu-west-1"}
