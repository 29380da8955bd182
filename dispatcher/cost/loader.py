"""The cost-analysis agent's only way to the database: sessions the dispatcher opens for it as the
least-privileged role `nightshift_cost_loader`.

Agents never see the database (DESIGN.md), and the cost agent must still load millions of billing rows
with COPY and run the SQL analyses next to them: shipping the rows through the result path would
move gigabytes through one JSON document. So the dispatcher hands the agent a CostLoader
(AgentContext.cost_loader) instead of a URL: `connect()` opens a session whose role, from its first
statement, is nightshift_cost_loader (libpq `options=-c role=...`), which may COPY into the line
items, keep the manifest, call the partition/ANALYZE functions and run the analyses, and nothing else
(sql/grants/cost_loader.sql): no tasks, findings, schedules, channels, tokens. The findings go back
through the agent's result and record_result, like every agent's.

Where the dispatcher's login may not switch roles (a managed service), give the loader a login of its
own: $NIGHTSHIFT_COST_LOADER_URL (a URL, or a secret reference env:NAME / file:PATH) is used as it is.
The URL is never printed (repr) and never put in an agent's environment.
"""

from __future__ import annotations

import os

import psycopg

from dispatcher.config import resolve_secret
from dispatcher.db import connect

LOADER_ROLE = "nightshift_cost_loader"
LOADER_URL_ENV = "NIGHTSHIFT_COST_LOADER_URL"


class CostLoader:
    __slots__ = ("_set_role", "_url")

    def __init__(self, url: str, *, set_role: bool = True) -> None:
        self._url = url
        self._set_role = set_role

    def __repr__(self) -> str:
        return f"CostLoader(role={LOADER_ROLE})"

    @classmethod
    def for_dispatcher(cls, dispatcher_url: str) -> CostLoader:
        """The loader the dispatcher gives its agents: a login of its own when configured, else the
        dispatcher's login switched to the loader role."""
        own = os.environ.get(LOADER_URL_ENV)
        if own:
            url = resolve_secret(own) if own.startswith(("env:", "file:")) else own
            return cls(url, set_role=False)
        return cls(dispatcher_url)

    def connect(self) -> psycopg.Connection:
        """An autocommit session as nightshift_cost_loader."""
        if self._set_role:
            return connect(self._url, autocommit=True, options=f"-c role={LOADER_ROLE}")
        return connect(self._url, autocommit=True)
