"""`nightshift orgs|repos|pipelines|integrations|suppressions add|list|show|remove`: the inventory.

Each action runs one statement of sql/queries/inventory.sql; the README's "Inventory" section shows
the same in SQL. Lists print a table, or one JSON object per line with --json.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from dispatcher import inventory, scheduling
from dispatcher.cli import add_database_url
from dispatcher.cli.options import future_time, non_empty, positive_int
from dispatcher.cli.output import print_record, print_table
from dispatcher.config import resolve_url
from dispatcher.db import connect
from dispatcher.errors import NotFound

FREQUENCIES = ("UNMONITORED", "HOURLY", "DAILY", "WEEKLY", "MONTHLY")
LIST_LIMIT_HELP = "at most this many rows (default 1000)"


def register(subparsers: argparse._SubParsersAction) -> None:
    _orgs(subparsers)
    _repos(subparsers)
    _pipelines(subparsers)
    _integrations(subparsers)
    _suppressions(subparsers)


def _group(subparsers: argparse._SubParsersAction, name: str, help_text: str, description: str
           ) -> argparse._SubParsersAction:
    parser = subparsers.add_parser(name, help=help_text, description=description)
    return parser.add_subparsers(title="actions", metavar="ACTION", required=True)


def _action(actions: argparse._SubParsersAction, name: str, help_text: str,
            func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
    add_database_url(parser)
    parser.set_defaults(func=func)
    if name == "list":
        parser.add_argument("--json", action="store_true", help="one JSON object per line")
        parser.add_argument("--limit", type=positive_int, default=1000, help=LIST_LIMIT_HELP)
    if name == "show":
        parser.add_argument("--json", action="store_true", help="the row as one JSON object")
    return parser


def _switch(parser: argparse.ArgumentParser, name: str, help_text: str) -> None:
    parser.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=False,
                        help=f"{help_text} (default: off)")


def _show(query: str, what: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        row = inventory.one(resolve_url(args.database_url), query, f"{what} {args.ref}", ref=args.ref)
        print_record(row, as_json=args.json)
        return 0
    return run


def _remove(query: str, what: str, after: str = "") -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        row = inventory.one(resolve_url(args.database_url), query, f"{what} {args.ref}", ref=args.ref)
        print(f"removed {what} {row['id']} ({row['name']}){after}")
        return 0
    return run


def _list(query: str, columns: tuple[str, ...], **filters: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        params: dict[str, Any] = {name: getattr(args, attr) for name, attr in filters.items()}
        found = inventory.rows(resolve_url(args.database_url), query, limit=args.limit, **params)
        print_table(columns, found, as_json=args.json)
        return 0
    return run


def _created(what: str, row: dict[str, Any], label: str) -> None:
    print(f"created {what} {row['id']}: {label}")


# -- organizations ------------------------------------------------------------------------------
def _orgs(subparsers: argparse._SubParsersAction) -> None:
    actions = _group(subparsers, "orgs", "organizations: add, list, show, remove",
                     "Organizations are tenants. Each new one gets a WEEKLY cost-analysis schedule, which "
                     "runs only while --cost is on.")
    add = _action(actions, "add", "create an organization", run_org_add)
    add.add_argument("name", type=non_empty, help="unique name")
    _switch(add, "cost", "cost analysis (its weekly cost-analysis schedule runs)")
    _switch(add, "compliance", "compliance scans of its cloud integrations")
    _switch(add, "auto-remediate", "master switch: remediation pull requests may be opened")
    _action(actions, "list", "every organization", _list(
        "org_list", ("id", "name", "cost", "compliance", "auto_remediate", "repositories", "integrations")))
    show = _action(actions, "show", "one organization", _show("org_show", "organization"))
    show.add_argument("ref", metavar="ID|NAME")
    remove = _action(actions, "remove", "delete an organization with everything it holds",
                     _remove("org_remove", "organization", " and its repositories, pipelines, "
                             "integrations and schedules"))
    remove.add_argument("ref", metavar="ID|NAME")


def run_org_add(args: argparse.Namespace) -> int:
    row = inventory.one(resolve_url(args.database_url), "org_add", "organization", name=args.name,
                        cost=args.cost, compliance=args.compliance, auto_remediate=args.auto_remediate)
    _created("organization", row, row["name"])
    return 0


# -- repositories -------------------------------------------------------------------------------
def _repos(subparsers: argparse._SubParsersAction) -> None:
    actions = _group(subparsers, "repos", "repositories: add, list, show, remove",
                     "Repositories hold IaC code: a git URL or a local path.")
    add = _action(actions, "add", "create a repository", run_repo_add)
    add.add_argument("--org", required=True, metavar="ID|NAME", help="its organization")
    add.add_argument("name", type=non_empty, help="name, unique within the organization")
    add.add_argument("url", type=non_empty, help="git URL, or a local path (relative to the dispatcher)")
    add.add_argument("--branch", default="main", type=non_empty, help="default branch (default main)")
    add.add_argument("--iac-tool", choices=("terraform", "tofu"), default="terraform")
    _switch(add, "pr-review", "review pull requests")
    _switch(add, "auto-remediate", "remediation pull requests (the organization's switch too)")
    listing = _action(actions, "list", "repositories", _list(
        "repo_list", ("id", "organization", "name", "url", "branch", "iac_tool", "pr_review",
                      "auto_remediate"), org="org"))
    listing.add_argument("--org", metavar="ID|NAME", help="only this organization's")
    show = _action(actions, "show", "one repository", _show("repo_show", "repository"))
    show.add_argument("ref", metavar="ID")
    remove = _action(actions, "remove", "delete a repository and its pipelines",
                     _remove("repo_remove", "repository", " and its pipelines"))
    remove.add_argument("ref", metavar="ID")


def run_repo_add(args: argparse.Namespace) -> int:
    url = resolve_url(args.database_url)
    found = inventory.rows(url, "repo_add", org=args.org, name=args.name, repo_url=args.url,
                           branch=args.branch, iac_tool=args.iac_tool, pr_review=args.pr_review,
                           auto_remediate=args.auto_remediate)
    if not found:
        raise NotFound(f"no organization {args.org} (`nightshift orgs list`)")
    _created("repository", found[0], f"{args.name} ({args.url})")
    return 0


# -- pipelines ----------------------------------------------------------------------------------
def _pipelines(subparsers: argparse._SubParsersAction) -> None:
    actions = _group(subparsers, "pipelines", "pipelines (IaC roots): add, list, show, remove",
                     "A pipeline is one IaC root in a repository: a working directory, a workspace, "
                     "var files and the environment variables its plan may see. Its drift scans are "
                     "scheduled with --frequency or `nightshift schedule set pipeline/<id> DAILY`.")
    add = _action(actions, "add", "create a pipeline", run_pipeline_add)
    add.add_argument("--repo", required=True, type=positive_int, metavar="ID", help="its repository")
    add.add_argument("name", type=non_empty, help="name, unique within the repository")
    add.add_argument("--directory", default=".", help="working directory in the repository (default .)")
    add.add_argument("--workspace", default="default", type=non_empty, help="Terraform workspace")
    add.add_argument("--var-file", action="append", default=[], metavar="PATH",
                     help="a -var-file for plan, from the repository root (repeatable)")
    add.add_argument("--env", action="append", default=[], metavar="NAME|GLOB",
                     help="environment variable its plan may see, e.g. TF_VAR_* (repeatable)")
    add.add_argument("--frequency", type=str.upper, choices=FREQUENCIES,
                     help="schedule drift scans at this frequency (default: not scheduled)")
    listing = _action(actions, "list", "pipelines with their drift schedule", _list(
        "pipeline_list", ("id", "repository", "name", "directory", "workspace", "frequency",
                          "next_run_at"), repo="repo"))
    listing.add_argument("--repo", type=positive_int, metavar="ID", help="only this repository's")
    show = _action(actions, "show", "one pipeline", _show("pipeline_show", "pipeline"))
    show.add_argument("ref", metavar="ID")
    remove = _action(actions, "remove", "delete a pipeline and its schedule",
                     _remove("pipeline_remove", "pipeline", " and its schedule"))
    remove.add_argument("ref", metavar="ID")


def run_pipeline_add(args: argparse.Namespace) -> int:
    url = resolve_url(args.database_url)
    row = inventory.one(url, "pipeline_add", "pipeline", repo=args.repo, name=args.name,
                        directory=args.directory, workspace=args.workspace, var_files=args.var_file,
                        env=args.env)
    _created("pipeline", row, f"{args.name} (subject pipeline/{row['id']})")
    if args.frequency:
        with connect(url) as conn:
            state = scheduling.set_frequency(conn, f"pipeline/{row['id']}", args.frequency)
        when = f"{state.next_run_at:%Y-%m-%d %H:%M:%S} UTC" if state.next_run_at else "never"
        print(f"drift-scan {state.frequency}, next run {when}")
    return 0


# -- cloud integrations -------------------------------------------------------------------------
def _integrations(subparsers: argparse._SubParsersAction) -> None:
    actions = _group(subparsers, "integrations", "cloud integrations: add, list, show, remove",
                     "A cloud account whose compliance is scanned. Each new one gets a DAILY "
                     "compliance-scan schedule, which runs only while --compliance is on for it and "
                     "its organization.")
    add = _action(actions, "add", "create a cloud integration", run_integration_add)
    add.add_argument("--org", required=True, metavar="ID|NAME", help="its organization")
    add.add_argument("provider", choices=("aws", "gcp", "azure"))
    add.add_argument("account", type=non_empty, help="account, project or subscription id")
    add.add_argument("--framework", action="append", default=[], metavar="NAME",
                     help="compliance framework, e.g. CIS, SOC2, ISO27001 (repeatable)")
    _switch(add, "compliance", "compliance scans")
    listing = _action(actions, "list", "cloud integrations", _list(
        "integration_list", ("id", "organization", "provider", "account_id", "frameworks", "compliance",
                             "deleted_at"), org="org", deleted="deleted"))
    listing.add_argument("--org", metavar="ID|NAME", help="only this organization's")
    listing.add_argument("--deleted", action="store_true", help="include removed ones")
    show = _action(actions, "show", "one cloud integration", _show("integration_show", "integration"))
    show.add_argument("ref", metavar="ID")
    remove = _action(actions, "remove", "mark a cloud integration deleted (its history is kept)",
                     _remove("integration_remove", "integration", "; its compliance scans stop"))
    remove.add_argument("ref", metavar="ID")


def run_integration_add(args: argparse.Namespace) -> int:
    found = inventory.rows(resolve_url(args.database_url), "integration_add", org=args.org,
                           provider=args.provider, account=args.account, frameworks=args.framework,
                           compliance=args.compliance)
    if not found:
        raise NotFound(f"no organization {args.org} (`nightshift orgs list`)")
    _created("cloud integration", found[0],
             f"{args.provider}:{args.account} (subject cloud_integration/{found[0]['id']})")
    return 0


# -- suppressions -------------------------------------------------------------------------------
def _suppressions(subparsers: argparse._SubParsersAction) -> None:
    actions = _group(subparsers, "suppressions", "suppressions (expected drift, accepted risk)",
                     "A suppression covers findings by globs (* any run, ? one character) on the subject, "
                     "the resource address and the changed attribute paths. Covered findings are "
                     "SUPPRESSED, and come back OPEN at the first scan after it expires.")
    add = _action(actions, "add", "create a suppression", run_suppression_add)
    add.add_argument("--owner", required=True, type=non_empty, help="who accepted it")
    add.add_argument("--reason", required=True, type=non_empty, help="why")
    add.add_argument("--kind", help="finding kind (drift, pending-change, compliance...; default any)")
    add.add_argument("--subject", default="*", metavar="GLOB", help="e.g. pipeline/42 (default *)")
    add.add_argument("--address", default="*", metavar="GLOB", help="e.g. aws_s3_bucket.* (default *)")
    add.add_argument("--attribute", default="*", metavar="GLOB",
                     help="e.g. tags*.* ; other than *, every changed attribute must match (default *)")
    add.add_argument("--expires", type=future_time, metavar="WHEN",
                     help="e.g. 90d, 12h or 2027-01-31 (default: never)")
    listing = _action(actions, "list", "active suppressions", _list(
        "suppression_list", ("id", "kind", "subject", "address", "attribute", "owner", "reason",
                             "expires_at", "findings"), expired="expired"))
    listing.add_argument("--expired", action="store_true", help="include expired ones")
    show = _action(actions, "show", "one suppression", _show("suppression_show", "suppression"))
    show.add_argument("ref", metavar="ID")
    remove = _action(actions, "remove", "delete a suppression",
                     _remove("suppression_remove", "suppression", "; its findings reopen at their next scan"))
    remove.add_argument("ref", metavar="ID")


def run_suppression_add(args: argparse.Namespace) -> int:
    row = inventory.one(resolve_url(args.database_url), "suppression_add", "suppression", kind=args.kind,
                        subject=args.subject, address=args.address, attribute=args.attribute,
                        owner=args.owner, reason=args.reason, expires_at=args.expires)
    _created("suppression", row, f"{args.subject} {args.address} {args.attribute}")
    return 0
