"""What terraform fmt, terraform validate and Checkov said about one root, as review problems.
Pure: tool output in, `Problem`s out.

A problem is one thing the pull request should fix: a file that `terraform fmt` would change (with
its diff), a validation error with file:line, or a compliance failure the pull request *introduces*
(a Checkov failure of the head that the merge base does not have). Each becomes a finding of kind
`pr-review` whose fingerprint has no line number: moving the code keeps the finding.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dispatcher.contract import fingerprint

KIND = "pr-review"
MAX_DIFF_CHARS = 6000
_FMT_FILE = re.compile(r"^(?:--- |\+\+\+ )?(?:old/|new/)?(\S+\.(?:tf|tfvars|tftest\.hcl))\s*$", re.MULTILINE)
_ERROR_AT = re.compile(r"on (\S+?) line (\d+)")
# Offline (no platform key) Checkov gives no guideline link: its public policy index lists every check
# with its description (../shared/corpora/terragoat-aws/README.md: guideline is null offline)
POLICY_INDEX = "https://www.checkov.io/5.Policy%20Index/{framework}.html"
_SNIPPET = re.compile(r"^\d+:")  # the quoted source line under a diagnostic


@dataclass
class Problem:
    rule: str  # terraform-fmt, terraform-validate, terraform-init, or a Checkov id (CKV_AWS_20)
    root: str
    message: str
    file: str | None = None  # relative to the repository
    line: int | None = None
    severity: str = "error"
    resource: str | None = None
    guideline: str | None = None
    diff: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or self.root

    def finding(self) -> dict[str, Any]:
        identity = self.resource or self.file or self.root
        summary = self.message if self.rule in ("terraform-validate", "terraform-init") else ""
        return {
            "kind": KIND, "fingerprint": fingerprint(KIND, self.root, self.rule, identity, summary),
            "severity": self.severity, "address": self.resource or self.file or self.root,
            "check_id": self.rule, "type": self.details.get("resource_type"),
            "message": self.message, "root": self.root, "file": self.file, "line": self.line,
            "guideline": self.guideline,
        }


def in_root(root: str, path: str) -> str:
    """A path relative to the root, as the repository names it."""
    return posixpath.normpath(posixpath.join(root, path)) if root != "." else posixpath.normpath(path)


def fmt_problems(root: str, returncode: int | None, stdout: str, stderr: str,
                 relative_to: str | None = None, tool: str = "terraform") -> list[Problem]:
    """`terraform fmt -check -diff -list=true FILES` (or `tofu fmt`): 0 formatted, 3 files to format
    (listed, with diffs), anything else a file that does not parse. File names are relative to
    `relative_to` (fmt's working directory; default the root). The rule stays `terraform-fmt` whichever
    tool ran: it is part of the findings' fingerprints."""
    where = root if relative_to is None else relative_to
    if returncode == 0:
        return []
    if returncode == 3 or (returncode == 1 and not stderr.strip()):
        files = sorted({m for m in _FMT_FILE.findall(stdout)})
        diff = stdout.strip()
        if len(diff) > MAX_DIFF_CHARS:
            diff = diff[:MAX_DIFF_CHARS] + "\n… (diff cut)"
        return [Problem(rule="terraform-fmt", root=root, file=in_root(where, name), severity="low",
                        message=f"not formatted as `{tool} fmt` would write it",
                        diff=diff if index == 0 else None)
                for index, name in enumerate(files or ["."])]
    return parse_errors(root, "terraform-fmt", stderr, relative_to=where)


def parse_errors(root: str, rule: str, stderr: str, relative_to: str | None = None) -> list[Problem]:
    """Terraform's human diagnostics ("Error: Invalid block definition ... on main.tf line 3"): one
    problem per error; file names relative to `relative_to` (default the root)."""
    base = root if relative_to is None else relative_to
    problems = []
    blocks = re.split(r"(?m)^(?:│\s*)?Error: ", stderr)
    for block in blocks[1:]:
        lines = [line.lstrip("│ ").rstrip() for line in block.splitlines()]
        summary = lines[0].strip() if lines else "error"
        where = _ERROR_AT.search(block)
        detail = " ".join(line for line in lines[1:]
                          if line and not line.startswith(("on ", "╵", "╷")) and not _SNIPPET.match(line))
        problems.append(Problem(rule=rule, root=root, message=f"{summary}: {detail}"[:1000].rstrip(": "),
                                file=in_root(base, where.group(1)) if where else None,
                                line=int(where.group(2)) if where else None))
    if not problems and stderr.strip():
        problems.append(Problem(rule=rule, root=root, message=stderr.strip()[-1000:]))
    return problems


def validate_problems(root: str, stdout: str, tool: str = "terraform") -> list[Problem]:
    """`terraform validate -json` (or tofu's, the same format): its error diagnostics with file:line
    (warnings are not problems)."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        return [Problem(rule="terraform-validate", root=root,
                        message=f"{tool} validate printed no JSON: " + stdout.strip()[-500:])]
    problems = []
    for diagnostic in doc.get("diagnostics") or []:
        if diagnostic.get("severity") != "error":
            continue
        where = diagnostic.get("range") or {}
        message = str(diagnostic.get("summary") or "error")
        if diagnostic.get("detail"):
            message += f": {diagnostic['detail']}"
        problems.append(Problem(rule="terraform-validate", root=root, message=message[:1000],
                                file=in_root(root, where["filename"]) if where.get("filename") else None,
                                line=(where.get("start") or {}).get("line")))
    return problems


def new_compliance_failures(root: str, head: Iterable[Mapping[str, Any]],
                            base: Iterable[Mapping[str, Any]]) -> list[Problem]:
    """Checkov findings of the head that the merge base does not have (by check, file and resource):
    old debt is not blamed on the pull request."""
    def key(finding: Mapping[str, Any]) -> tuple[str, str, str]:
        return (str(finding.get("check_id")), str(finding.get("file_path")), str(finding.get("address")))

    old = {key(finding) for finding in base}
    problems = []
    for finding in head:
        if key(finding) in old:
            continue
        details = finding  # dispatcher.compliance.checkov's findings keep Checkov's details flat
        file_path = str(details.get("file_path") or "").lstrip("/")
        lines = details.get("line_range") or [None]
        problems.append(Problem(
            rule=str(finding.get("check_id")), root=root, severity=finding.get("severity") or "medium",
            message=str(details.get("check_name") or finding.get("check_id")),
            file=in_root(root, file_path) if file_path else None, line=lines[0],
            resource=finding.get("address"),
            guideline=details.get("guideline")
            or POLICY_INDEX.format(framework=details.get("check_type") or "terraform"),
            details={"resource_type": finding.get("type")}))
    return problems
