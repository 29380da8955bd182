"""Which IaC files a pull request changes, and which Terraform roots they affect. Pure: paths in,
paths out (the agent reads the .tf files of the head checkout for module sources).

IaC files: *.tf, *.tf.json, *.tfvars, *.tfvars.json, .terraform.lock.hcl. A directory holding .tf or
.tf.json files is a module; a module that another one calls through a local `source = "./..."` or
`"../..."` is a *child* module, every other one is a *root*. The roots a change affects are the
roots whose directory holds a changed IaC file, and the roots that call (directly or through other
modules) a directory holding one. A removed root is not reviewed (nothing is left to check there).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

IAC_SUFFIXES = (".tf", ".tf.json", ".tfvars", ".tfvars.json")
LOCK_FILE = ".terraform.lock.hcl"
# module "x" { source = "../modules/x" } — a local path (registry and git sources are not in the repo)
LOCAL_SOURCE = re.compile(r'^\s*source\s*=\s*"(\.\.?/[^"]*)"', re.MULTILINE)
LOCAL_SOURCE_JSON = re.compile(r'"source"\s*:\s*"(\.\.?/[^"]*)"')


def is_iac(path: str) -> bool:
    name = posixpath.basename(path)
    return name == LOCK_FILE or name.endswith(IAC_SUFFIXES)


def is_module_file(path: str) -> bool:
    return path.endswith((".tf", ".tf.json"))


def directory_of(path: str) -> str:
    return posixpath.dirname(path) or "."


@dataclass
class Affected:
    roots: list[str] = field(default_factory=list)  # directories to review, sorted
    iac_files: list[str] = field(default_factory=list)  # changed IaC files (head paths; removed too)
    # root -> the changed IaC files that made it affected (its own, or of a module it calls)
    because: dict[str, list[str]] = field(default_factory=dict)


def module_calls(sources: Mapping[str, str]) -> dict[str, set[str]]:
    """directory -> the directories its local `module` blocks call, from {path: text} of .tf files."""
    calls: dict[str, set[str]] = {}
    for path, text in sources.items():
        directory = directory_of(path)
        pattern = LOCAL_SOURCE_JSON if path.endswith(".json") else LOCAL_SOURCE
        for source in pattern.findall(text):
            target = posixpath.normpath(posixpath.join(directory, source))
            if not target.startswith(".."):  # leaving the repository: not ours to review
                calls.setdefault(directory, set()).add(target)
    return calls


def affected_roots(changed: Iterable[str], module_files: Iterable[str],
                   sources: Mapping[str, str]) -> Affected:
    """The roots to review for `changed` paths, given every .tf/.tf.json path of the head tree and the
    text of those files (`sources`, for module calls)."""
    iac = sorted({path for path in changed if is_iac(path)})
    modules = {directory_of(path) for path in module_files if is_module_file(path)}
    calls = module_calls(sources)
    children = {target for targets in calls.values() for target in targets}
    roots = sorted(modules - children)
    touched: dict[str, list[str]] = {}
    for path in iac:
        touched.setdefault(directory_of(path), []).append(path)

    result = Affected(iac_files=iac)
    for root in roots:
        reached = _reachable(root, calls)
        files = [path for directory in sorted(reached) for path in touched.get(directory, [])]
        if files:
            result.roots.append(root)
            result.because[root] = files
    return result


def _reachable(root: str, calls: Mapping[str, set[str]]) -> set[str]:
    seen = {root}
    stack = [root]
    while stack:
        for target in calls.get(stack.pop(), ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen
