"""`nightshift drift parse PLAN.json`: the findings of a plan file, one JSON object per line.

Anyone can check the parser on their own plans without a database:

    terraform plan -out=plan.bin && terraform show -json plan.bin > plan.json
    nightshift drift parse plan.json | jq -c '{kind, address, change, attributes: [.attributes[].path]}'
    terraform providers schema -json > schema.json
    nightshift drift parse --schema schema.json --evidence plan.json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import BinaryIO

from dispatcher.drift.plan import PlanError
from dispatcher.drift.plan import read_plan as parse_plan_reading
from dispatcher.drift.schema import ProviderSchemas, SchemaError
from dispatcher.errors import NightshiftError, UsageError

DRIFT_EXIT = 2  # --detailed-exitcode, as terraform plan: 0 clean, 1 error, 2 changes (here: drift)
_ZIP_MAGIC = b"PK\x03\x04"  # a binary plan file (terraform plan -out=...) is a zip archive


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "drift",
        help="drift detection: parse a plan file into findings",
        description="Drift detection with Terraform/OpenTofu plans.",
    )
    commands = parser.add_subparsers(title="drift commands", metavar="COMMAND", required=True)
    parse = commands.add_parser(
        "parse",
        help="print the findings of a `terraform show -json` plan as JSON lines",
        description="Read the JSON of `terraform show -json PLANFILE` (or `tofu show -json`) and print "
        "one finding per line: kind (drift | pending-change), address, module, type, name, provider_id, "
        "change, severity, attributes [{path, before, after}] with sensitive values as \"(sensitive)\", "
        "and the stable fingerprint. Exit status 2 with a one-line error for unreadable or malformed plans "
        "(1 with --detailed-exitcode, where 2 means drift).",
    )
    parse.add_argument("plan", metavar="PLAN.json", help="the plan JSON file, or - for standard input")
    parse.add_argument("--kind", choices=("drift", "pending-change"), help="print only findings of this kind")
    parse.add_argument("--detailed-exitcode", action="store_true",
                       help="like `terraform plan -detailed-exitcode`: exit 0 when the plan shows no drift, "
                       "2 when it shows drift, 1 on an error")
    parse.add_argument("--schema", metavar="SCHEMA.json",
                       help="the output of `terraform providers schema -json` in the same working directory: "
                       "sets are compared by value and computed attributes told apart in refresh-only plans")
    parse.add_argument("--evidence", action="store_true",
                       help="also print the differences that are not findings (lines with \"evidence\": "
                       "reason not-managed-here or json-formatting)")
    parse.set_defaults(func=run_parse)


def run_parse(args: argparse.Namespace) -> int:
    # a bad plan is a usage error (2), except with --detailed-exitcode, where 2 means drift
    error = NightshiftError if args.detailed_exitcode else UsageError
    data = read_plan(args.plan, error)
    name = "standard input" if args.plan == "-" else args.plan
    if data.startswith(_ZIP_MAGIC):
        raise error(f"{name} is a binary plan file; convert it first: "
                    "terraform show -json PLANFILE > plan.json")
    schemas = None
    if args.schema:
        try:
            schemas = ProviderSchemas.from_json(read_plan(args.schema, error))
        except SchemaError as exc:
            raise error(f"{args.schema}: {exc}") from None
    try:
        reading = parse_plan_reading(data, schemas)
    except PlanError as exc:
        raise error(f"{name}: {exc}") from None
    lines = [json.dumps(f.to_json(), ensure_ascii=False) for f in reading.findings
             if args.kind in (None, f.kind)]
    if args.evidence:
        lines += [json.dumps({"evidence": e.to_json()}, ensure_ascii=False) for e in reading.evidence
                  if args.kind in (None, e.kind)]
    sys.stdout.write("".join(line + "\n" for line in lines))  # main() handles a reader that left
    if args.detailed_exitcode and any(f.kind == "drift" for f in reading.findings):
        return DRIFT_EXIT
    return 0


def read_plan(name: str, error: type[NightshiftError] = UsageError) -> bytes:
    try:
        if name == "-":
            stream: BinaryIO = sys.stdin.buffer
            return stream.read()
        with open(name, "rb") as file:
            return file.read()
    except OSError as exc:
        raise error(f"cannot read {name}: {exc.strerror or exc}") from None
