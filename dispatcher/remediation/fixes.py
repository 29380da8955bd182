"""Which honest fix applies to each drift finding, and the code edits of those that are adopted.

adopt   the resource is in the root module, was updated outside Terraform, and every drifted
        attribute is a literal in its block (dispatcher/remediation/hcl.py): a scalar, a key of a map,
        an element of a list of literals, or a value inside a nested block of literals that the change
        maps onto unambiguously. The code takes the live value, byte for byte where the old one was.
revert  everything else (deleted or replaced resources, values from variables, locals, functions,
        for-expressions, modules or dynamic blocks, a block added outside Terraform, a change that fits
        several blocks, sensitive or unknown values): no code changes; the pull request carries the plan
        that re-applies the code, the command and the risk.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dispatcher.remediation.hcl import Edit, HclFile, NotAdoptable, block_edits, find_resource

_ADDRESS = re.compile(r"^(?P<type>[A-Za-z_][A-Za-z0-9_-]*)\.(?P<name>[A-Za-z_][A-Za-z0-9_-]*)$")
RISKS = {
    "delete": "applying re-creates it as a new, empty resource: what the deleted one held is not restored",
    "replace": "applying destroys the live resource and creates it again from the code",
    "update": "applying overwrites the change made outside Terraform (someone may rely on it)",
}


@dataclass
class Fix:
    finding: Mapping[str, Any]
    fix: str  # "adopt" | "revert"
    why: str
    edits: list[tuple[HclFile, Edit]] = field(default_factory=list)
    plan: str | None = None  # the verification plan's text for a reverted resource

    @property
    def address(self) -> str:
        return str(self.finding.get("address") or "")

    def attributes(self) -> list[dict[str, Any]]:
        """The finding's attributes as the body shows them (values already masked by the scan)."""
        return [dict(a) for a in self.finding.get("attributes") or [] if isinstance(a, Mapping)]

    def to_json(self) -> dict[str, Any]:
        return {
            "finding_id": self.finding.get("id"),
            "address": self.address,
            "fix": self.fix,
            "why": self.why,
            "paths": [str(a.get("path")) for a in self.attributes()],
        }


def decide(finding: Mapping[str, Any], files: Sequence[HclFile]) -> Fix:
    change = str(finding.get("change") or "")
    if change != "update":
        kind = {
            "delete": "the resource was deleted outside Terraform",
            "replace": "the resource must be replaced",
        }.get(change, f"a {change or 'unknown'} change")
        return Fix(finding, "revert", kind)
    if finding.get("module"):
        return Fix(
            finding, "revert", f"the resource is in {finding['module']}: its values come from the module"
        )
    match = _ADDRESS.match(str(finding.get("address") or ""))
    if match is None:
        return Fix(finding, "revert", "a counted or for_each instance: its values come from an expression")
    found = find_resource(files, match["type"], match["name"])
    if found is None:
        return Fix(finding, "revert", "its resource block is not in the root module's .tf files")
    hcl, block = found
    attributes = _without_mirrors([a for a in finding.get("attributes") or [] if isinstance(a, Mapping)])
    if not attributes:
        return Fix(finding, "revert", "the scan recorded no attribute to adopt")
    changes = [(str(a.get("path")), a.get("before"), a.get("after")) for a in attributes]
    try:
        edits = [(hcl, edit) for edit in block_edits(hcl, block, changes)]
    except NotAdoptable as exc:
        return Fix(finding, "revert", str(exc))
    return Fix(finding, "adopt", "every drifted attribute is a literal in the code", edits)


def _without_mirrors(attributes: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """tags_all.<key> mirrors tags.<key> (AWS default tags): adopting tags adopts it."""
    paths = {str(a.get("path")) for a in attributes}
    return [
        a
        for a in attributes
        if not (
            str(a.get("path")).startswith("tags_all.")
            and "tags." + str(a.get("path")).removeprefix("tags_all.") in paths
        )
    ]
