"""The content hash that decides whether a pipeline's code changed since its last Checkov scan."""

from __future__ import annotations

import os
from pathlib import Path

from dispatcher.compliance.tree import tree_hash


def make(root: Path) -> Path:
    (root / "modules" / "net").mkdir(parents=True)
    (root / "main.tf").write_text('resource "aws_s3_bucket" "a" {}\n')
    (root / "modules" / "net" / "vpc.tf").write_text('resource "aws_vpc" "v" {}\n')
    return root


def test_same_content_same_hash_wherever_and_whenever(tmp_path: Path) -> None:
    first, files = tree_hash(make(tmp_path / "a"))
    second = make(tmp_path / "b")
    os.utime(second / "main.tf", (0, 0))
    (second / "main.tf").chmod(0o600)
    assert files == 2 and tree_hash(second) == (first, 2), "times and modes are not content"


def test_checkout_and_tool_state_are_ignored(tmp_path: Path) -> None:
    root = make(tmp_path / "a")
    before = tree_hash(root)
    for state in (".git", ".terraform", "modules/net/.terragrunt-cache"):
        (root / state).mkdir()
        (root / state / "junk").write_text("changes every run\n")
    assert tree_hash(root) == before


def test_any_change_of_a_file_its_name_or_a_new_file_changes_the_hash(tmp_path: Path) -> None:
    root = make(tmp_path / "a")
    seen = {tree_hash(root)[0]}
    (root / "main.tf").write_text('resource "aws_s3_bucket" "b" {}\n')
    seen.add(tree_hash(root)[0])
    (root / "main.tf").rename(root / "buckets.tf")
    seen.add(tree_hash(root)[0])
    (root / "empty.tf").write_text("")
    seen.add(tree_hash(root)[0])
    (root / "link.tf").symlink_to("buckets.tf")
    seen.add(tree_hash(root)[0])
    assert len(seen) == 5
