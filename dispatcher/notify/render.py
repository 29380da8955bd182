"""Outbox rows in, readable messages out: Jinja2 renders the prose, Python builds the structure.

Each template (templates/<name>.j2, overridable by a directory the operator names) defines blocks
rendered one by one: `title` (one line), `intro` (a sentence), and for findings templates `heading`
(a list's heading) and `item` (one finding). The channel formats (channels/) lay the resulting
Message out as Slack blocks, an email or a log line, each escaping for its own medium: the blocks
render plain text, never markup.

StrictUndefined: a template that names a field the payload does not have fails to render, and the
row is marked failed with that error instead of sending a message with a hole in it. Fields a payload
may legitimately lack are filled with None first (DEFAULTS), so templates can test them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.nodes
import jinja2.runtime

from dispatcher.errors import NightshiftError

BlockFunction = Callable[[Any], Iterator[str]]

PACKAGE_TEMPLATES = Path(__file__).resolve().parent / "templates"

# The lists of a findings payload, in the order a reader wants them.
FINDING_LISTS = ("new", "reopened", "resolved", "unsuppressed", "suppressed")
FINDING_FIELDS = ("id", "kind", "address", "type", "change", "check_id", "severity", "status")

# Top-level fields each event's payload may lack (None then), so templates can test them.
DEFAULTS: Mapping[str, tuple[str, ...]] = {
    "scan-failing": ("previous_status", "error", "failing_since", "failed_scans"),
    "scan-recovered": ("previous_status", "error", "failing_since", "failed_scans"),
    "remediation-ready": ("title", "branch", "finding_count", "pr_url"),
}
COMMON_FIELDS = ("subject", "target", "task_kind", "scan_id", "scan_status")

# how long a looked-up template is used before asking the environment again (which reloads an
# edited file): an operator's edit shows in the messages of the next second
TEMPLATE_RECHECK_SECONDS = 1.0


class RenderError(NightshiftError):
    """A template that is missing or does not render with this payload (the row fails, no retry)."""


@dataclass(frozen=True)
class Section:
    heading: str
    lines: tuple[str, ...]
    more: int = 0  # items counted in the payload but not listed in it (cut at notifications.max_findings)


@dataclass(frozen=True)
class Message:
    """One event, rendered: what every channel format lays out."""

    notification_id: int
    template: str
    title: str
    intro: str
    sections: tuple[Section, ...] = ()
    link: str | None = None
    context: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def transitions(self) -> int:
        return sum(len(s.lines) + s.more for s in self.sections) or 1


class Renderer:
    """Renders outbox rows with the package templates, or the operator's where they exist."""

    def __init__(self, templates_dir: Path | None = None, scan_url: str = "") -> None:
        loaders: list[jinja2.BaseLoader] = []
        if templates_dir is not None:
            if not templates_dir.is_dir():
                raise RenderError(f"templates directory {templates_dir} does not exist")
            loaders.append(jinja2.FileSystemLoader(templates_dir))
        loaders.append(jinja2.FileSystemLoader(PACKAGE_TEMPLATES))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            # only the HTML email is markup; every other template renders plain text
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
            keep_trailing_newline=False,
        )
        self.scan_url = scan_url
        self._block_cache: dict[str, tuple[jinja2.Template, dict[str, BlockFunction]]] = {}
        self._templates: dict[str, tuple[float, jinja2.Template]] = {}  # name -> (when asked, template)

    def render(self, notification_id: int, template: str, payload: Mapping[str, Any]) -> Message:
        """The Message of one outbox row; RenderError when its template is missing or fails."""
        try:
            tmpl = self._template(f"{template}.j2")
        except jinja2.TemplateNotFound:
            raise RenderError(f"no template {template!r} (looked for {template}.j2)") from None
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(f"template {template}: syntax error line {exc.lineno}: {exc.message}") from None
        context = _context(template, payload)
        try:
            blocks = self._blocks(tmpl)
            if "title" not in blocks:
                raise RenderError(f"template {template} has no title block")
            jinja_context = tmpl.new_context(context)
            title = _block(blocks["title"], jinja_context)
            intro = _block(blocks["intro"], jinja_context) if "intro" in blocks else ""
            sections = self._sections(blocks, jinja_context, payload)
        except (jinja2.TemplateError, TypeError, KeyError, ValueError) as exc:
            raise RenderError(f"template {template} does not render: {type(exc).__name__}: {exc}") from None
        return Message(
            notification_id=notification_id, template=template, title=_one_line(title), intro=intro.strip(),
            sections=sections, link=self._link(payload), context=_context_line(payload), payload=payload,
        )

    def render_document(self, name: str, messages: Sequence[Message], heading: str) -> str:
        """message.txt.j2 or message.html.j2 over a group of messages (log lines, email parts)."""
        try:
            return self.env.get_template(name).render(messages=messages, heading=heading).strip() + "\n"
        except jinja2.TemplateError as exc:
            raise RenderError(f"template {name} does not render: {exc}") from None

    def _template(self, name: str) -> jinja2.Template:
        """env.get_template, asked at most once a second per name: it checks the file's mtime on every
        call (an edited template is reloaded), a third of the time of rendering a short message."""
        now = time.monotonic()
        cached = self._templates.get(name)
        if cached is not None and now - cached[0] < TEMPLATE_RECHECK_SECONDS:
            return cached[1]
        tmpl = self.env.get_template(name)
        self._templates[name] = (now, tmpl)
        return tmpl

    def _blocks(self, tmpl: jinja2.Template) -> dict[str, BlockFunction]:
        """The template's blocks, with those it inherits (`{% extends %}`) from its parents."""
        assert tmpl.name is not None
        cached = self._block_cache.get(tmpl.name)
        if cached is not None and cached[0] is tmpl:  # the environment reloads a changed file
            return cached[1]
        blocks = self._find_blocks(tmpl)
        self._block_cache[tmpl.name] = (tmpl, blocks)
        return blocks

    def _find_blocks(self, tmpl: jinja2.Template) -> dict[str, BlockFunction]:
        assert self.env.loader is not None and tmpl.name is not None
        source = self.env.loader.get_source(self.env, tmpl.name)[0]
        parent = self.env.parse(source).find(jinja2.nodes.Extends)
        blocks: dict[str, BlockFunction] = {}
        if parent is not None and isinstance(parent.template, jinja2.nodes.Const):
            blocks.update(self._find_blocks(self.env.get_template(parent.template.value)))
        blocks.update(tmpl.blocks)
        return blocks

    def _sections(self, blocks: dict[str, BlockFunction], context: jinja2.runtime.Context,
                  payload: Mapping[str, Any]) -> tuple[Section, ...]:
        if "item" not in blocks or "heading" not in blocks:
            return ()
        counts = payload.get("counts") or {}
        sections = []
        for name in FINDING_LISTS:
            items = [_finding(f) for f in payload.get(name) or []]
            count = max(int(counts.get(name) or 0), len(items))
            if not count:
                continue
            # the row's one context, its loop variables set in place: a derived context per finding
            # (what a {% for %} would make) copies every variable, a third of the rendering time
            context.vars.update(section=name, count=count)
            heading = _block(blocks["heading"], context)
            lines = []
            for f in items:
                context.vars["f"] = f
                lines.append(_one_line(_block(blocks["item"], context)))
            sections.append(Section(heading=_one_line(heading), lines=tuple(lines), more=count - len(lines)))
        return tuple(sections)

    def _link(self, payload: Mapping[str, Any]) -> str | None:
        if payload.get("pr_url"):
            return str(payload["pr_url"])
        if self.scan_url and payload.get("scan_id") is not None:
            return self.scan_url.replace("{scan_id}", str(payload["scan_id"])).replace(
                "{subject}", str(payload.get("subject", "")))
        return None


