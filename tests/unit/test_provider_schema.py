"""dispatcher.drift.schema against the recorded hashicorp/aws schema (tests/fixtures/schemas/aws.json)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from dispatcher.drift import schema as schema_module
from dispatcher.drift.schema import (
    ProviderSchemas,
    SchemaCache,
    SchemaError,
    provider_selections,
    schemas_for,
)

SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "schemas" / "aws.json"
AWS = "registry.terraform.io/hashicorp/aws"


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(SCHEMA.read_bytes())


@pytest.fixture(autouse=True)
def empty_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with nothing parsed in the process-wide memory."""
    monkeypatch.setattr(schema_module, "_MEMORY", {})


def test_recorded_schema_tells_mirrors_sets_and_secrets_apart(recorded: dict) -> None:
    schemas = ProviderSchemas.from_json(recorded)
    bucket = schemas.resource(AWS, "aws_s3_bucket")
    assert bucket is not None
    lifecycle = bucket.child("lifecycle_rule")
    assert lifecycle is not None and lifecycle.block and lifecycle.is_collection
    tags = bucket.child("tags")
    assert tags is not None and tags.optional and tags.enforced
    group = schemas.resource(AWS, "aws_security_group")
    assert group is not None
    ingress = group.child("ingress")
    assert ingress is not None and ingress.is_set and ingress.optional and ingress.computed
    assert not ingress.enforced  # a group whose rules are separate resources must not claim them
    element = ingress.child("0")
    assert element is not None and element.child("from_port") is not None
    parameter = schemas.resource("hashicorp/aws", "aws_ssm_parameter")  # short source names work
    assert parameter is not None and parameter.secret_inside
    value = parameter.child("value")
    assert value is not None and value.sensitive
    assert schemas.resource(AWS, "aws_no_such_thing") is None


def test_version_json_gives_the_provider_selections() -> None:
    output = json.dumps({"terraform_version": "1.11.4", "provider_selections": {AWS: "5.100.0"}})
    assert provider_selections(output) == {AWS: "5.100.0"}
    with pytest.raises(SchemaError, match="run it after init"):
        provider_selections(b'{"terraform_version": "1.11.4"}')
    with pytest.raises(SchemaError, match="not valid JSON"):
        provider_selections(b"Terraform v1.11.4")


def test_the_cache_keeps_one_file_per_provider_version_and_reads_it_once(
    recorded: dict, tmp_path: Path,
) -> None:
    cache = SchemaCache(tmp_path / "schemas")
    selections = {AWS: "5.100.0"}
    assert cache.missing(selections) == [AWS]
    cache.store(selections, json.dumps(recorded))
    assert cache.missing(selections) == []
    assert cache.missing({AWS: "5.101.0"}) == [AWS]  # another version is another schema
    stored = cache.path(AWS, "5.100.0")
    assert stored.parent == tmp_path / "schemas" and stored.name.endswith("5.100.0.json")

    schema_module._MEMORY.clear()  # a new process: read from disk, then from memory
    first = cache.load(selections).resource(AWS, "aws_sqs_queue")
    stored.unlink()
    assert cache.missing(selections) == []  # still in memory: no second fetch in this process
    second = cache.load(selections).resource(AWS, "aws_sqs_queue")
    assert first is not None and second is not None and second.child("redrive_policy") is not None


def test_a_damaged_cache_file_is_dropped_and_fetched_again(tmp_path: Path) -> None:
    cache = SchemaCache(tmp_path)
    cache.path(AWS, "5.100.0").write_text("{not json")
    assert cache.load({AWS: "5.100.0"}).resource(AWS, "aws_s3_bucket") is None
    assert cache.missing({AWS: "5.100.0"}) == [AWS]


def test_not_a_schema_is_refused() -> None:
    with pytest.raises(SchemaError, match="no provider_schemas"):
        ProviderSchemas.from_json(b'{"format_version": "1.0"}')
    with pytest.raises(SchemaError, match="no provider_schemas"):
        SchemaCache(Path("/nonexistent")).store({AWS: "1"}, "{}")


def test_schemas_for_runs_the_schema_command_once_per_provider_version(
    recorded: dict, tmp_path: Path,
) -> None:
    calls: list[list[str]] = []
    version = {"provider_selections": recorded["provider_selections"]}

    async def run_tool(argv: list[str]) -> bytes:
        calls.append(argv)
        return json.dumps(version if argv[1] == "version" else recorded).encode()

    cache = SchemaCache(tmp_path)
    for _ in range(2):  # two scans of pipelines on the same provider version
        schemas = asyncio.run(schemas_for(cache, "tofu", run_tool))
        assert schemas.resource(AWS, "aws_security_group") is not None
    assert calls == [["tofu", "version", "-json"], ["tofu", "providers", "schema", "-json"],
                     ["tofu", "version", "-json"]]
