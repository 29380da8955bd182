"""`nightshift cost ingest|report`: FOCUS billing exports and the cost findings, on demand.

    nightshift cost ingest ./exports/ --org acme          # add the folder as acme's cost source, load it
    nightshift cost ingest s3://billing/focus/acme/       # load what is new in a known source
    nightshift cost report --org acme                     # the open cost findings and the savings total
    nightshift cost report --org acme --now               # analyse now, without recording findings
"""

from __future__ import annotations

import argparse
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from dispatcher.cli import add_database_url
from dispatcher.config import resolve_url
from dispatcher.db import connect
from dispatcher.errors import NightshiftError, NotFound, UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cost", help="cost analysis: load FOCUS billing exports, report cost findings",
        description="Cost analysis over FOCUS (FinOps Open Cost and Usage Specification) 1.0-1.2 billing "
        "exports: CSV, CSV.gz or Parquet, in a local folder or under an S3 prefix.")
    commands = parser.add_subparsers(title="cost commands", metavar="COMMAND", required=True)

    ingest = commands.add_parser(
        "ingest", help="load new or changed billing files of a cost source",
        description="Load the FOCUS files of PATH (a file or folder) or s3://BUCKET/PREFIX into "
        "nightshift.cost_line_items, one transaction per file: a file already loaded with the same "
        "checksum is skipped, a changed one replaces the rows of its billing periods, a bad one is "
        "refused whole. With --org the location becomes (or stays) a cost source of that organization; "
        "without it, it must already be one. S3 uses boto3's usual credentials and $AWS_ENDPOINT_URL.")
    add_database_url(ingest)
    ingest.add_argument("uri", metavar="PATH|s3://BUCKET/PREFIX")
    ingest.add_argument("--org", metavar="NAME", help="the organization whose cost source this is")
    ingest.add_argument("--focus-version", choices=("1.0", "1.1", "1.2"),
                        help="declare the files' FOCUS version (default: inferred from the columns)")
    ingest.set_defaults(func=run_ingest)

    report = commands.add_parser(
        "report", help="the cost findings of an organization and the savings total",
        description="A table of the organization's open findings of kind `cost` (from its last "
        "cost-analysis scans) with the estimated monthly saving of each and the total per currency. "
        "--now loads new billing files and analyses them right away instead, recording nothing.")
    add_database_url(report)
    report.add_argument("--org", metavar="NAME", required=True)
    report.add_argument("--now", action="store_true", help="analyse now instead of reading the findings")
    report.add_argument("--lookback-days", type=int, default=30, help="with --now (default 30)")
    report.add_argument("--json", action="store_true", help="one JSON object per finding")
    report.set_defaults(func=run_report)


def run_ingest(args: argparse.Namespace) -> int:
    from dispatcher.cost.ingest import Source, ensure_source, ingest_source

    uri = args.uri if args.uri.startswith("s3://") else str(Path(args.uri).expanduser().resolve())
    with connect(resolve_url(args.database_url), autocommit=True) as conn:
        if args.org:
            source = ensure_source(conn, args.org, uri, args.focus_version)
        else:
            row = conn.execute("SELECT id, organization_id, uri, focus_version FROM nightshift.cost_sources"
                               " WHERE uri = %s ORDER BY id LIMIT 1", (uri,)).fetchone()
            if row is None:
                raise UsageError(f"{args.uri} is not a cost source of any organization; "
                                      "add it with --org NAME")
            source = Source(*row)
            if args.focus_version:
                source = Source(source.id, source.organization_id, source.uri, args.focus_version)
        results = ingest_source(conn, source)
    for result in results:
        if result.status == "loaded":
            print(f"loaded     {result.rows:>10} rows  FOCUS {result.focus_version}  {result.key}")
        else:
            print(f"unchanged  {result.rows:>10} rows  FOCUS {result.focus_version}  {result.key}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    url = resolve_url(args.database_url)
    with connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT id, name FROM nightshift.organizations WHERE name = %s",
                           (args.org,)).fetchone()
        if row is None:
            raise NotFound(f"no organization named {args.org!r}")
        if args.now:
            from dispatcher.agents.cost_analysis import run_analysis
            from dispatcher.cost.loader import CostLoader

            organization = {"organization": {"id": row[0], "name": row[1]}}
            # what the dispatcher gives the agent: sessions as the cost loader role
            scan = run_analysis({"lookback_days": args.lookback_days}, organization,
                                loader=CostLoader.for_dispatcher(url))
            if scan.status == "ERROR" and not scan.findings:
                raise NightshiftError(str(scan.error))
            findings = [_from_agent(f) for f in scan.findings_json()]
        else:
            findings = [_from_row(r) for r in conn.execute(
                "SELECT severity, check_id, coalesce(resource_address, provider_id), details"
                " FROM nightshift.findings WHERE subject = %s AND kind = 'cost' AND status = 'OPEN'",
                (f"organization/{row[0]}",)).fetchall()]
    findings.sort(key=lambda f: (f["currency"], -Decimal(f["saving"]), f["resource"]))
    if args.json:
        for finding in findings:
            print(json.dumps(finding))
        return 0
    print(render(findings))
    return 0


def _from_agent(finding: dict[str, Any]) -> dict[str, Any]:
    return {"severity": finding["severity"], "recommendation": finding["check_id"],
            "resource": finding["address"] or finding["provider_id"],
            "saving": finding["estimated_monthly_saving"], "currency": finding["currency"]}


def _from_row(row: tuple[Any, ...]) -> dict[str, Any]:
    severity, check, resource, details = row
    return {"severity": severity, "recommendation": check, "resource": resource,
            "saving": details.get("estimated_monthly_saving", "0"), "currency": details.get("currency", "?")}


def render(findings: list[dict[str, Any]]) -> str:
    """A plain table, then the savings total per currency (never one sum across currencies)."""
    if not findings:
        return "no open cost findings"
    head = ("SEVERITY", "RECOMMENDATION", "RESOURCE", "SAVING/MONTH", "CURRENCY")
    rows = [(f["severity"], f["recommendation"], _short(f["resource"]), f["saving"], f["currency"])
            for f in findings]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(v).rjust(w) if i == 3 else str(v).ljust(w) for i, (v, w) in
                       enumerate(zip(r, widths, strict=True))).rstrip() for r in [head, *rows]]
    totals: dict[str, Decimal] = {}
    for f in findings:
        totals[f["currency"]] = totals.get(f["currency"], Decimal(0)) + Decimal(f["saving"])
    lines.append("")
    for currency, amount in sorted(totals.items()):
        count = sum(f["currency"] == currency for f in findings)
        plural = "s" if count > 1 else ""
        lines.append(f"total {currency}: {amount:.2f} per month from {count} finding{plural}")
    return "\n".join(lines)


def _short(resource: str, width: int = 72) -> str:
    return resource if len(resource) <= width else "…" + resource[-(width - 1):]