def counts_phrase(counts: Mapping[str, Any]) -> str:
    """'3 new, 1 resolved' from a payload's counts."""
    parts = [f"{counts[name]} {name}" for name in FINDING_LISTS if counts.get(name)]
    return ", ".join(parts) or "no change"


def _context(template: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = {name: None for name in (*COMMON_FIELDS, *DEFAULTS.get(template, ()))}
    context.update(payload)
    if isinstance(payload.get("counts"), Mapping):
        counts = {name: 0 for name in (*FINDING_LISTS, "open")}
        counts.update(payload["counts"])
        context["counts"] = counts
        context["counts_phrase"] = counts_phrase(counts)
    return context


def _finding(summary: Any) -> dict[str, Any]:
    finding: dict[str, Any] = {name: None for name in FINDING_FIELDS}
    finding["attributes"] = []
    if isinstance(summary, Mapping):
        finding.update(summary)
    return finding


def _block(block: BlockFunction, context: jinja2.runtime.Context) -> str:
    return "".join(block(context))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _context_line(payload: Mapping[str, Any]) -> str:
    parts = [str(payload[key]) for key in ("task_kind", "subject") if payload.get(key)]
    if payload.get("scan_id") is not None:
        parts.append(f"scan {payload['scan_id']}")
    return " · ".join(["Nightshift", *parts])
