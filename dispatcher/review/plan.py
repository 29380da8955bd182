"""The optional plan of a pull-request review, the pure parts: which roots get one (the payload's
`plans`, from nightshift.plans_of_repository: pipelines with pr_plan) and what the plan would do,
counted per root as Terraform counts it ("N to add, N to change, N to destroy").

A plan needs the backend's and the cloud's credentials, so it is off unless a pipeline asks for it; the
payload names the variables the plan may see (env_allowlist), never their values.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dispatcher.drift.plan import planned_changes
from dispatcher.review.tools import parse_errors

MAX_LISTED = 20  # resources named per change in the comment; the counts are always complete


@dataclass(frozen=True)
class PlanSpec:
    """One pipeline whose root is planned in reviews (names only: no value of any variable)."""

    name: str
    working_directory: str
    workspace: str = "default"
    var_files: tuple[str, ...] = ()
    env_allowlist: tuple[str, ...] = ()


class PlanSpecError(ValueError):
    """The payload's `plans` entry is not what nightshift.plans_of_repository writes."""


def plan_specs(plans: Any) -> dict[str, PlanSpec]:
    """root (as the review names it: "." or a normalised relative path) -> its pipeline; the first
    pipeline of a root wins (two pipelines of one root would plan the same code twice)."""
    if plans in (None, []):
        return {}
    if not isinstance(plans, list):
        raise PlanSpecError("the payload's plans is not a list")
    specs: dict[str, PlanSpec] = {}
    for item in plans:
        if not isinstance(item, Mapping):
            raise PlanSpecError("an entry of the payload's plans is not an object")
        directory = item.get("working_directory") or "."
        lists = {key: item.get(key) or [] for key in ("var_files", "env_allowlist")}
        if not isinstance(directory, str) or not all(
                isinstance(v, list) and all(isinstance(x, str) for x in v) for v in lists.values()):
            raise PlanSpecError(f"the plan of pipeline {item.get('name')!r} is malformed")
        root = posixpath.normpath(directory.strip("/")) if directory.strip("/") else "."
        specs.setdefault(root, PlanSpec(
            name=str(item.get("name") or root), working_directory=root,
            workspace=str(item.get("workspace") or "default"),
            var_files=tuple(lists["var_files"]), env_allowlist=tuple(lists["env_allowlist"])))
    return specs


def summarise(plan_json: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """{"add", "change", "destroy", "replace", "resources": {change: [addresses]}} of a plan's JSON
    (`terraform show -json PLANFILE`). A replacement adds and destroys, as Terraform's own count."""
    changes = planned_changes(plan_json)
    by_change: dict[str, list[str]] = {}
    for address, change in changes:
        by_change.setdefault(change, []).append(address)

    def count(change: str) -> int:
        return len(by_change.get(change, []))

    return {"add": count("create") + count("replace"), "change": count("update"),
            "destroy": count("delete") + count("replace"), "replace": count("replace"),
            "resources": {change: addresses[:MAX_LISTED] for change, addresses in sorted(by_change.items())}}


def failure_reason(root: str, stderr: str, exit_code: int | None, tool: str = "terraform") -> str:
    """One readable reason from Terraform's diagnostics (the first error, with file:line when it has
    one); the caller masks it."""
    problems = parse_errors(root, "terraform-plan", stderr)
    if not problems:
        return f"{tool} exited with status {exit_code} and printed no error"
    first = problems[0]
    where = f" ({first.where})" if first.file else ""
    others = len(problems) - 1
    more = f" (and {others} more error{'s' if others > 1 else ''})" if others else ""
    return f"{first.message}{where}{more}"


def headline(summary: Mapping[str, Any]) -> str:
    line = f"{summary['add']} to add, {summary['change']} to change, {summary['destroy']} to destroy"
    return line + (f" ({summary['replace']} replaced)" if summary.get("replace") else "")


def listed(summary: Mapping[str, Any]) -> Sequence[tuple[str, list[str]]]:
    return sorted((summary.get("resources") or {}).items())
