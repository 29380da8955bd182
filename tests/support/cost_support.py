"""Helpers of the cost tests: the FOCUS corpus in place, organizations, sums in the database."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.pgserver import ROOT

FOCUS_DIR = ROOT.parent / "shared" / "corpora" / "focus"
SAMPLE_10 = "focus-1.0-official-sample-1000.csv"
SAMPLE_12 = "focus-1.2-aws-1000.synthetic.csv"


def corpus_file(name: str) -> Path:
    path = FOCUS_DIR / name
    if not path.is_file():
        pytest.skip(f"the FOCUS corpus is not here ({path} is absent): it lives in ../shared/corpora/focus")
    return path


def facts(name: str) -> dict[str, Any]:
    facts_path = corpus_file("facts.json")
    return next(f for f in json.loads(facts_path.read_text()) if f["file"] == name)


def add_organization(conn: psycopg.Connection, name: str = "acme") -> int:
    row = conn.execute("INSERT INTO nightshift.organizations (name, cost_optimization_enabled)"
                       " VALUES (%s, true) RETURNING id", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def total(conn: psycopg.Connection, column: str = "effective_cost", where: str = "true",
          params: tuple[Any, ...] = ()) -> Decimal:
    row = conn.execute(f"SELECT coalesce(sum({column}), 0) FROM nightshift.cost_line_items WHERE {where}",
                       params).fetchone()
    assert row is not None
    return Decimal(row[0])


def count(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM nightshift.cost_line_items").fetchone()
    assert row is not None
    return int(row[0])
