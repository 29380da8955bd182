"""`nightshift frameworks load FILE...` and `nightshift frameworks posture`: framework requirements and
check mappings from the scanners' own files, and where an integration stands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from psycopg.types.json import Jsonb

from dispatcher.cli import add_database_url
from dispatcher.compliance.mappings import read_any
from dispatcher.config import resolve_url
from dispatcher.db import connect


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "frameworks", help="compliance frameworks: load requirements and mappings, show posture",
        description="Framework requirements and scanner check -> requirement mappings, loaded only from "
        "the scanners' own files: Prowler's compliance JSON (prowler/compliance/<provider>/*.json in the "
        "Prowler package) and Checkov's NIST 800-53 references. No mapping is invented.",
    )
    commands = parser.add_subparsers(title="framework commands", metavar="COMMAND", required=True)
    load = commands.add_parser(
        "load", help="load framework files (replaces what the same file loaded before)",
        description="Each FILE is a Prowler compliance file (e.g. cis_3.0_aws.json) or a Checkov "
        "references file (check id -> nist_800_53_r5, with the Checkov source file of each).",
    )
    add_database_url(load)
    load.add_argument("files", nargs="+", type=Path, metavar="FILE")
    load.set_defaults(func=run_load)
    posture = commands.add_parser("posture", help="framework scores per integration, as JSON lines")
    add_database_url(posture)
    posture.set_defaults(func=run_posture)


def run_load(args: argparse.Namespace) -> int:
    frameworks = [read_any(path) for path in args.files]  # every file is read before anything is written
    with connect(resolve_url(args.database_url)) as conn:
        for framework in frameworks:
            row = conn.execute(
                "SELECT requirements, mappings FROM nightshift.load_framework(%s, %s, %s, %s, %s)",
                (framework.source_name, framework.framework, framework.version, framework.provider,
                 Jsonb(framework.requirements)),
            ).fetchone()
            assert row is not None
            print(f"{framework.source_name}: {framework.framework} {framework.version} "
                  f"({framework.provider}): {row[0]} requirements, {row[1]} check mappings")
    return 0


def run_posture(args: argparse.Namespace) -> int:
    with connect(resolve_url(args.database_url)) as conn:
        cur = conn.execute("SELECT to_jsonb(s) FROM nightshift.compliance_scores AS s"
                           " ORDER BY cloud_integration_id, framework, source_name")
        for (row,) in cur:
            print(json.dumps(row, default=str))
    return 0
