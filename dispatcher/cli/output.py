"""How list and show commands print: a table (rich) for people, JSON lines for programs.

Tables never cut a value: a long kind or subject widens its column. When stdout is not a terminal
the table is as wide as its content, so `| grep` sees whole lines.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

# a table with more columns than a terminal is wide would otherwise wrap inside its cells
_PIPE_WIDTH = 10_000


def console() -> Console:
    terminal = sys.stdout.isatty()
    return Console(file=sys.stdout, width=None if terminal else _PIPE_WIDTH, soft_wrap=not terminal,
                   highlight=False, markup=False, emoji=False)


def text(value: Any) -> str:
    """A cell: times in UTC to the second, lists joined, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


def print_table(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], *, as_json: bool = False,
                empty: str = "nothing found") -> None:
    """Rows as a table with these columns (dict keys), or every row as one JSON object per line."""
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(dict(row), default=str) + "\n")
        return
    if not rows:
        print(empty, file=sys.stderr)
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column.upper().replace("_", " "), overflow="fold", no_wrap=not sys.stdout.isatty())
    for row in rows:
        table.add_row(*(text(row.get(c)) for c in columns))
    out = console()
    if sys.stdout.isatty():
        out.print(table)
        return
    with out.capture() as captured:  # for a pipe: no padding after the last column
        out.print(table)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def print_record(row: Mapping[str, Any], *, as_json: bool = False) -> None:
    """One row as `key  value` lines, or as one JSON object."""
    if as_json:
        sys.stdout.write(json.dumps(dict(row), default=str, indent=2) + "\n")
        return
    width = max((len(k) for k in row), default=0)
    for key, value in row.items():
        sys.stdout.write(f"{key:<{width}}  {text(value)}\n")
