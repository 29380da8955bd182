"""The optional plan of a pull-request review, the pure parts: which roots the payload asks to plan,
and a plan counted as Terraform counts it, on plans recorded from real terraform runs against moto
(tests/fixtures/plans)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dispatcher.drift.plan import PlanError
from dispatcher.review.plan import PlanSpec, PlanSpecError, failure_reason, headline, plan_specs, summarise
from dispatcher.review.render import RootReview, render_comment

PLANS = Path(__file__).resolve().parents[1] / "fixtures" / "plans"


def recorded(name: str) -> dict:
    return json.loads((PLANS / f"{name}.json").read_text())


def test_counts_follow_terraform_a_replacement_adds_and_destroys() -> None:
    nothing = {"add": 0, "change": 0, "destroy": 0, "replace": 0, "resources": {}}
    assert summarise(recorded("clean")) == nothing
    replaced = summarise(recorded("code_replace"))
    assert (replaced["add"], replaced["change"], replaced["destroy"], replaced["replace"]) == (1, 0, 1, 1)
    assert replaced["resources"] == {"replace": ["aws_s3_bucket.archive"]}
    assert headline(replaced) == "1 to add, 0 to change, 1 to destroy (1 replaced)"
    changed = summarise(recorded("code_changed"))
    assert changed["resources"] == {"update": ["aws_iam_role.scanner"]}


def test_a_plan_that_is_not_one_is_refused() -> None:
    with pytest.raises(PlanError, match="errored"):
        summarise({**recorded("code_changed"), "errored": True})
    with pytest.raises(PlanError):
        summarise(b"Error: No valid credential sources found")


def test_the_payload_plans_by_root() -> None:
    specs = plan_specs([{"name": "app", "working_directory": "roots/app/", "workspace": "prod",
                         "var_files": ["env/prod.tfvars"], "env_allowlist": ["AWS_*"]},
                        {"name": "again", "working_directory": "roots/app"},
                        {"name": "top", "working_directory": "."}])
    assert specs == {"roots/app": PlanSpec("app", "roots/app", "prod", ("env/prod.tfvars",), ("AWS_*",)),
                     ".": PlanSpec("top", ".")}
    assert plan_specs(None) == {} and plan_specs([]) == {}
    for bad in ("roots/app", [1], [{"working_directory": "x", "env_allowlist": "AWS_*"}]):
        with pytest.raises(PlanSpecError):
            plan_specs(bad)


def test_a_failure_reason_is_terraforms_first_error_with_its_place() -> None:
    stderr = ("\n│ Error: Retrieving AWS account details: validating provider credentials: "
              "InvalidClientTokenId: The security token included in the request is invalid.\n"
              "│ \n│   with provider[\"registry.terraform.io/hashicorp/aws\"],\n"
              "│   on main.tf line 20, in provider \"aws\":\n│   20: provider \"aws\" {\n│ \n"
              "\n│ Error: second\n")
    reason = failure_reason("roots/app", stderr, 1)
    assert reason.startswith("Retrieving AWS account details") and "InvalidClientTokenId" in reason
    assert "(roots/app/main.tf:20)" in reason and reason.endswith("(and 1 more error)")
    assert failure_reason("roots/app", "", 1) == "terraform exited with status 1 and printed no error"


def test_the_comment_shows_the_plan_or_why_there_is_none() -> None:
    counted = {"pipeline": "app", "workspace": "default", **summarise(recorded("code_replace"))}
    failed = {"pipeline": "db", "workspace": "prod", "error": "terraform plan failed: refused"}
    body = render_comment(head_sha="a" * 40, merge_base="b" * 40,
                          roots=[RootReview("roots/app", plan=counted), RootReview("roots/db", plan=failed),
                                 RootReview("roots/other")])
    assert "**Plan** (pipeline `app`): 1 to add, 0 to change, 1 to destroy (1 replaced)" in body
    assert "- replace: `aws_s3_bucket.archive`" in body
    assert "**Plan** (pipeline `db`, workspace `prod`): not available: terraform plan failed: refused" in body
    assert body.count("**Plan**") == 2  # a root without a plan says nothing about one
