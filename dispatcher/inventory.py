"""The inventory from Python: organizations, repositories, pipelines, cloud integrations, suppressions,
findings and scans. Each call runs one named query of sql/queries/inventory.sql in its own
transaction and returns rows as dicts; database refusals become NightshiftError lines naming what
was wrong (a duplicate name, a constraint, an unknown organization).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dispatcher.db import connect
from dispatcher.errors import NotFound, UsageError
from dispatcher.queries import load_queries

QUERIES = load_queries("inventory")

# constraint names in messages, as a user would say them
_CONSTRAINTS = {
    "organizations_name_key": "an organization with this name exists already",
    "repositories_organization_id_name_key": "this organization has a repository of this name already",
    "pipelines_repository_id_name_key": "this repository has a pipeline of this name already",
    "cloud_integrations_organization_id_provider_account_id_key":
        "this organization has an integration for this account already",
    "repositories_iac_tool_check": "--iac-tool must be terraform or tofu",
    "cloud_integrations_provider_check": "the provider must be aws, gcp or azure",
    "pipelines_working_directory_check": "--directory must be a relative path inside the repository "
                                         "(no leading / and no ..)",
    "pipelines_repository_id_fkey": "no repository with this id",
}


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except psycopg.errors.IntegrityError as exc:
        name = exc.diag.constraint_name or ""
        raise UsageError(_CONSTRAINTS.get(name) or exc.diag.message_primary or str(exc)) from exc
    except psycopg.errors.NoDataFound as exc:
        raise NotFound(exc.diag.message_primary or str(exc)) from exc
    except (psycopg.errors.DataError, psycopg.errors.RaiseException) as exc:
        message = exc.diag.message_primary or str(exc)
        if exc.diag.message_hint:
            message += f" (hint: {exc.diag.message_hint})"
        raise UsageError(message) from exc


def rows(url: str, query: str, **params: Any) -> list[dict[str, Any]]:
    with connect(url) as conn, _refusals(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(QUERIES[query], params).fetchall()


def one(url: str, query: str, what: str, **params: Any) -> dict[str, Any]:
    """The single row of a show/remove/add query; NotFound naming `what` when there is none."""
    found = rows(url, query, **params)
    if not found:
        raise NotFound(f"no {what}")
    return found[0]
