"""One organization's cost analysis: the SQL analyses of sql/functions/cost_*.sql, rightsizing from
CloudWatch, and the findings of kind `cost` they become.

A finding's identity (fingerprint) is the resource and the recommendation (and the currency, since
amounts of different currencies are never one finding); its details carry the estimated monthly saving,
the currency and the evidence. The finding names the Terraform address when a drift scan of the
organization has seen the resource.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads

from dispatcher.cost import rightsizing

FINGERPRINT_VERSION = "cost-v1"
# `commitment-coverage` is the schedule payload's name (sql/data/settings_schedule.sql) of `ri-coverage`
ACTION_ALIASES = {"commitment-coverage": "ri-coverage"}
KNOWN_ACTIONS = ("identify-unused", "rightsizing-recs", "ri-coverage", "anomalies")
DEFAULT_ACTIONS = ("identify-unused", "rightsizing-recs", "ri-coverage", "anomalies")

TITLES = {
    "unused-commitment": "commitment discount partly unused",
    "idle-resource": "resource costs money without usage",
    "low-commitment-utilization": "commitments under-used",
    "low-commitment-coverage": "on-demand spend a commitment could cover",
    "rightsize-instance": "instance larger than its CPU needs",
    "cost-anomaly": "weekly cost far above its usual level",
}


class UnknownAction(ValueError):
    pass


def normalise_actions(actions: list[str] | None) -> list[str]:
    if not actions:
        return list(DEFAULT_ACTIONS)
    out: list[str] = []
    for action in actions:
        name = ACTION_ALIASES.get(action, action)
        if name not in KNOWN_ACTIONS:
            raise UnknownAction(f"unknown cost action {action!r}; known: "
                                f"{', '.join((*KNOWN_ACTIONS, *ACTION_ALIASES))}")
        if name not in out:
            out.append(name)
    return out


def fingerprint(resource: str, recommendation: str, currency: str) -> str:
    return hashlib.sha256("\x1f".join((FINGERPRINT_VERSION, "cost", resource, recommendation, currency))
                          .encode()).hexdigest()


def severity(monthly_saving: Decimal) -> str:
    if monthly_saving >= 1000:
        return "high"
    if monthly_saving >= 100:
        return "medium"
    return "low"


@dataclass
class Analysis:
    organization_id: int
    window_from: datetime | None
    window_to: datetime | None
    actions: list[str]
    findings: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def _json(value: Any) -> Any:
    """Decimals as strings (exact), datetimes as ISO text, for jsonb."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def _loads(data: bytes | str) -> Any:
    """orjson.loads, or json.loads for what orjson refuses and jsonb holds (a number beyond a double)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def data_through(conn: psycopg.Connection, organization_id: int, now: datetime) -> datetime | None:
    """The end of the organization's billing data, or now when the data reaches beyond it."""
    row = conn.execute(
        "SELECT least(max(s.charge_period_end), %s) FROM nightshift.cost_line_summary AS s"
        " WHERE s.source_id IN (SELECT id FROM nightshift.cost_sources WHERE organization_id = %s)",
        (now, organization_id)).fetchone()
    return row[0] if row else None


def analyse(conn: psycopg.Connection, organization_id: int, *, lookback_days: int, actions: list[str],
            now: datetime, clients: Callable[[str, str | None], Any] | None = None) -> Analysis:
    """Run the asked analyses over the last `lookback_days` of the organization's data."""
    # These statements run once a week over millions of rows; JIT compiling them (the nested loops of
    # their small CTEs look expensive to the planner) took longer than running them: 8.8 of 9 s of
    # cost_weekly_anomalies at 200,000 rows. Sorts and hashes of a month of line items fit in 64 MB.
    conn.execute("SET jit = off")
    conn.execute("SET work_mem = '64MB'")
    # the analyses by service and account read the summary: bring it up to date first (a no-op when
    # the ingest already did)
    conn.execute("SELECT nightshift.cost_summarize(%s)", (organization_id,))
    end = data_through(conn, organization_id, now)
    if end is None:
        return Analysis(organization_id, None, None, actions,
                        summary={"line_items": 0, "note": "no billing data loaded for this organization"})
    start = end - timedelta(days=lookback_days)
    result = Analysis(organization_id, start, end, actions)
    cur = conn.cursor(row_factory=dict_row)
    set_json_loads(_loads, cur)  # hundreds of thousands of evidence documents: orjson, not json
    recs = cur.execute(
        "SELECT * FROM nightshift.cost_recommendations(%s, %s, %s, %s)",
        (organization_id, start, end, actions)).fetchall()
    for rec in recs:
        result.findings.append(_finding(
            resource=rec["resource_id"], recommendation=rec["recommendation"], action=rec["action"],
            currency=rec["billing_currency"], saving=rec["monthly_saving"], service=rec["service_name"],
            account=rec["sub_account_id"], evidence_is_json=True,
            evidence={**rec["evidence"], "window_cost": _json(rec["window_cost"])}))
    if "rightsizing-recs" in actions:
        result.summary["rightsizing"] = _rightsizing(cur, result, start, end, lookback_days, clients)
    if "anomalies" in actions:
        _anomalies(cur, result, end)
    result.summary.update(_totals(cur, organization_id, start, end))
    result.summary["top_movers"] = _json(cur.execute(
        "SELECT service_name, sub_account_id, billing_currency, week, previous_cost, cost, change,"
        " change_ratio"
        " FROM nightshift.cost_top_movers(%s, %s, 5) ORDER BY billing_currency, rank",
        (organization_id, end - timedelta(microseconds=1))).fetchall())
    _name_terraform_addresses(cur, result)
    savings: dict[str, Decimal] = defaultdict(Decimal)
    for finding in result.findings:
        savings[finding["currency"]] += Decimal(finding["estimated_monthly_saving"])
    result.summary["estimated_monthly_saving"] = {c: format(v, "f") for c, v in sorted(savings.items())}
    result.summary["recommendations"] = len(result.findings)
    return result


