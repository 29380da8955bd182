"""Helpers of the cost tests: the FOCUS corpus in place, organizations, sums in the database."""

from __future__ import annotations

import json
from collections.abc import Iterator
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


# The columns of the small self-made exports (FOCUS 1.1 names; the ingest maps by name).
FIXTURE_COLUMNS = (
    "BillingAccountId", "SubAccountId", "ProviderName", "ServiceName", "ServiceCategory", "ResourceId",
    "ResourceType", "RegionId", "ChargeCategory", "ChargeFrequency", "BillingCurrency", "BilledCost",
    "EffectiveCost", "ListCost", "PricingQuantity", "PricingUnit", "ConsumedQuantity", "BillingPeriodStart",
    "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd", "CommitmentDiscountId",
    "CommitmentDiscountStatus", "SkuPriceDetails", "x_Note",
)


def line(day: str, cost: str, *, service: str = "AmazonS3", resource: str = "bucket-a",
         currency: str = "USD", consumed: str = "1", account: str = "111", category: str = "Usage",
         service_category: str = "Storage", commitment: str = "", status: str = "",
         hours: str = "", instance_type: str = "", list_cost: str = "") -> dict[str, str]:
    """One daily line item of a self-made export (`day` is YYYY-MM-DD)."""
    from datetime import date, timedelta

    start = date.fromisoformat(day)
    period = start.replace(day=1)
    next_period = (period + timedelta(days=32)).replace(day=1)
    return {
        "BillingAccountId": "999", "SubAccountId": account, "ProviderName": "AWS", "ServiceName": service,
        "ServiceCategory": service_category, "ResourceId": resource, "ResourceType": "thing",
        "RegionId": "eu-west-1", "ChargeCategory": category, "ChargeFrequency": "Usage-Based",
        "BillingCurrency": currency, "BilledCost": cost, "EffectiveCost": cost, "ListCost": list_cost or cost,
        "PricingQuantity": hours or consumed, "PricingUnit": "Hours" if hours else "GB-Month",
        "ConsumedQuantity": consumed, "BillingPeriodStart": f"{period}T00:00:00Z",
        "BillingPeriodEnd": f"{next_period}T00:00:00Z", "ChargePeriodStart": f"{start}T00:00:00Z",
        "ChargePeriodEnd": f"{start + timedelta(days=1)}T00:00:00Z", "CommitmentDiscountId": commitment,
        "CommitmentDiscountStatus": status,
        "SkuPriceDetails": json.dumps({"InstanceType": instance_type}) if instance_type else "",
        "x_Note": "self-made",
    }


def write_export(path: Path, rows: list[dict[str, str]],
                 columns: tuple[str, ...] = FIXTURE_COLUMNS) -> Path:
    import csv

    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_corpus(name: str) -> list[dict[str, str | None]]:
    """A corpus file's rows as dicts, NULL and empty fields as None (the facts script's reading)."""
    import csv

    with corpus_file(name).open(newline="", encoding="utf-8") as fh:
        return [{k: (None if v is None or v.strip() in ("", "NULL") else v) for k, v in row.items()}
                for row in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto_server on a loopback port for the module's tests."""
    from dispatcher.demo.offline_aws import moto_server, moto_server_path

    if moto_server_path() is None:
        pytest.skip("no moto_server (pip install -e '.[dev]' installs it)")
    with moto_server(tmp_path_factory.mktemp("moto")) as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3 in this process talks to a freshly reset moto; returns its endpoint."""
    from dispatcher.demo.offline_aws import reset_moto

    for name, value in {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    reset_moto(moto_endpoint)
    return moto_endpoint
