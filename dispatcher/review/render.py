"""The review comment: Markdown rendered with Jinja2 (StrictUndefined: a missing field fails loudly,
not as an empty string on the pull request). Autoescape is off: the output is Markdown, not HTML;
tool output goes inside code spans and fences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from dispatcher.review.plan import headline as plan_headline
from dispatcher.review.plan import listed
from dispatcher.review.tools import Problem


@dataclass
class RootReview:
    path: str
    problems: list[Problem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # the optional plan (dispatcher/review/plan.py): its counts, or {"error": why there is none}
    plan: dict[str, Any] | None = None

    @property
    def plan_line(self) -> str:
        if self.plan is None:
            return ""
        if self.plan.get("error"):
            return f"not available: {self.plan['error']}"
        return plan_headline(self.plan)

    @property
    def plan_resources(self) -> list[tuple[str, list[str]]]:
        return [] if self.plan is None or self.plan.get("error") else list(listed(self.plan))

    @property
    def fmt_files(self) -> list[str]:
        return [f"`{p.file}`" for p in self.problems if p.rule == "terraform-fmt" and p.severity == "low"]


@cache
def _environment() -> Environment:
    return Environment(loader=PackageLoader("dispatcher.review", "templates"), undefined=StrictUndefined,
                       autoescape=False, keep_trailing_newline=True, trim_blocks=False)


def headline(roots: Sequence[RootReview], not_reviewed: str | None) -> tuple[str, str]:
    """(commit status state, the summary line)."""
    counts = {"fmt": 0, "validate": 0, "compliance": 0}
    for root in roots:
        for problem in root.problems:
            if problem.rule == "terraform-fmt" and problem.severity == "low":
                counts["fmt"] += 1
            elif problem.rule.startswith("terraform-"):
                counts["validate"] += 1
            else:
                counts["compliance"] += 1
    if not_reviewed:
        return "error", "could not be reviewed"
    total = sum(counts.values())
    if total == 0:
        return "success", "no problem found"
    parts = []
    if counts["fmt"]:
        parts.append(f"{counts['fmt']} file{'s' if counts['fmt'] != 1 else ''} to format")
    if counts["validate"]:
        parts.append(f"{counts['validate']} validation error{'s' if counts['validate'] != 1 else ''}")
    if counts["compliance"]:
        plural = "s" if counts["compliance"] != 1 else ""
        parts.append(f"{counts['compliance']} new compliance failure{plural}")
    return "failure", ", ".join(parts)


def render_comment(*, head_sha: str, merge_base: str | None, roots: Sequence[RootReview],
                   skipped: Sequence[str] = (), not_reviewed: str | None = None,
                   tool: str = "terraform") -> str:
    state, line = headline(roots, not_reviewed)
    context: dict[str, Any] = {"state": state, "headline": line, "head_sha": head_sha, "tool": tool,
                               "merge_base": merge_base, "roots": roots, "skipped": list(skipped),
                               "not_reviewed": not_reviewed,
                               "summary_line": f"{len(roots)} root(s) reviewed"}
    return _environment().get_template("comment.md.j2").render(context)
