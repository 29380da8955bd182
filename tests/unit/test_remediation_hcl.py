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
    block_edits,
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
    return apply_edits(hcl.source, block_edits(hcl, found[1], [(path, before, after)]))


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
        ("aws_instance", "web", "ebs_block_device.0.volume_size", 10, 16, "does not map onto one ebs_block"),
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
        block_edits(hcl, found[1], [(path, before, after)])


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


# --- maps, lists and nested blocks of literals -----------------------------------------------------------

NETWORK = b"""resource "aws_security_group" "web" {
  name = "web" # the web tier
  tags = {
    env  = "prod"
    team = "web" # who to call
  }
  # ssh from the office only
  ingress {
    from_port   = 22 # ssh
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/16", "10.1.0.0/16"] # office, vpn
  }

  ingress {
    from_port = 443
    to_port   = 443
    protocol  = "tcp"
    cidr_blocks = [
      "0.0.0.0/0", # the world
    ]
  }
}

resource "aws_security_group" "dyn" {
  name = "dyn"
  dynamic "ingress" {
    for_each = var.ports
    content {
      from_port = ingress.value
    }
  }
  ips  = [for i in var.ips : i]
  more = concat(["a"], ["b"])
  list = [local.first, "b"]
}

resource "aws_security_group" "one" {
  ingress {
    from_port   = 22
    to_port     = 22
    cidr_blocks = ["10.0.0.0/16"] # office
  }
  egress {
    cidr_blocks = [
      "0.0.0.0/0", # the world
    ]
  }
}

resource "aws_security_group" "twins" {
  ingress {
    from_port = 80
    to_port   = 80
  }
  ingress {
    from_port = 80
    to_port   = 80
  }
}
"""


def network_edit(name: str, *changes: tuple[str, object, object]) -> bytes:
    hcl = HclFile.parse(Path("network.tf"), NETWORK)
    found = find_resource([hcl], "aws_security_group", name)
    assert found is not None
    return apply_edits(hcl.source, block_edits(hcl, found[1], list(changes)))


def test_map_keys_changed_added_and_removed_together_touch_only_their_lines() -> None:
    out = network_edit(
        "web", ("tags.env", "prod", "staging"), ("tags.team", "web", None), ("tags.cost", None, "shared")
    )
    assert out == NETWORK.replace(
        b'    env  = "prod"\n    team = "web" # who to call\n',
        b'    env  = "staging"\n    cost = "shared"\n',
    )


def test_a_map_the_code_does_not_write_is_added_once_with_all_its_keys() -> None:
    hcl = HclFile.parse(Path("main.tf"), b'resource "a" "b" {\n  name = "x"\n}\n')
    found = find_resource([hcl], "a", "b")
    assert found is not None
    out = apply_edits(hcl.source, block_edits(hcl, found[1], [("tags.a", None, "1"), ("tags.b", None, "2")]))
    assert out == b'resource "a" "b" {\n  name = "x"\n  tags = {\n    a = "1"\n    b = "2"\n  }\n}\n'


def test_a_port_inside_the_one_ingress_block_that_holds_the_applied_values() -> None:
    # the plan's set index (1) is not the code's order: the block is found by its applied values
    out = network_edit("web", ("ingress.1.from_port", 22, 2222), ("ingress.1.to_port", 22, 2222))
    assert out == NETWORK.replace(b"from_port   = 22 # ssh\n    to_port     = 22\n",
                                  b"from_port   = 2222 # ssh\n    to_port     = 2222\n")


