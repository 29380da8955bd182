"""Adopting live values into HCL: only the literal's bytes change, comments and layout stay, and what
is not a literal says why (so the finding is reverted instead)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dispatcher.remediation.body import render_body
from dispatcher.remediation.fixes import decide
from dispatcher.remediation.hcl import (
    HclError,
    HclFile,
    NotAdoptable,
    apply_edits,
    attribute_edit,
    find_resource,
    hcl_literal,
)

SOURCE = b"""# the logs bucket: keep it
resource "aws_s3_bucket" "logs" {
  bucket = "nightshift-logs" # its name
  tags = {
    env   = "prod" # changed by hand sometimes
    owner = var.owner
    "kubernetes.io/role" = "elb"
  }
}

resource "aws_instance" "web" {
  instance_type = "t3.micro"
  monitoring    = false
  name          = "web-${var.env}"
  ebs_block_device {
    volume_size = 8
  }
  tags = { Name = "web" }
}
"""


def parsed() -> HclFile:
    return HclFile.parse(Path("main.tf"), SOURCE)


def edit(type_: str, name: str, path: str, before: object, after: object) -> bytes:
    hcl = parsed()
    found = find_resource([hcl], type_, name)
    assert found is not None
    return apply_edits(hcl.source, [attribute_edit(hcl, found[1], path, before, after)])


def test_a_changed_tag_rewrites_only_its_literal() -> None:
    out = edit("aws_s3_bucket", "logs", "tags.env", "prod", "staging")
    assert out == SOURCE.replace(b'env   = "prod"', b'env   = "staging"')


def test_a_quoted_key_a_number_and_a_bool() -> None:
    assert edit("aws_s3_bucket", "logs", "tags.kubernetes.io/role", "elb", "nlb") == SOURCE.replace(
        b'= "elb"', b'= "nlb"'
    )
    assert edit("aws_instance", "web", "monitoring", False, True) == SOURCE.replace(
        b"monitoring    = false", b"monitoring    = true"
    )


def test_an_added_tag_is_a_new_line_and_a_removed_one_loses_its_line() -> None:
    added = edit("aws_s3_bucket", "logs", "tags.hotfix", None, "manual")
    assert b'    hotfix = "manual"\n  }\n}' in added
    assert added.replace(b'    hotfix = "manual"\n', b"") == SOURCE
    removed = edit("aws_s3_bucket", "logs", "tags.env", "prod", None)
    assert removed == SOURCE.replace(b'    env   = "prod" # changed by hand sometimes\n', b"")


def test_an_attribute_the_code_does_not_set_is_added_before_the_closing_brace() -> None:
    out = edit("aws_s3_bucket", "logs", "force_destroy", None, True)
    assert out == SOURCE.replace(
        b'  }\n}\n\nresource "aws_instance"', b'  }\n  force_destroy = true\n}\n\nresource "aws_instance"'
    )


@pytest.mark.parametrize(
    ("type_", "name", "path", "before", "after", "why"),
    [
        ("aws_s3_bucket", "logs", "tags.owner", "a", "b", "set by an expression (var.owner)"),
        ("aws_instance", "web", "name", "web-prod", "web-dev", "set by an expression"),
        ("aws_instance", "web", "ebs_block_device.0.volume_size", 8, 16, "element of a list or nested block"),
        ("aws_instance", "web", "tags.Owner", None, "me", "written on one line"),
        ("aws_s3_bucket", "logs", "bucket", "(sensitive)", "(sensitive)", "sensitive: never written"),
        ("aws_s3_bucket", "logs", "bucket", "a", "(known after apply)", "not known"),
        ("aws_s3_bucket", "logs", "policy", None, {"Version": "2012"}, "a dict value is not adopted"),
    ],
)
def test_what_cannot_be_adopted_says_why(
    type_: str, name: str, path: str, before: object, after: object, why: str
) -> None:
    hcl = parsed()
    found = find_resource([hcl], type_, name)
    assert found is not None
    with pytest.raises(NotAdoptable, match=re.escape(why)):
        attribute_edit(hcl, found[1], path, before, after)


def test_strings_are_escaped_as_hcl_and_templates_stay_text() -> None:
    assert hcl_literal("x", 'say "hi"\n${var.x} %{if}') == '"say \\"hi\\"\\n$${var.x} %%{if}"'
    assert hcl_literal("x", 3) == "3" and hcl_literal("x", 2.5) == "2.5"
    with pytest.raises(NotAdoptable):
        hcl_literal("x", float("nan"))


def test_hcl_the_parser_cannot_read_is_an_error_naming_the_line() -> None:
    with pytest.raises(HclError, match=r"broken.tf: the HCL parser cannot read it \(line 3\)"):
        HclFile.parse(Path("broken.tf"), b'resource "a" "b" {\n  x = 1\n  y = = 2\n}\n')


def test_the_decision_per_finding() -> None:
    files = [parsed()]
    base = {"id": 1, "module": None, "change": "update"}
    adopt = decide(
        {
            **base,
            "address": "aws_s3_bucket.logs",
            "attributes": [
                {"path": "tags.env", "before": "prod", "after": "staging"},
                {"path": "tags_all.env", "before": "prod", "after": "staging"},
            ],
        },
        files,
    )
    assert (adopt.fix, len(adopt.edits)) == ("adopt", 1)  # tags_all mirrors tags
    variable = decide(
        {
            **base,
            "address": "aws_s3_bucket.logs",
            "attributes": [{"path": "tags.owner", "before": "a", "after": "b"}],
        },
        files,
    )
    assert (variable.fix, variable.why) == (
        "revert",
        "tags.owner is set by an expression (var.owner), not a literal",
    )
    deleted = decide({**base, "address": "aws_s3_bucket.logs", "change": "delete", "attributes": []}, files)
    assert (deleted.fix, deleted.why) == ("revert", "the resource was deleted outside Terraform")
    module = decide({**base, "address": "module.m.aws_s3_bucket.x", "module": "module.m"}, files)
    assert module.fix == "revert" and "module.m" in module.why
    counted = decide({**base, "address": 'aws_s3_bucket.x["a"]'}, files)
    assert counted.fix == "revert" and "for_each" in counted.why


def test_the_body_shows_before_and_after_and_never_a_masked_value_as_anything_else() -> None:
    files = [parsed()]
    adopt = decide(
        {
            "id": 1,
            "module": None,
            "change": "update",
            "address": "aws_s3_bucket.logs",
            "first_seen": "2026-11-28T06:00:00+00:00",
            "attributes": [{"path": "tags.env", "before": "prod", "after": "staging | <b>"}],
        },
        files,
    )
    secret = decide(
        {
            "id": 2,
            "module": None,
            "change": "update",
            "address": "aws_instance.web",
            "attributes": [{"path": "user_data", "before": "(sensitive)", "after": "(sensitive)"}],
        },
        files,
    )
    item = {
        "first_seen": "2026-11-28 06:00:00 UTC",
        "provider_id": None,
        "change": "update",
        "plan": None,
        "risk": "applying overwrites",
    }
    body = render_body(
        {
            "marker": "<!-- nightshift:remediation-x -->",
            "pipeline": "network",
            "subject": "pipeline/1",
            "adopt": [{**item, "address": adopt.address, "attributes": adopt.attributes(), "why": adopt.why}],
            "revert": [
                {**item, "address": secret.address, "attributes": secret.attributes(), "why": secret.why}
            ],
            "revert_command": "terraform apply -target='aws_instance.web'",
            "verification": {"adopted": 1, "summary": "no other change"},
            "tool": "terraform",
            "working_directory": ".",
            "remediation_id": 3,
            "scan_id": 9,
        }
    )
    assert "| `tags.env` | `prod` | `staging \\| &lt;b&gt;` |" in body
    assert "`(sensitive)`" in body and "user_data is sensitive: never written into code" in body
    assert "terraform apply -target='aws_instance.web'" in body
    assert body.startswith("<!-- nightshift:remediation-x -->")
