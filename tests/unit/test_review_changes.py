"""Which roots a pull request's changes affect, what fmt/validate said, and the comment."""

from __future__ import annotations

import json

from dispatcher.review.changes import affected_roots, is_iac
from dispatcher.review.render import RootReview, render_comment
from dispatcher.review.tools import (
    Problem,
    fmt_problems,
    new_compliance_failures,
    parse_errors,
    validate_problems,
)

TREE = ["envs/prod/main.tf", "envs/dev/main.tf", "envs/dev/vars.tf", "modules/net/main.tf",
        "modules/net/sub/main.tf", "modules/unused/main.tf", "standalone/main.tf.json"]
SOURCES = {"envs/prod/main.tf": 'module "net" {\n  source = "../../modules/net"\n}\n',
           "envs/dev/main.tf": 'module "net" {\n  source = "../../modules/net"\n}\n'
                               'module "reg" {\n  source = "terraform-aws-modules/vpc/aws"\n}\n',
           "modules/net/main.tf": 'module "sub" {\n  source = "./sub"\n}\n',
           "standalone/main.tf.json": json.dumps({"module": {"x": {"source": "../modules/unused"}}})}


def test_iac_files() -> None:
    assert all(map(is_iac, ["a.tf", "b/c.tf.json", "prod.tfvars", "x.tfvars.json",
                            "d/.terraform.lock.hcl"]))
    assert not any(map(is_iac, ["README.md", "main.tf.bak", "terraform.tfstate", "docs/tf.md"]))


def test_a_root_changes_only_itself() -> None:
    affected = affected_roots(["envs/dev/vars.tf", "README.md"], TREE, SOURCES)
    assert affected.roots == ["envs/dev"] and affected.iac_files == ["envs/dev/vars.tf"]


def test_a_module_change_affects_every_root_that_calls_it_even_through_another_module() -> None:
    affected = affected_roots(["modules/net/sub/main.tf"], TREE, SOURCES)
    assert affected.roots == ["envs/dev", "envs/prod"]
    assert affected.because["envs/prod"] == ["modules/net/sub/main.tf"]
    # a module called from a .tf.json root
    assert affected_roots(["modules/unused/main.tf"], TREE, SOURCES).roots == ["standalone"]


def test_docs_only_is_nothing_to_review() -> None:
    affected = affected_roots(["docs/a.md", "Makefile"], TREE, SOURCES)
    assert affected.roots == [] and affected.iac_files == []


def test_fmt_output() -> None:
    out = "main.tf\n--- old/main.tf\n+++ new/main.tf\n@@ -1 +1 @@\n-a   = 1\n+a = 1\n"
    [problem] = fmt_problems("envs/dev", 3, out, "")
    assert (problem.file, problem.severity) == ("envs/dev/main.tf", "low") and "+a = 1" in str(problem.diff)
    assert fmt_problems("envs/dev", 0, "", "") == []
    stderr = ("╷\n│ Error: Invalid expression\n│\n│   on bad.tf line 2, in resource \"x\" \"y\":\n"
              "│    2:   input =\n│\n│ Expected the start of an expression.\n╵\n")
    [parse] = fmt_problems("envs/dev", 2, "", stderr)
    assert (parse.file, parse.line, parse.severity) == ("envs/dev/bad.tf", 2, "error")
    assert parse.message.startswith("Invalid expression")
    assert parse_errors(".", "terraform-init", "something odd\n")[0].message == "something odd"


def test_validate_json() -> None:
    doc = {"valid": False, "diagnostics": [
        {"severity": "error", "summary": "Reference to undeclared resource", "detail": "no such thing",
         "range": {"filename": "main.tf", "start": {"line": 7}}},
        {"severity": "warning", "summary": "Deprecated", "detail": ""}]}
    [problem] = validate_problems("envs/dev", json.dumps(doc))
    assert (problem.where, problem.message) == ("envs/dev/main.tf:7",
                                                "Reference to undeclared resource: no such thing")
    assert "no JSON" in validate_problems(".", "oops")[0].message


def test_only_new_compliance_failures() -> None:
    old = {"check_id": "CKV_AWS_18", "file_path": "/main.tf", "address": "aws_s3_bucket.logs",
           "line_range": [1, 3], "check_name": "logging", "guideline": "https://docs/18"}
    new = {**old, "address": "aws_s3_bucket.public", "line_range": [5, 7]}
    [problem] = new_compliance_failures("envs/dev", [old, new], [old])
    assert (problem.resource, problem.where, problem.guideline) == (
        "aws_s3_bucket.public", "envs/dev/main.tf:5", "https://docs/18")
    # a finding's identity has no line number: moving the block keeps it
    moved = Problem(**{**problem.__dict__, "line": 50})
    assert moved.finding()["fingerprint"] == problem.finding()["fingerprint"]


def test_the_comment() -> None:
    roots = [RootReview("envs/dev", problems=[
        Problem(rule="terraform-fmt", root="envs/dev", file="envs/dev/main.tf", severity="low",
                message="not formatted", diff="-a   = 1\n+a = 1"),
        Problem(rule="terraform-validate", root="envs/dev", file="envs/dev/main.tf", line=7,
                message="Bad ref"),
        Problem(rule="CKV_AWS_20", root="envs/dev", file="envs/dev/main.tf", line=3, message="public ACL",
                resource="aws_s3_bucket.public", guideline="https://docs.example/20")]),
             RootReview("envs/prod")]
    text = render_comment(head_sha="a" * 40, merge_base="b" * 40, roots=roots, skipped=["Checkov: absent"])
    assert "❌" in text and "1 file to format, 1 validation error, 1 new compliance failure" in text
    assert "```diff\n-a   = 1\n+a = 1\n```" in text and "`envs/dev/main.tf:7` — Bad ref" in text
    assert "[CKV_AWS_20](https://docs.example/20)" in text and "No problem found." in text
    assert "*Not run:* Checkov: absent" in text
    failed = render_comment(head_sha="a" * 40, merge_base=None, roots=[], not_reviewed="repository gone")
    assert "⚠️" in failed and "**Could not review:** repository gone" in failed
