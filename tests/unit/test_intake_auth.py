"""The intake's pure checks: GitHub's signature scheme (its documented test vector and the corpus
signatures), the trimmed payload, and bearer-token decisions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.intake import tokens
from dispatcher.intake.github import parse_delivery, signature_valid, trim
from tests.support.intake import TEST_SECRET, corpus, manifest

# GitHub Docs, "Validating webhook deliveries" (quoted in the corpus README)
DOCUMENTED_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_githubs_documented_test_vector() -> None:
    assert signature_valid(TEST_SECRET.encode(), b"Hello, World!", DOCUMENTED_SIGNATURE)
    assert signature_valid(TEST_SECRET.encode(), b"Hello, World!", DOCUMENTED_SIGNATURE.upper().replace(
        "SHA256=", "sha256="))
    assert not signature_valid(TEST_SECRET.encode(), b"Hello, World?", DOCUMENTED_SIGNATURE)
    assert not signature_valid(b"another secret", b"Hello, World!", DOCUMENTED_SIGNATURE)
    assert not signature_valid(TEST_SECRET.encode(), b"Hello, World!", DOCUMENTED_SIGNATURE[:-1])


def test_every_corpus_payload_verifies_over_its_exact_bytes() -> None:
    for name, entry in manifest().items():
        raw = (corpus() / name).read_bytes()
        assert signature_valid(TEST_SECRET.encode(), raw, entry["x_hub_signature_256_with_test_secret"]), name
        # re-serialised JSON is other bytes: the signature must not match it
        compact = json.dumps(json.loads(raw), separators=(",", ":")).encode()
        assert not signature_valid(TEST_SECRET.encode(), compact,
                                   entry["x_hub_signature_256_with_test_secret"])


def test_trim_keeps_what_the_review_needs() -> None:
    payload = json.loads((corpus() / "pull_request.synchronize.json").read_bytes())
    trimmed = trim(payload)
    assert trimmed["number"] == 2 and trimmed["action"] == "synchronize"
    assert trimmed["repository"]["full_name"] == "Codertocat/Hello-World"
    assert trimmed["pull_request"]["head"]["sha"] == payload["pull_request"]["head"]["sha"]
    assert trimmed["pull_request"]["base"]["ref"] == "master"
    assert len(json.dumps(trimmed)) < len(json.dumps(payload)) / 10


def test_the_fast_parse_reads_what_trim_keeps_from_every_corpus_payload() -> None:
    payloads = sorted(corpus().glob("*.json")) + sorted((corpus() / "more").glob("*.json"))
    payloads = [path for path in payloads if path.name != "manifest.json"]
    assert len(payloads) >= 15
    for path in payloads:
        raw = path.read_bytes()
        assert parse_delivery(raw) == trim(json.loads(raw)), path.name


@pytest.mark.parametrize("body", [
    b'{"action": "opened", "number": "seven", "pull_request": {"head": "not an object"}}',
    b'{"repository": ["a list"], "pull_request": {"head": {"sha": 1, "repo": null}}}',
    b'{"pull_request": {"head": {"sha": "a", "repo": {"name": "no clone_url"}}, "base": 5}}',
    b'{"number": 123456789012345678901234567890}',
    b'[1, 2]', b'"text"', b'null', b'{"a": 1} trailing', b'{"a": ', b'\xff\xfe', b'',
])
def test_the_fast_parse_of_odd_shapes_is_trim_of_the_json_module(body: bytes) -> None:
    try:
        decoded = json.loads(body)
    except ValueError:
        assert parse_delivery(body) is None
        return
    assert parse_delivery(body) == (trim(decoded) if isinstance(decoded, dict) else decoded)


def stored(token: tokens.NewToken, **changes: object) -> tokens.StoredToken:
    row = dict(id=1, name="t", token_hash=token.token_hash, scopes=["scheduled-tasks"], expires_at=None,
               revoked_at=None)
    row.update(changes)
    return tokens.StoredToken(**row)  # type: ignore[arg-type]


def test_token_decisions() -> None:
    new = tokens.generate()
    assert tokens.prefix_of(new.token) == new.prefix
    assert tokens.prefix_of("nst_short") is None
    now = datetime.now(UTC)
    assert tokens.refusal(new.token, stored(new), "drift-scan") is None
    assert tokens.refusal(new.token, None, "drift-scan") == "unknown"
    assert tokens.refusal(new.token + "x", stored(new), "drift-scan") == "unknown"
    assert tokens.refusal(new.token, stored(new, revoked_at=now), "drift-scan") == "revoked"
    expired = stored(new, expires_at=now - timedelta(seconds=1))
    assert tokens.refusal(new.token, expired, "drift-scan") == "expired"
    assert tokens.refusal(new.token, stored(new, expires_at=now + timedelta(days=1)), "drift-scan") is None
    narrow = stored(new, scopes=["scheduled-tasks:cost-analysis"])
    assert tokens.refusal(new.token, narrow, "drift-scan") == "scope"
    assert tokens.refusal(new.token, narrow, "cost-analysis") is None


@pytest.mark.parametrize("scope", ["scheduled-tasks", "scheduled-tasks:drift-scan"])
def test_scope_pattern_accepts(scope: str) -> None:
    assert tokens.SCOPE_PATTERN.match(scope)


@pytest.mark.parametrize("scope", ["admin", "scheduled-tasks:", "scheduled-tasks:*"])
def test_scope_pattern_refuses(scope: str) -> None:
    assert not tokens.SCOPE_PATTERN.match(scope)