def test_a_list_of_literals_gains_loses_and_changes_elements_in_place() -> None:
    # only a new value: it maps onto the resource's one ingress block
    appended = network_edit("one", ("ingress.0.cidr_blocks.1", None, "10.2.0.0/16"))
    assert appended == NETWORK.replace(
        b'["10.0.0.0/16"] # office', b'["10.0.0.0/16", "10.2.0.0/16"] # office'
    )
    removed = network_edit("web", ("ingress.0.cidr_blocks.0", "10.0.0.0/16", None))
    assert removed == NETWORK.replace(b'["10.0.0.0/16", "10.1.0.0/16"]', b'["10.1.0.0/16"]')
    last = network_edit("web", ("ingress.0.cidr_blocks.1", "10.1.0.0/16", None))
    assert last == NETWORK.replace(b'["10.0.0.0/16", "10.1.0.0/16"]', b'["10.0.0.0/16"]')
    # a multi-line list: a new line, the comment of the element before it stays
    multi = network_edit("one", ("egress.0.cidr_blocks.1", None, "::/0"))
    tail = b'\n    ]\n  }\n}\n\nresource "aws_security_group" "twins"'
    assert multi == NETWORK.replace(
        b'      "0.0.0.0/0", # the world' + tail, b'      "0.0.0.0/0", # the world\n      "::/0",' + tail
    )
    changed = network_edit("web", ("ingress.1.cidr_blocks.0", "0.0.0.0/0", "10.9.0.0/16"))
    tail = b'\n    ]\n  }\n}\n\nresource "aws_security_group" "dyn"'
    world = b'"0.0.0.0/0", # the world'
    assert changed == NETWORK.replace(world + tail, b'"10.9.0.0/16", # the world' + tail)


def test_a_block_removed_outside_terraform_loses_its_lines() -> None:
    gone = [("ingress.0." + k, v, None) for k, v in
            (("from_port", 443), ("to_port", 443), ("protocol", "tcp"), ("cidr_blocks.0", "0.0.0.0/0"))]
    out = network_edit("web", *gone)
    start = NETWORK.index(b"  ingress {\n    from_port = 443")
    end = NETWORK.index(b"  }\n", start) + 4
    assert out == NETWORK[:start] + NETWORK[end:]


def test_a_top_level_list_of_literals() -> None:
    source = b'resource "a" "b" {\n  cidr_blocks = ["10.0.0.0/16"] # vpc\n}\n'
    hcl = HclFile.parse(Path("main.tf"), source)
    found = find_resource([hcl], "a", "b")
    assert found is not None
    out = apply_edits(source, block_edits(hcl, found[1], [("cidr_blocks.0", "10.0.0.0/16", "10.8.0.0/16"),
                                                          ("cidr_blocks.1", None, "10.9.0.0/16")]))
    assert out == b'resource "a" "b" {\n  cidr_blocks = ["10.8.0.0/16", "10.9.0.0/16"] # vpc\n}\n'


@pytest.mark.parametrize(
    ("name", "changes", "why"),
    [
        ("dyn", [("ingress.0.from_port", 22, 23)], "ingress is written by a dynamic block"),
        ("dyn", [("ips.0", "a", "b")], "ips is set by an expression ([for i in var.ips : i])"),
        ("dyn", [("more.1", "b", "c")], "more is set by an expression (concat("),
        ("dyn", [("list.1", "b", "c")], "list has an element set by an expression (local.first)"),
        ("twins", [("ingress.0.from_port", 80, 81)], "does not map onto one ingress block (2 of 2"),
        ("web", [("ingress.2.from_port", None, 8080), ("ingress.2.to_port", None, 8080)],
         "ingress.2: a block added outside Terraform (or values added to one of 2 ingress blocks)"),
        ("web", [("ingress.0.cidr_blocks.0", "192.168.0.0/16", "10.0.0.0/8")],
         "does not map onto one ingress block (0 of 2"),
        ("web", [("ingress.0.description", "(sensitive)", "(sensitive)")], "sensitive: never written"),
    ],
)
def test_what_stays_a_revert_and_why(name: str, changes: list[tuple[str, object, object]], why: str) -> None:
    with pytest.raises(NotAdoptable, match=re.escape(why)):
        network_edit(name, *changes)