def _finding(*, resource: str, recommendation: str, action: str, currency: str, saving: Decimal | None,
             service: str | None, account: str | None, evidence: dict[str, Any],
             resource_type: str | None = None, evidence_is_json: bool = False) -> dict[str, Any]:
    """A finding of kind `cost`. `evidence_is_json`: it came from jsonb and is JSON already (walking
    it again took a quarter of the analysis at 255,000 recommendations)."""
    saving = (saving or Decimal(0)).quantize(Decimal("0.01"))
    if not evidence_is_json:
        evidence = _json(evidence)
    return {
        "kind": "cost",
        "fingerprint": fingerprint(resource, recommendation, currency),
        "severity": severity(saving),
        "address": None,
        "type": resource_type or evidence.get("resource_type"),
        "provider_id": resource,
        "check_id": recommendation,
        "change": action,
        "title": TITLES.get(recommendation, recommendation),
        "service": service,
        "account": account,
        "estimated_monthly_saving": format(saving, "f"),
        "currency": currency,
        "evidence": evidence,
    }


def _rightsizing(cur: Any, result: Analysis, start: datetime, end: datetime, lookback_days: int,
                 clients: Callable[[str, str | None], Any] | None) -> dict[str, Any]:
    rows = cur.execute(
        "SELECT * FROM nightshift.cost_compute_instances(%s, %s, %s) WHERE provider_name ILIKE 'AWS%%'"
        " AND hourly_rate IS NOT NULL ORDER BY resource_id",
        (result.organization_id, start, end)).fetchall()
    instances = [rightsizing.Instance(r["resource_id"], r["instance_type"], r["region_id"], r["hourly_rate"],
                                      r["billing_currency"], r["hours"]) for r in rows]
    if not instances:
        return {"instances": 0, "missing": [],
                "note": "no AWS compute usage with an instance type in the billing data: "
                        "nothing to rightsize"}
    try:
        outcome = rightsizing.recommend(instances, start=start, end=end,
                                        clients=clients or rightsizing.default_clients())
    except Exception as exc:  # botocore's errors: no credentials, access denied, endpoint down
        reason = f"CloudWatch/EC2 unavailable: {type(exc).__name__}: {exc}"
        return {"instances": len(instances), "recommended": 0,
                "missing": [{"resource_id": "*", "reason": reason}]}
    for rec in outcome.recommendations:
        result.findings.append(_finding(
            resource=rec["resource_id"], recommendation="rightsize-instance", action="rightsizing-recs",
            currency=rec["currency"], saving=rec["monthly_saving"], service="AmazonEC2", account=None,
            resource_type="instance",
            evidence={**rec["evidence"], "from_type": rec["from_type"], "to_type": rec["to_type"],
                      "instance_id": rec["instance_id"]}))
    return {"instances": len(instances), "recommended": len(outcome.recommendations),
            "missing": outcome.missing[:50], "missing_count": len(outcome.missing)}


def _anomalies(cur: Any, result: Analysis, end: datetime) -> None:
    """Anomalies of the latest week of data (cost above its usual level only: a drop saves money)."""
    rows = cur.execute(
        "SELECT * FROM nightshift.cost_weekly_anomalies(%s, %s) AS a"
        " WHERE a.is_anomaly AND a.cost > a.median"
        " AND a.week = date_trunc('week', (%s::timestamptz - interval '1 microsecond')"
        " AT TIME ZONE 'UTC')::date",
        (result.organization_id, end - timedelta(microseconds=1), end)).fetchall()
    for row in rows:
        excess = (row["cost"] - row["median"]) * Decimal(52) / Decimal(12)
        resource = f'{row["service_name"]}/{row["sub_account_id"] or "-"}'
        result.findings.append(_finding(
            resource=resource, recommendation="cost-anomaly", action="anomalies",
            currency=row["billing_currency"], saving=excess, service=row["service_name"],
            account=row["sub_account_id"],
            evidence={"week": row["week"].isoformat(), "cost": row["cost"], "median": row["median"],
                      "mad": row["mad"], "robust_z": row["robust_z"],
                      "saving_basis": "the week's excess over the median, as a monthly amount"}))


def _totals(cur: Any, organization_id: int, start: datetime, end: datetime) -> dict[str, Any]:
    rows = cur.execute(
        "SELECT billing_currency, sum(line_items)::bigint AS n, sum(billed_cost) AS billed,"
        " sum(effective_cost) AS effective FROM nightshift.cost_summary(%s, %s, %s) GROUP BY 1 ORDER BY 1",
        (organization_id, start, end)).fetchall()
    return {
        "window": {"from": start.isoformat(), "to": end.isoformat()},
        "line_items": sum(r["n"] for r in rows),
        "cost_by_currency": {r["billing_currency"]: {"billed": format(r["billed"], "f"),
                                                     "effective": format(r["effective"], "f")} for r in rows},
    }


def _name_terraform_addresses(cur: Any, result: Analysis) -> None:
    ids = sorted({f["provider_id"] for f in result.findings})
    if not ids:
        return
    rows = cur.execute("SELECT * FROM nightshift.cost_terraform_addresses(%s, %s)",
                       (result.organization_id, ids)).fetchall()
    addresses = {r["resource_id"]: r for r in rows}
    for finding in result.findings:
        match = addresses.get(finding["provider_id"])
        if match:
            finding["address"] = match["resource_address"]
            finding["terraform_subject"] = match["subject"]
