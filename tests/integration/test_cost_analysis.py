"""Issue 15: the cost analyses in sql/ over loaded line items, checked against sums computed here."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from dispatcher.cost.ingest import ensure_source, ingest_source
from tests.support.cost_support import (
    SAMPLE_12,
    add_organization,
    corpus_file,
    facts,
    line,
    read_corpus,
    write_export,
)

EVER = (datetime.fromisoformat("2000-01-01T00:00:00+00:00"),
        datetime.fromisoformat("2100-01-01T00:00:00+00:00"))


def load(conn: psycopg.Connection, uri: Path | str, org: str = "acme") -> int:
    source = ensure_source(conn, org, str(uri))
    ingest_source(conn, source)
    return source.organization_id


@pytest.fixture
def org12(conn: psycopg.Connection) -> int:
    add_organization(conn)
    return load(conn, corpus_file(SAMPLE_12))


def test_unused_commitments_add_up_to_the_facts(conn: psycopg.Connection, org12: int) -> None:
    rows = conn.execute("SELECT commitment_discount_id, billing_currency, week, unused_cost, unused_rows"
                        " FROM nightshift.cost_unused_commitments(%s, %s, %s)", (org12, *EVER)).fetchall()
    expected = facts(SAMPLE_12)
    assert sum(r[3] for r in rows) == Decimal(expected["unused_commitment_EffectiveCost"])
    assert sum(r[4] for r in rows) == expected["unused_commitment_rows"]
    corpus = read_corpus(SAMPLE_12)
    per_commitment: dict[str, Decimal] = defaultdict(Decimal)
    for r in corpus:
        if r["CommitmentDiscountStatus"] == "Unused":
            per_commitment[str(r["CommitmentDiscountId"])] += Decimal(str(r["EffectiveCost"]))
    mine: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        mine[r[0]] += r[3]
    assert mine == per_commitment


def test_commitment_utilization_and_coverage(conn: psycopg.Connection, org12: int) -> None:
    corpus = read_corpus(SAMPLE_12)
    used: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    unused: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    eligible: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    committed = {r["ServiceName"] for r in corpus if r["CommitmentDiscountId"]}
    for r in corpus:
        key = (str(r["ServiceName"]), str(r["SubAccountId"]))
        cost = Decimal(str(r["EffectiveCost"] or 0))
        if r["CommitmentDiscountStatus"] == "Used":
            used[key] += cost
        elif r["CommitmentDiscountStatus"] == "Unused":
            unused[key] += cost
        if r["ServiceName"] in committed and r["ChargeCategory"] == "Usage" \
                and r["CommitmentDiscountStatus"] != "Unused":
            eligible[key] += cost
    rows = conn.execute(
        "SELECT service_name, sub_account_id, sum(used_cost), sum(unused_cost), sum(eligible_cost),"
        " count(*) FILTER (WHERE utilization_change IS NOT NULL)"
        " FROM nightshift.cost_commitment_coverage(%s, %s, %s) GROUP BY 1, 2", (org12, *EVER)).fetchall()
    assert {(s, a): (u, n, e) for s, a, u, n, e, _ in rows} == {
        k: (used[k], unused[k], eligible[k]) for k in eligible}
    assert all(trend > 0 for *_, trend in rows)  # every series has week-over-week changes
    ratios = conn.execute("SELECT utilization, coverage FROM nightshift.cost_commitment_coverage(%s, %s, %s)"
                          " WHERE used_cost > 0", (org12, *EVER)).fetchall()
    assert ratios and all(0 < u <= 1 and 0 < c <= 1 for u, c in ratios)


def test_top_movers_match_the_weekly_sums(conn: psycopg.Connection, org12: int) -> None:
    corpus = read_corpus(SAMPLE_12)
    week = date(2026, 5, 18)  # ISO 2026-W21, after W20
    change: dict[str, Decimal] = defaultdict(Decimal)
    for r in corpus:
        day = datetime.fromisoformat(str(r["ChargePeriodStart"]).replace("Z", "+00:00")).date()
        monday = day - timedelta(days=day.weekday())
        key = f'{r["ServiceName"]}|{r["SubAccountId"]}'
        if monday == week:
            change[key] += Decimal(str(r["EffectiveCost"] or 0))
        elif monday == week - timedelta(weeks=1):
            change[key] -= Decimal(str(r["EffectiveCost"] or 0))
    top = sorted(change.items(), key=lambda kv: abs(kv[1]), reverse=True)[:5]
    rows = conn.execute("SELECT service_name || '|' || sub_account_id, change, rank"
                        " FROM nightshift.cost_top_movers(%s, %s, 5) ORDER BY rank",
                        (org12, datetime(2026, 5, 20))).fetchall()
    assert [(k, v) for k, v, _ in rows] == top


def test_idle_resources_and_currencies_apart(conn: psycopg.Connection, tmp_path: Path) -> None:
    org = add_organization(conn)
    rows = []
    for day in range(1, 29):
        d = f"2026-02-{day:02d}"
        rows.append(line(d, "0.50", resource="vol-idle", consumed="0", service="AmazonEC2"))
        rows.append(line(d, "2.00", resource="bucket-used", consumed="10"))
        rows.append(line(d, "1.00", resource="bucket-eu", consumed="3", currency="EUR"))
        rows.append(line(d, "0.25", resource="ip-eur-idle", consumed="", currency="EUR", service="AmazonVPC"))
        # used on one day of 28: not idle, its other rows are candidates the used one rules out
        rows.append(line(d, "0.75", resource="vol-used-once", consumed="4" if day == 17 else "0",
                         service="AmazonEBS"))
    load(conn, write_export(tmp_path / "feb.csv", rows))
    idle = conn.execute("SELECT resource_id, billing_currency, cost, charged_rows"
                        " FROM nightshift.cost_idle_resources(%s, %s, %s) ORDER BY 1",
                        (org, *EVER)).fetchall()
    assert idle == [("ip-eur-idle", "EUR", Decimal("7.00"), 28), ("vol-idle", "USD", Decimal("14.00"), 28)]
    recs = conn.execute("SELECT resource_id, recommendation, billing_currency, monthly_saving"
                        " FROM nightshift.cost_recommendations(%s, %s, %s) ORDER BY 1",
                        (org, *EVER)).fetchall()
    # 28 days of data: a month is 30.4375 of them
    assert recs == [("ip-eur-idle", "idle-resource", "EUR", Decimal("7.61")),
                    ("vol-idle", "idle-resource", "USD", Decimal("15.22"))]
    movers = conn.execute("SELECT service_name, billing_currency, change"
                          " FROM nightshift.cost_top_movers(%s, %s)"
                          " ORDER BY 2, 1", (org, datetime(2026, 2, 2))).fetchall()
    # Monday 2 Feb 2026 against the week of 26 Jan (only 1 Feb charged): each currency on its own
    assert movers == [("AmazonS3", "EUR", Decimal("6.00")), ("AmazonVPC", "EUR", Decimal("1.50")),
                      ("AmazonEBS", "USD", Decimal("4.50")), ("AmazonEC2", "USD", Decimal("3.00")),
                      ("AmazonS3", "USD", Decimal("12.00"))]


def test_a_weekly_spike_is_an_anomaly_and_steady_weeks_are_not(conn: psycopg.Connection,
                                                               tmp_path: Path) -> None:
    org = add_organization(conn)
    start = date(2026, 1, 5)  # a Monday
    rows = []
    for week in range(10):
        for day in range(7):
            d = (start + timedelta(weeks=week, days=day)).isoformat()
            # a little noise so the MAD is not zero; week 9 costs five times as much
            cost = Decimal("10") + Decimal(week % 3) / 10
            rows.append(line(d, str(cost * 5 if week == 9 else cost), service="AmazonRDS"))
            rows.append(line(d, str(cost), service="AmazonS3"))
    load(conn, write_export(tmp_path / "q1.csv", rows))
    last = datetime(2026, 3, 9, 12)  # in week 9
    anomalies = conn.execute("SELECT service_name, week, robust_z"
                             " FROM nightshift.cost_weekly_anomalies(%s, %s, 10)"
                             " WHERE is_anomaly", (org, last)).fetchall()
    assert [(s, w) for s, w, _ in anomalies] == [("AmazonRDS", date(2026, 3, 9))]
    assert anomalies[0][2] > 10
    scored = conn.execute("SELECT count(*), count(robust_z)"
                          " FROM nightshift.cost_weekly_anomalies(%s, %s, 10)",
                          (org, last)).fetchone()
    assert scored == (20, 20)
