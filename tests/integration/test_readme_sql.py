"""Issue 11: every ```sql block of the README runs as written on a fresh database, in order.

A block that cannot run here says so in an HTML comment on the line before it:
<!-- not run: reason -->. Statements on pg_cron's own tables (`cron.job`) run in pg_cron's database,
as the README says they must.
"""

from __future__ import annotations

import re

import psycopg
import pytest

from tests.support.pgserver import ROOT, PgServer

_BLOCK = re.compile(r"(?P<before>[^\n]*)\n```sql\n(?P<body>.*?)```", re.DOTALL)


def sql_blocks() -> list[tuple[int, str]]:
    text = (ROOT / "README.md").read_text()
    found = []
    for match in _BLOCK.finditer(text):
        if "<!-- not run" in match["before"]:
            continue
        found.append((text.count("\n", 0, match.start("body")) + 1, match["body"]))
    return found


def statements(block: str) -> list[str]:
    """A block's statements (split at a ';' that ends a line, comments after it allowed)."""
    parts = re.split(r";[ \t]*(?:--[^\n]*)?\n", block + "\n")
    return [
        p.strip()
        for p in parts
        if p.strip() and not all(line.strip().startswith("--") or not line.strip() for line in p.splitlines())
    ]


def test_the_readme_has_sql_examples() -> None:
    assert len(sql_blocks()) >= 5


def test_every_readme_sql_example_runs_in_order(db_url: str, pg_server: PgServer) -> None:
    with (
        psycopg.connect(db_url, autocommit=True) as conn,
        psycopg.connect(pg_server.url(pg_server.cron_database()), autocommit=True) as cron_conn,
    ):
        for line, block in sql_blocks():
            for statement in statements(block):
                target = cron_conn if re.search(r"\bFROM cron\.job\b", statement) else conn
                try:
                    target.execute(statement)
                except psycopg.Error as exc:
                    pytest.fail(f"README.md line {line}: {statement!r} failed: {exc}")
