"""Named SQL queries, kept in sql/queries/<group>.sql rather than in Python strings.

A file holds blocks, each headed by a line ``-- name: <query_name> --`` and usually a one-line ``--``
description; the block's text up to the next header is the statement. Names are noun first
(``schedule_list``, ``schedule_pause``) so related operations sort together::

    -- name: schedule_list --
    -- every schedule with its target, soonest first
    SELECT ... FROM nightshift.schedule_targets ...

sql/queries/ is not one of the folders migrations apply: these are statements, not objects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

from dispatcher.schema import sql_dir

_HEADER = re.compile(r"^-- name: ([a-z][a-z0-9_]*) --[ \t]*$", re.MULTILINE)


@cache
def load_queries(group: str) -> Mapping[str, str]:
    """The queries of sql/queries/<group>.sql as a read-only {name: statement} mapping."""
    path = sql_dir() / "queries" / f"{group}.sql"
    parts = _HEADER.split(path.read_text())
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{path}: query {name!r} is defined twice")
        queries[name] = body.strip()
    return MappingProxyType(queries)
