"""The pull request's title, body and commit message: JSON-ish context built in Python, Markdown
rendered by Jinja2 (StrictUndefined: a field the context lacks is an error, not a hole)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

MAX_BODY_CHARS = 60_000  # GitHub refuses bodies over 65,536 characters
MAX_CELL_CHARS = 200
_TEMPLATES = Path(__file__).resolve().parent / "templates"


def _md(text: Any) -> str:
    """Text in Markdown prose: no HTML, no table breaks."""
    return (
        str(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "\\|")
        .replace("\n", " ")
    )


def _cell(value: Any) -> str:
    if value is None:
        return "*(absent)*"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(text) > MAX_CELL_CHARS:
        text = text[: MAX_CELL_CHARS - 1] + "…"
    return "`" + _md(text).replace("`", "'") + "`"


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_TEMPLATES),
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    trim_blocks=False,
)
_ENV.filters["md"] = _md
_ENV.filters["cell"] = _cell


def render_body(context: dict[str, Any]) -> str:
    body = _ENV.get_template("pull_request.md.j2").render(**context)
    if len(body) > MAX_BODY_CHARS:
        note = "\n\n… (cut: the full plan is in the task's artifacts)"
        body = body[: MAX_BODY_CHARS - len(note)] + note
    return body


def title(pipeline: str, adopt: int, revert: int) -> str:
    parts = ([f"adopt {adopt}"] if adopt else []) + ([f"revert {revert}"] if revert else [])
    return f"Fix drift of {pipeline}: {', '.join(parts)} resource(s)"


def commit_message(pipeline: str, fixes: list[dict[str, Any]]) -> str:
    adopt = [f for f in fixes if f["fix"] == "adopt"]
    revert = [f for f in fixes if f["fix"] == "revert"]
    lines = [title(pipeline, len(adopt), len(revert)), ""]
    for fix in adopt:
        lines.append(f"- {fix['address']}: adopt {', '.join(fix['paths'])} (live values)")
    for fix in revert:
        lines.append(f"- {fix['address']}: not changed in code ({fix['why']}); apply the code to revert")
    lines += ["", "Opened by Nightshift drift remediation."]
    return "\n".join(lines)
