"""dispatcher.drift.plan against real recorded plans (tests/fixtures/plans) and shapes derived from them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from dispatcher.drift.plan import SENSITIVE, UNKNOWN, Finding, PlanError, parse_plan, read_plan
from dispatcher.drift.schema import ProviderSchemas

PLANS = Path(__file__).resolve().parents[1] / "fixtures" / "plans"
SCHEMAS = ProviderSchemas.from_json((PLANS.parent / "schemas" / "aws.json").read_bytes())

# Set by tests/fixtures/plans/record.py: the SSM SecureString before and after the out-of-band rotation,
# and (aws_estate) the sensitive variable behind a bucket tag and the value written over it out of band.
SECRETS = ("s3cr3t-Hunter2-initial", "0ut-0f-band-S3cret-rotated")
TAG_SECRETS = ("tag-S3cret-Initial-9f2e", "tag-S3cret-OutOfBand-7c1a")

LOGS_TAG_DRIFT = [
    ("tags.env", "prod", "staging"),
    ("tags.hotfix", None, "manual"),
    ("tags_all.env", "prod", "staging"),
    ("tags_all.hotfix", None, "manual"),
]
SSH_RULE_ADDED = [
    ("ingress.1.cidr_blocks.0", None, "203.0.113.7/32"),
    ("ingress.1.description", None, "ssh from laptop"),
    ("ingress.1.from_port", None, 22),
    ("ingress.1.protocol", None, "tcp"),
    ("ingress.1.self", None, False),
    ("ingress.1.to_port", None, 22),
]

TAG_SECRET_DRIFT = [("tags.Secret", SENSITIVE, SENSITIVE), ("tags_all.Secret", SENSITIVE, SENSITIVE)]
# the first of three inline rules revoked: named by its own values, the other two unchanged
HTTPS_RULE_REMOVED = [
    ("ingress.0.cidr_blocks.0", "0.0.0.0/0", None),
    ("ingress.0.description", "https", None),
    ("ingress.0.from_port", 443, None),
    ("ingress.0.protocol", "tcp", None),
    ("ingress.0.self", False, None),
    ("ingress.0.to_port", 443, None),
]
# versioning suspended and the expiry changed out of band: the separate resources drifted, not the bucket
BUCKET_PARTS_DRIFT: list[tuple[str, str, str, str, list[tuple[str, Any, Any]]]] = [
    (
        "drift",
        "aws_s3_bucket_lifecycle_configuration.data",
        "update",
        "low",
        [("rule.0.expiration.0.days", 30, 90)],
    ),
    (
        "drift",
        "aws_s3_bucket_versioning.data",
        "update",
        "low",
        [("versioning_configuration.0.status", "Enabled", "Suspended")],
    ),
]

# the bucket policy replaced out of band (jsonencode'd in the code, as moto returns it)
DENY_POLICY = (
    '{"Statement":[{"Action":"s3:*","Condition":{"Bool":{"aws:SecureTransport":"false"}},"Effect":"Deny",'
    '"Principal":"*","Resource":["arn:aws:s3:::nightshift-data/*"],"Sid":"DenyInsecureTransport"}],'
    '"Version":"2012-10-17"}'
)
PUBLIC_POLICY = (
    '{"Statement":[{"Action":"s3:GetObject","Effect":"Allow","Principal":"*",'
    '"Resource":"arn:aws:s3:::nightshift-data/*","Sid":"PublicRead"}],"Version":"2012-10-17"}'
)
REDRIVE = (
    '{"deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:nightshift-jobs-dlq", "maxReceiveCount": %d}'
)

# scenario -> [(kind, address, change, severity, [(path, before, after), ...])]
EXPECTED: dict[str, list[tuple[str, str, str, str, list[tuple[str, Any, Any]]]]] = {
    "clean": [],
    "bucket_tags_changed": [("drift", "aws_s3_bucket.logs", "update", "low", LOGS_TAG_DRIFT)],
    "module_bucket_tags_removed": [
        (
            "drift",
            'module.team_bucket["blue"].aws_s3_bucket.this',
            "update",
            "low",
            [("tags.team", "blue", None), ("tags_all.team", "blue", None)],
        )
    ],
    "security_group_ingress_added": [("drift", "aws_security_group.web", "update", "medium", SSH_RULE_ADDED)],
    "bucket_deleted": [("drift", "aws_s3_bucket.archive", "delete", "high", [])],
    "ssm_secret_changed": [
        (
            "drift",
            "aws_ssm_parameter.db_password",
            "update",
            "low",
            [("value", SENSITIVE, SENSITIVE), ("version", 1, 2)],
        )
    ],
    "code_changed": [
        ("pending-change", "aws_iam_role.scanner", "update", "medium", [("max_session_duration", 3600, 7200)])
    ],
    "code_replace": [
        (
            "pending-change",
            "aws_s3_bucket.archive",
            "replace",
            "high",
            [("bucket", "nightshift-archive", "nightshift-archive-v2")],
        )
    ],
    "drift_and_code_change": [
        ("drift", "aws_s3_bucket.logs", "update", "low", LOGS_TAG_DRIFT),
        (
            "pending-change",
            "aws_s3_bucket.logs",
            "update",
            "low",
            [("tags.cost", None, "ops"), ("tags_all.cost", None, "ops")],
        ),
    ],
    "refresh_only": [
        ("drift", "aws_s3_bucket.logs", "update", "low", LOGS_TAG_DRIFT),
        ("drift", "aws_security_group.web", "update", "medium", SSH_RULE_ADDED),
    ],
    # aws_estate (tests/fixtures/terraform/aws_estate). Every plan of it has Terraform plan a whitespace-only
    # update of the queue's redrive_policy (moto writes the JSON with spaces): evidence, never a finding.
    "estate_clean": [],
    "estate_lifecycle_applied": [],  # the bucket's lifecycle_rule mirror moved 30 -> 7: not its drift
    "estate_redrive_reformatted": [],  # the same redrive policy written back with other whitespace
    "estate_parameter_reverted": [],  # written and put back: only the computed `version` moved
    "estate_tag_secret_changed": [("drift", "aws_s3_bucket.data", "update", "low", TAG_SECRET_DRIFT)],
    "estate_dlq_deleted": [("drift", "aws_sqs_queue.dlq", "delete", "high", [])],
    "estate_inline_rule_removed": [
        ("drift", "aws_security_group.edge", "update", "medium", HTTPS_RULE_REMOVED)
    ],
    "estate_bucket_parts_changed": BUCKET_PARTS_DRIFT,
    "estate_refresh_only": [
        ("drift", "aws_s3_bucket.data", "update", "low", TAG_SECRET_DRIFT),
        *BUCKET_PARTS_DRIFT,
        ("drift", "aws_security_group.edge", "update", "medium", HTTPS_RULE_REMOVED),
    ],
    # a rule managed as its own resource revoked by hand: that resource is gone; the group's mirror is
    # evidence
    "estate_managed_rule_revoked": [
        ("drift", "aws_vpc_security_group_ingress_rule.app_https", "delete", "high", [])
    ],
    # a rule added by hand to a group whose rules are separate resources: no resource manages it and
    # Terraform plans nothing for it. Evidence (the group's `ingress` mirror), not a finding: a judgement
    # the README explains
    "estate_rule_added_by_hand": [],
    "estate_policy_changed": [
        ("drift", "aws_s3_bucket_policy.data", "update", "medium", [("policy", DENY_POLICY, PUBLIC_POLICY)])
    ],
    # the only encryption rule switched AES256 -> aws:kms: named in place (a set of one element), and
    # `bucket_key_enabled` null -> false inside it is not listed
    "estate_encryption_changed": [
        (
            "drift",
            "aws_s3_bucket_server_side_encryption_configuration.data",
            "update",
            "low",
            [("rule.0.apply_server_side_encryption_by_default.0.sse_algorithm", "AES256", "aws:kms")],
        )
    ],
    "estate_redrive_changed": [
        ("drift", "aws_sqs_queue.jobs", "update", "low", [("redrive_policy", REDRIVE % 5, REDRIVE % 10)])
    ],
    # not in the code, so Terraform enforces the provider default (30 s) and plans to put it back
    "estate_queue_timeout_changed": [
        ("drift", "aws_sqs_queue.jobs", "update", "low", [("visibility_timeout_seconds", 30, 120)])
    ],
}
# Without the provider schema a set is compared by position: the scenarios where that shows.
POSITIONAL = {"estate_inline_rule_removed", "estate_refresh_only"}


def load(scenario: str) -> dict[str, Any]:
    return json.loads((PLANS / f"{scenario}.json").read_bytes())


def summary(findings: list[Finding]) -> list[tuple[str, str, str, str, list[tuple[str, Any, Any]]]]:
    return [
        (f.kind, f.address, f.change, f.severity, [(a.path, a.before, a.after) for a in f.attributes])
        for f in findings
    ]


def entry(plan: dict[str, Any], section: str, address: str) -> dict[str, Any]:
    """A deep copy of one recorded resource_drift/resource_changes element."""
    return copy.deepcopy(next(e for e in plan[section] if e["address"] == address))


def test_every_recorded_plan_has_an_expectation() -> None:
    assert sorted(p.stem for p in PLANS.glob("*.json")) == sorted(EXPECTED)


# --- recorded scenarios ------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_recorded_scenario_yields_exactly_the_expected_findings(scenario: str) -> None:
    assert summary(parse_plan((PLANS / f"{scenario}.json").read_bytes(), SCHEMAS)) == EXPECTED[scenario]


@pytest.mark.parametrize("scenario", sorted(set(EXPECTED) - POSITIONAL))
def test_without_the_provider_schema_the_plan_alone_decides_the_same(scenario: str) -> None:
    assert summary(parse_plan((PLANS / f"{scenario}.json").read_bytes())) == EXPECTED[scenario]


def test_clean_plan_has_provider_noise_in_resource_drift_but_no_findings() -> None:
    plan = load("clean")
    noisy = {e["address"] for e in plan["resource_drift"]}
    assert "aws_s3_bucket.archive" in noisy  # tags null -> {}: Terraform reports an update
    assert parse_plan(plan) == []


def test_bytes_str_and_dict_inputs_agree() -> None:
    raw = (PLANS / "drift_and_code_change.json").read_bytes()
    expected = [f.to_json() for f in parse_plan(raw)]
    assert [f.to_json() for f in parse_plan(raw.decode())] == expected
    assert [f.to_json() for f in parse_plan(json.loads(raw))] == expected


def test_to_json_has_the_documented_fields() -> None:
    [finding] = parse_plan(load("module_bucket_tags_removed"))
    out = finding.to_json()
    assert set(out) == {
        "kind",
        "address",
        "module",
        "type",
        "name",
        "provider_id",
        "change",
        "attributes",
        "fingerprint",
        "severity",
    }
    assert out["module"] == 'module.team_bucket["blue"]'
    assert (out["type"], out["name"]) == ("aws_s3_bucket", "this")
    assert out["provider_id"] == "nightshift-team-blue"
    assert out["attributes"][0] == {"path": "tags.team", "before": "blue", "after": None}
    assert json.loads(json.dumps(out)) == out


def test_provider_id_is_the_real_object_id() -> None:
    [sg] = parse_plan(load("security_group_ingress_added"))
    assert sg.provider_id is not None and sg.provider_id.startswith("sg-")
    [deleted] = parse_plan(load("bucket_deleted"))
    assert deleted.provider_id == "nightshift-archive"  # from `before`: the object is gone
    [replaced] = parse_plan(load("code_replace"))
    assert replaced.provider_id == "nightshift-archive"  # the new id is unknown until apply
    assert parse_plan(load("code_changed"))[0].module is None


# --- sensitive values --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
@pytest.mark.parametrize("schemas", [SCHEMAS, None], ids=["schema", "no-schema"])
def test_sensitive_values_never_reach_the_output(scenario: str, schemas: ProviderSchemas | None) -> None:
    raw = (PLANS / f"{scenario}.json").read_text()
    secrets = TAG_SECRETS if scenario.startswith("estate_") else SECRETS
    assert secrets[0] in raw  # the recording does contain the secret, so this test can fail
    reading = read_plan(raw, schemas)
    output = json.dumps([f.to_json() for f in reading.findings] + [e.to_json() for e in reading.evidence])
    for secret in (*SECRETS, *TAG_SECRETS):
        assert secret not in output


def test_a_rotated_secret_is_drift_but_neither_value_is_kept() -> None:
    plan = load("ssm_secret_changed")
    assert SECRETS[1] in json.dumps(plan["resource_drift"])
    [finding] = parse_plan(plan)
    value = next(a for a in finding.attributes if a.path == "value")
    assert (value.before, value.after) == (SENSITIVE, SENSITIVE)


def test_a_pending_change_to_a_secret_is_masked_and_unknowns_are_marked() -> None:
    plan = load("ssm_secret_changed")
    del plan["resource_drift"]  # now the planned value change looks like a code change
    [finding] = parse_plan(plan)
    assert finding.kind == "pending-change"
    assert [(a.path, a.before, a.after) for a in finding.attributes] == [
        ("value", SENSITIVE, SENSITIVE),
        ("version", 2, UNKNOWN),
    ]


def test_sensitive_marks_inside_lists_and_on_either_side_mask_the_value() -> None:
    plan = load("security_group_ingress_added")
    drift = entry(plan, "resource_drift", "aws_security_group.web")
    # mark the new rule's CIDR sensitive on the `after` side only, and the old rule's description `before`
    drift["change"]["after_sensitive"]["ingress"] = [{}, {"cidr_blocks": [True]}]
    drift["change"]["before_sensitive"]["ingress"] = [{"description": True}]
    drift["change"]["after"]["ingress"][0]["description"] = "renamed"
    [finding] = parse_plan({"format_version": "1.2", "resource_drift": [drift]})
    values = {a.path: (a.before, a.after) for a in finding.attributes}
    assert values["ingress.1.cidr_blocks.0"] == (SENSITIVE, SENSITIVE)
    assert values["ingress.0.description"] == (SENSITIVE, SENSITIVE)
    assert values["ingress.1.from_port"] == (None, 22)
    assert "203.0.113.7/32" not in json.dumps(finding.to_json())


# --- noise -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"), [(None, {}), ({}, []), ("", None), ([], ""), ({"a": None}, None)]
)
def test_empty_values_are_noise(before: Any, after: Any) -> None:
    drift = entry(load("clean"), "resource_drift", "aws_s3_bucket.archive")
    drift["change"]["before"]["policy"] = before
    drift["change"]["after"]["policy"] = after
    drift["change"]["after"].pop("website_domain")  # a missing key is null too
    assert parse_plan({"format_version": "1.2", "resource_drift": [drift]}) == []


@pytest.mark.parametrize(("before", "after"), [(None, False), (0, None), (True, 1), ("x", {"x": 1})])
def test_false_zero_and_type_changes_are_differences(before: Any, after: Any) -> None:
    drift = entry(load("clean"), "resource_drift", "aws_s3_bucket.archive")
    drift["change"]["before"]["policy"] = before
    drift["change"]["after"]["policy"] = after
    [finding] = parse_plan({"format_version": "1.2", "resource_drift": [drift]})
    assert [(a.path, a.before, a.after) for a in finding.attributes] == [("policy", before, after)]


# --- fingerprints ------------------------------------------------------------------------------------------


def fingerprints(scenario: str) -> dict[tuple[str, str], str]:
    return {(f.kind, f.address): f.fingerprint for f in parse_plan(load(scenario))}


def test_fingerprints_are_stable_across_separate_recordings_of_the_same_drift() -> None:
    # different terraform runs against different moto instances: other sg ids, other timestamps
    first, second = fingerprints("security_group_ingress_added"), fingerprints("refresh_only")
    key = ("drift", "aws_security_group.web")
    assert first[key] == second[key]
    assert len(first[key]) == 64 and int(first[key], 16) >= 0


def test_fingerprint_ignores_which_attributes_drifted() -> None:
    tags_changed = fingerprints("bucket_tags_changed")[("drift", "aws_s3_bucket.logs")]
    plan = load("bucket_tags_changed")
    drift = entry(plan, "resource_drift", "aws_s3_bucket.logs")
    drift["change"]["after"]["tags"] = {"env": "prod", "owner": "someone-else"}
    [other] = parse_plan({"format_version": "1.2", "resource_drift": [drift]})
    assert other.fingerprint == tags_changed


def test_fingerprints_differ_by_address_kind_and_change() -> None:
    both = fingerprints("drift_and_code_change")
    assert both[("drift", "aws_s3_bucket.logs")] != both[("pending-change", "aws_s3_bucket.logs")]
    assert (
        fingerprints("bucket_tags_changed")[("drift", "aws_s3_bucket.logs")]
        != (
            fingerprints("module_bucket_tags_removed")[
                ("drift", 'module.team_bucket["blue"].aws_s3_bucket.this')
            ]
        )
    )
    deleted = fingerprints("bucket_deleted")[("drift", "aws_s3_bucket.archive")]
    replaced = fingerprints("code_replace")[("pending-change", "aws_s3_bucket.archive")]
    assert deleted != replaced


# --- pending changes vs drift ------------------------------------------------------------------------------


def test_a_plan_that_only_reverts_drift_is_not_a_pending_change() -> None:
    plan = load("bucket_deleted")
    planned = entry(plan, "resource_changes", "aws_s3_bucket.archive")
    assert planned["change"]["actions"] == ["create"]  # Terraform would recreate it...
    assert [f.kind for f in parse_plan(plan)] == ["drift"]  # ...which the drift finding already says


def test_a_replacement_that_undoes_drift_of_a_force_new_attribute_is_explained() -> None:
    # pretend the bucket was applied as -v2 and renamed out of band: Terraform plans a replace back to -v2
    plan = load("code_replace")
    planned = entry(plan, "resource_changes", "aws_s3_bucket.archive")
    drift = copy.deepcopy(planned)
    drift["change"] = {
        "actions": ["update"],
        "before": planned["change"]["before"] | {"bucket": "nightshift-archive-v2"},
        "after": planned["change"]["before"],
        "before_sensitive": {},
        "after_sensitive": {},
    }
    findings = parse_plan({"format_version": "1.2", "resource_drift": [drift], "resource_changes": [planned]})
    assert summary(findings) == [
        (
            "drift",
            "aws_s3_bucket.archive",
            "update",
            "low",
            [("bucket", "nightshift-archive-v2", "nightshift-archive")],
        )
    ]


def test_a_code_change_that_contradicts_drift_is_pending() -> None:
    plan = load("bucket_tags_changed")
    planned = entry(plan, "resource_changes", "aws_s3_bucket.logs")
    # the code now wants env=dev: applying would not restore the applied "prod", it changes it again
    planned["change"]["after"]["tags"]["env"] = "dev"
    planned["change"]["after"]["tags_all"]["env"] = "dev"
    plan["resource_changes"] = [planned]
    findings = parse_plan(plan)
    pending = [f for f in findings if f.kind == "pending-change"]
    assert [(a.path, a.before, a.after) for a in pending[0].attributes] == [
        ("tags.env", "staging", "dev"),
        ("tags_all.env", "staging", "dev"),
    ]


def test_without_drift_entries_every_planned_change_is_pending() -> None:
    plan = load("bucket_deleted")
    del plan["resource_drift"]  # older Terraform versions do not write it
    [finding] = parse_plan(plan)
    assert (finding.kind, finding.address, finding.change, finding.attributes) == (
        "pending-change",
        "aws_s3_bucket.archive",
        "create",
        (),
    )
    assert finding.severity == "low"


# --- real-world shapes -------------------------------------------------------------------------------------


def test_nested_modules_and_for_each_keys_pass_through() -> None:
    plan = load("module_bucket_tags_removed")
    drift = entry(plan, "resource_drift", 'module.team_bucket["blue"].aws_s3_bucket.this')
    module = 'module.net.module.team_bucket["a.b"]'
    drift["address"] = f"{module}.aws_s3_bucket.this[0]"
    drift["module_address"] = module
    drift["index"] = 0
    [finding] = parse_plan({"format_version": "1.2", "resource_drift": [drift]})
    assert (finding.address, finding.module, finding.type, finding.name) == (
        'module.net.module.team_bucket["a.b"].aws_s3_bucket.this[0]',
        module,
        "aws_s3_bucket",
        "this",
    )


def test_data_sources_noop_reads_and_noop_imports_are_skipped() -> None:
    plan = load("code_changed")
    role = entry(plan, "resource_changes", "aws_iam_role.scanner")
    data = copy.deepcopy(role) | {"mode": "data", "address": "data.aws_iam_role.scanner"}
    read = copy.deepcopy(role)
    read["change"]["actions"] = ["read"]
    imported = copy.deepcopy(role)
    imported["change"]["actions"] = ["no-op"]
    imported["change"]["importing"] = {"id": "nightshift-scanner"}
    forgotten = copy.deepcopy(role)
    forgotten["change"]["actions"] = ["forget"]
    plan = {"format_version": "1.2", "resource_changes": [data, read, imported, forgotten]}
    assert parse_plan(plan) == []


def test_create_then_delete_is_a_replace_and_deposed_objects_are_pending_deletes() -> None:
    plan = load("code_replace")
    replace = entry(plan, "resource_changes", "aws_s3_bucket.archive")
    replace["change"]["actions"] = ["create", "delete"]  # create_before_destroy
    deposed = copy.deepcopy(replace)
    deposed["deposed"] = "00000001"
    deposed["change"] |= {"actions": ["delete"], "after": None, "after_unknown": {}, "after_sensitive": False}
    current, old = parse_plan({"format_version": "1.2", "resource_changes": [replace, deposed]})
    assert (current.change, old.change) == ("replace", "delete")
    assert old.address == current.address and old.fingerprint != current.fingerprint
    assert old.provider_id == "nightshift-archive"


def test_a_replace_forced_by_an_unknown_value_lists_that_cause_only() -> None:
    # e.g. the VPC is being replaced, so the security group's vpc_id is unknown and forces a new group
    plan = load("code_changed")
    group = entry(plan, "resource_changes", "aws_security_group.web")
    vpc_id = group["change"]["before"]["vpc_id"]
    for key in ("vpc_id", "id", "arn", "owner_id"):
        del group["change"]["after"][key]
    group["change"] |= {
        "actions": ["delete", "create"],
        "after_unknown": {"vpc_id": True, "id": True, "arn": True, "owner_id": True},
        "replace_paths": [["vpc_id"]],
    }
    [finding] = parse_plan({"format_version": "1.2", "resource_changes": [group]})
    assert (finding.change, finding.severity) == ("replace", "high")
    assert [(a.path, a.before, a.after) for a in finding.attributes] == [("vpc_id", vpc_id, UNKNOWN)]
    assert finding.provider_id == group["change"]["before"]["id"]


def test_an_import_that_also_updates_is_a_pending_update() -> None:
    plan = load("code_changed")
    role = entry(plan, "resource_changes", "aws_iam_role.scanner")
    role["change"]["importing"] = {"id": "nightshift-scanner"}
    [finding] = parse_plan({"format_version": "1.2", "resource_changes": [role]})
    assert (finding.kind, finding.change) == ("pending-change", "update")


def test_a_plan_without_drift_or_changes_is_clean() -> None:
    assert parse_plan({"format_version": "1.2", "planned_values": {"root_module": {}}}) == []
    assert parse_plan({"format_version": "0.1", "resource_changes": []}) == []  # Terraform 0.12-0.15


def test_ten_thousand_resources_give_one_finding_each_that_drifted() -> None:
    """Correctness at size; the speed of this parse is bench/bench_drift.py's to measure (a timing
    assertion here failed whenever the machine was loaded, and proved nothing about the code)."""
    plan = load("bucket_tags_changed")
    drifted = entry(plan, "resource_drift", "aws_s3_bucket.logs")
    noise = entry(plan, "resource_drift", "aws_s3_bucket.archive")
    reverted = entry(plan, "resource_changes", "aws_s3_bucket.logs")
    unchanged = entry(plan, "resource_changes", "aws_s3_bucket.archive")
    big: dict[str, Any] = {"format_version": "1.2", "resource_drift": [], "resource_changes": []}
    for i in range(10_000):
        address = f'aws_s3_bucket.b["{i}"]'
        drift, change = (drifted, reverted) if i % 10 == 0 else (noise, unchanged)
        big["resource_drift"].append(drift | {"address": address, "index": str(i)})
        big["resource_changes"].append(change | {"address": address, "index": str(i)})

    findings = parse_plan(big)

    assert len(findings) == 1_000 and {f.kind for f in findings} == {"drift"}
    assert len({f.fingerprint for f in findings}) == 1_000


# --- malformed input ---------------------------------------------------------------------------------------


def plan_error(data: Any) -> str:
    with pytest.raises(PlanError) as caught:
        parse_plan(data)
    return str(caught.value)


def test_truncated_json_says_where_and_suggests_truncation() -> None:
    raw = (PLANS / "bucket_tags_changed.json").read_bytes()
    message = plan_error(raw[: len(raw) // 2])
    assert "not valid JSON" in message and "line " in message and "column " in message
    assert "truncated?" in message


def test_broken_json_in_the_middle_names_line_and_column() -> None:
    message = plan_error('{\n  "format_version": "1.2",\n  "resource_drift": [,]\n}')
    assert "line 3 column 22" in message and "truncated" not in message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty"),
        (b"\xff\xfe{}", "not UTF-8"),
        ("[]", "expected a JSON object, got a list"),
        ({"resource_changes": []}, "no format_version"),
        ({"format_version": 1.2}, "format_version 1.2 is not like"),
        ({"format_version": "2.0", "resource_changes": []}, "format_version 2.0 is not supported"),
        ({"format_version": "1.0", "values": {}}, "state JSON, not a plan"),
        ({"format_version": "1.2", "configuration": {}}, "no planned_values, resource_changes"),
        ({"format_version": "1.2", "resource_drift": {}}, "resource_drift must be a list, got an object"),
        ({"format_version": "1.2", "resource_changes": "x"}, "resource_changes must be a list"),
        ({"format_version": "1.2", "resource_changes": [1]}, "resource_changes[0] must be an object"),
        (
            {"format_version": "1.2", "resource_changes": [{"change": {}}]},
            "resource_changes[0] has no address",
        ),
        (
            {"format_version": "1.2", "resource_drift": [{"address": "a.b", "change": {"actions": []}}]},
            "resource_drift[0] (a.b) has no change.actions",
        ),
        (
            {"format_version": "1.2", "resource_changes": [{"address": "a.b", "type": "a", "name": "b"}]},
            "resource_changes[0] (a.b) has no change object",
        ),
        (
            {
                "format_version": "1.2",
                "resource_changes": [{"address": "a.b", "change": {"actions": ["no-op"]}}],
            },
            "resource_changes[0] (a.b) has no type",
        ),
        (
            {
                "format_version": "1.2",
                "resource_changes": [{"address": "a.b", "change": {"actions": ["nuke"]}}],
            },
            "unknown action(s) nuke",
        ),
        ({"format_version": "1.2", "resource_changes": [], "errored": True}, "the plan errored"),
    ],
)
def test_not_a_plan_raises_plan_error_naming_the_problem(data: Any, expected: str) -> None:
    assert expected in plan_error(data)


def test_json_errors_never_say_at_at() -> None:
    for broken in (b'{"a": "unterminated', b'{"a": "\x00"}'):
        with pytest.raises(PlanError) as error:
            parse_plan(broken)
        assert " at at " not in str(error.value) and " at line 1 column " in str(error.value)
# --- config- and schema-aware: the aws_estate recordings --------------------------------------------------


def evidence_of(scenario: str) -> set[tuple[str, str, str]]:
    reading = read_plan(load(scenario), SCHEMAS)
    return {(e.kind, e.address, e.reason) for e in reading.evidence}


def test_when_terraform_changes_nothing_the_mirrors_are_evidence_not_findings() -> None:
    plan = load("estate_clean")
    changes = {e["address"]: e["change"]["actions"] for e in plan["resource_changes"]}
    assert {a for a, actions in changes.items() if actions != ["no-op"]} == {"aws_sqs_queue.jobs"}
    drifted = {e["address"] for e in plan["resource_drift"]}
    assert {"aws_s3_bucket.data", "aws_security_group.app"} <= drifted  # what used to be reported
    assert read_plan(plan, SCHEMAS).findings == []
    assert {
        ("drift", "aws_s3_bucket.data", "not-managed-here"),
        ("drift", "aws_s3_bucket_server_side_encryption_configuration.data", "not-managed-here"),
        ("drift", "aws_security_group.app", "not-managed-here"),
        ("pending-change", "aws_sqs_queue.jobs", "json-formatting"),
    } <= evidence_of("estate_clean")


def test_after_an_ordinary_apply_the_parent_bucket_is_not_drifted() -> None:
    reading = read_plan(load("estate_lifecycle_applied"), SCHEMAS)
    assert reading.findings == []
    [bucket] = [e for e in reading.evidence if e.address == "aws_s3_bucket.data"]
    assert [(a.path, a.before, a.after) for a in bucket.attributes] == [
        ("lifecycle_rule.0.expiration.0.days", 30, 7)
    ]


def test_a_secret_copied_into_tags_all_is_masked_by_value() -> None:
    plan = load("estate_tag_secret_changed")
    drift = entry(plan, "resource_drift", "aws_s3_bucket.data")["change"]
    assert drift["after_sensitive"]["tags"] == {"Secret": True}
    assert drift["after_sensitive"]["tags_all"] == {}  # Terraform does not mark the derived copy
    assert drift["after"]["tags_all"]["Secret"] == TAG_SECRETS[1]
    [finding] = parse_plan(plan)
    values = {a.path: (a.before, a.after) for a in finding.attributes}
    assert values["tags_all.Secret"] == (SENSITIVE, SENSITIVE)


def test_a_secret_inside_json_text_a_map_key_or_a_list_is_masked() -> None:
    plan = load("estate_tag_secret_changed")
    drift = entry(plan, "resource_drift", "aws_s3_bucket.data")
    after = drift["change"]["after"]
    after["policy"] = json.dumps({"Statement": [{"Sid": TAG_SECRETS[0], "Effect": "Allow"}]})
    after["tags_all"][TAG_SECRETS[0]] = "key"
    after["object_lock_configuration"] = [{"note": f"prefix-{TAG_SECRETS[0]}-suffix"}]
    refresh_only = {key: plan[key] for key in ("format_version", "variables", "configuration")}
    reading = read_plan(refresh_only | {"resource_drift": [drift]}, SCHEMAS)
    output = json.dumps([f.to_json() for f in reading.findings] + [e.to_json() for e in reading.evidence])
    assert all(secret not in output for secret in TAG_SECRETS)
    # the policy and the block are not this configuration's (evidence); tags_all copies nothing: evidence too
    attributes = [a for item in (*reading.findings, *reading.evidence) for a in item.attributes]
    values = {a.path: a.after for a in attributes}
    assert json.loads(values["policy"]) == {"Statement": [{"Sid": SENSITIVE, "Effect": "Allow"}]}
    assert values[f"tags_all.{SENSITIVE}"] == "key"
    assert values["object_lock_configuration.0.note"] == f"prefix-{SENSITIVE}-suffix"


def test_a_deleted_dead_letter_queue_carries_what_reapplying_does() -> None:
    plan = load("estate_dlq_deleted")
    planned = {e["address"]: e["change"]["actions"] for e in plan["resource_changes"]}
    assert planned["aws_sqs_queue.dlq"] == ["create"] and planned["aws_sqs_queue.jobs"] == ["update"]
    [finding] = parse_plan(plan, SCHEMAS)  # no pending change: both are the drift's consequences
    assert [c.to_json() for c in finding.consequences] == [
        {"address": "aws_sqs_queue.dlq", "change": "create", "attributes": []},
        {"address": "aws_sqs_queue.jobs", "change": "update", "attributes": ["redrive_policy"]},
    ]
    assert finding.to_json()["consequences"][1]["attributes"] == ["redrive_policy"]


def test_a_code_change_next_to_a_consequence_is_still_pending() -> None:
    plan = load("estate_dlq_deleted")
    jobs = next(e for e in plan["resource_changes"] if e["address"] == "aws_sqs_queue.jobs")
    jobs["change"]["after"]["visibility_timeout_seconds"] = 60
    drift, pending = parse_plan(plan, SCHEMAS)
    assert [c.address for c in drift.consequences] == ["aws_sqs_queue.dlq", "aws_sqs_queue.jobs"]
    assert (pending.kind, pending.address) == ("pending-change", "aws_sqs_queue.jobs")
    changed = [(a.path, a.before, a.after) for a in pending.attributes]
    assert changed == [("visibility_timeout_seconds", 30, 60)]


def test_json_text_is_compared_by_meaning() -> None:
    plan = load("estate_clean")
    jobs = next(e for e in plan["resource_changes"] if e["address"] == "aws_sqs_queue.jobs")
    before, after = jobs["change"]["before"]["redrive_policy"], jobs["change"]["after"]["redrive_policy"]
    assert before != after and json.loads(before) == json.loads(after)  # whitespace only
    assert parse_plan(plan) == []
    jobs["change"]["after"]["redrive_policy"] = after.replace('"maxReceiveCount":5', '"maxReceiveCount":6')
    [finding] = parse_plan(plan)
    assert (finding.kind, [a.path for a in finding.attributes]) == ("pending-change", ["redrive_policy"])


def test_without_the_schema_a_removed_set_element_shifts_the_others() -> None:
    # why the schema matters: by position, "rule 0 changed from 443 to 8080"
    [finding] = parse_plan(load("estate_inline_rule_removed"))
    values = {a.path: (a.before, a.after) for a in finding.attributes}
    assert values["ingress.0.from_port"] == (443, 8080)
    [finding] = parse_plan(load("estate_inline_rule_removed"), SCHEMAS)
    assert all(a.after is None for a in finding.attributes)  # only the removed rule, by its own values


def edge_rules_changed(*ports: int) -> dict[str, Any]:
    """A refresh-only plan of the edge group whose inline rules on `ports` were opened to the world."""
    plan = load("estate_inline_rule_removed")
    drift = entry(plan, "resource_drift", "aws_security_group.edge")
    drift["change"]["before"]["ingress"] = copy.deepcopy(drift["change"]["after"]["ingress"])
    for rule in drift["change"]["after"]["ingress"]:
        if rule["from_port"] in ports:
            rule["cidr_blocks"] = ["0.0.0.0/0"]
    return {"format_version": "1.2", "configuration": plan["configuration"], "resource_drift": [drift]}


def test_a_set_element_that_changed_alone_is_named_by_what_changed() -> None:
    # one element went and one came: the same rule with another CIDR, not "a rule removed, a rule added"
    [finding] = parse_plan(edge_rules_changed(9100), SCHEMAS)
    changed = [(a.before, a.after) for a in finding.attributes]
    assert changed == [("10.43.0.0/16", "0.0.0.0/0")]
    assert finding.attributes[0].path.startswith("ingress.") and finding.attributes[0].path.endswith(
        ".cidr_blocks.0")


def test_several_changed_set_elements_are_removed_and_added_by_value() -> None:
    # two rules changed: which old rule became which new one is a guess a set cannot answer
    [finding] = parse_plan(edge_rules_changed(8080, 9100), SCHEMAS)
    changed = [(a.before, a.after) for a in finding.attributes if "cidr_blocks" in a.path]
    assert sorted(changed, key=str) == sorted(
        [("10.43.0.0/16", None), ("10.43.0.0/16", None), (None, "0.0.0.0/0"), (None, "0.0.0.0/0")], key=str)


def test_a_reverted_out_of_band_write_settles() -> None:
    plan = load("estate_parameter_reverted")
    drift = entry(plan, "resource_drift", "aws_ssm_parameter.feature")["change"]
    assert (drift["before"]["version"], drift["after"]["version"]) == (1, 3)
    reading = read_plan(plan, SCHEMAS)
    assert reading.findings == []
    [parameter] = [e for e in reading.evidence if e.address == "aws_ssm_parameter.feature"]
    assert [(a.path, a.before, a.after) for a in parameter.attributes] == [("version", 1, 3)]
    # refresh-only (no planned changes): the schema says `version` is computed, so still no finding
    refresh_only = {k: v for k, v in plan.items() if k != "resource_changes"}
    assert parse_plan(refresh_only, SCHEMAS) == []


def test_a_computed_attribute_other_resources_refer_to_is_drift_of_its_own() -> None:
    plan = load("estate_clean")
    assert {"resource": "aws_sqs_queue.dlq", "attribute": ["arn"]} in plan["relevant_attributes"]
    dlq = entry(plan, "resource_drift", "aws_sqs_queue.dlq")
    dlq["change"]["after"]["arn"] = "arn:aws:sqs:us-east-1:123456789012:nightshift-jobs-dlq-recreated"
    refresh_only = {k: plan[k] for k in ("format_version", "configuration", "relevant_attributes")}
    [finding] = parse_plan(refresh_only | {"resource_drift": [dlq]}, SCHEMAS)
    assert [a.path for a in finding.attributes] == ["arn"]
    del refresh_only["relevant_attributes"]  # nobody refers to it: a computed value, evidence only
    assert parse_plan(refresh_only | {"resource_drift": [dlq]}, SCHEMAS) == []


def test_a_value_the_schema_calls_sensitive_is_masked_even_unmarked() -> None:
    plan = load("estate_parameter_reverted")
    parameter = entry(plan, "resource_drift", "aws_ssm_parameter.feature")
    change = parameter["change"]
    change["before"]["value"], change["after"]["value"] = "value-before-1234", "value-after-5678"
    change["after"]["tags"] = {"copy": "value-after-5678"}
    change["before_sensitive"], change["after_sensitive"] = {}, {}  # e.g. a plan written by another tool
    drift_only = {"format_version": "1.2", "resource_drift": [parameter]}
    output = json.dumps([f.to_json() for f in parse_plan(drift_only, SCHEMAS)])
    assert "value-after-5678" not in output and "value-before-1234" not in output
    assert "value-after-5678" in json.dumps([f.to_json() for f in parse_plan(drift_only)])  # can fail
