"""The `cost-analysis` agent: an organization's weekly cost review over its FOCUS billing exports.

1. Load what is new in each of the organization's cost sources (dispatcher/cost/ingest.py): a file is
   one transaction, so a bad file leaves nothing half-loaded, and its error ends up on the scan.
2. Analyse the last `lookback_days` of the data (SQL in sql/functions/cost_*.sql; rightsizing through
   CloudWatch) for the payload's actions.
3. Report: FAILED_CHECKS with one finding of kind `cost` per recommendation, CLEAN without any, ERROR
   when a source could not be read or the organization has none (an ERROR scan resolves nothing).

The agent gets no database URL: the dispatcher hands it a CostLoader (dispatcher/cost/loader.py),
sessions as the least-privileged role nightshift_cost_loader that may load billing rows and run the
cost analyses, nothing else; the findings go back through the result like every agent's.
`auto_create_pr` is recorded in the summary; no remediation exists for cost yet, so nothing acts on it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, ClassVar

from dispatcher.agents import register
from dispatcher.agents.base import Agent, AgentContext, AgentResult, ScanReport
from dispatcher.cost.analysis import UnknownAction, analyse, normalise_actions
from dispatcher.cost.ingest import CostIngestError, FileResult, ingest_source, organization_sources
from dispatcher.cost.loader import CostLoader

DEFAULT_LOOKBACK_DAYS = 30


@register("cost-analysis")
class CostAnalysisAgent(Agent):
    needs_targets: ClassVar[bool] = True
    needs_workdir: ClassVar[bool] = False
    needs_cost_loader: ClassVar[bool] = True
    default_timeout: ClassVar[float] = 3600.0

    async def run(self, ctx: AgentContext) -> AgentResult:
        if ctx.cost_loader is None:  # run outside the dispatcher that provides it
            return AgentResult(ok=False, retry=False, error="cost-analysis: no cost loader was provided")
        report = await asyncio.to_thread(run_analysis, ctx.task.payload, ctx.targets, loader=ctx.cost_loader)
        return AgentResult(ok=True, summary=report.summary, scan=report)


def run_analysis(payload: dict[str, Any], targets: dict[str, Any], *, loader: CostLoader,
                 now: datetime | None = None, clients: Any = None) -> ScanReport:
    started = datetime.now(UTC)
    organization = targets.get("organization") or {}
    org_id, org_name = organization.get("id"), organization.get("name")
    summary: dict[str, Any] = {"organization": org_name,
                               "auto_create_pr": bool(payload.get("auto_create_pr")),
                               "auto_create_pr_note": "recorded only: cost has no remediation yet"}
    try:
        actions = normalise_actions(payload.get("actions"))
        lookback = int(payload.get("lookback_days") or payload.get("lookbackDays") or DEFAULT_LOOKBACK_DAYS)
    except (UnknownAction, ValueError, TypeError) as exc:
        return ScanReport(status="ERROR", summary=summary, error=str(exc), started_at=started)
    summary.update(actions=actions, lookback_days=lookback)
    if org_id is None:
        return ScanReport(status="ERROR", summary=summary, error="the task has no organization",
                          started_at=started)
    with loader.connect() as conn:
        sources = organization_sources(conn, org_id)
        if not sources:
            return ScanReport(status="ERROR", summary=summary, started_at=started, error=(
                f"organization {org_name!r} has no cost sources: add one with "
                f"`nightshift cost ingest PATH|s3://BUCKET/PREFIX --org {org_name}`"))
        errors: list[str] = []
        loaded: list[FileResult] = []
        for source in sources:
            try:
                loaded += ingest_source(conn, source)
            except CostIngestError as exc:
                errors.append(str(exc))
        summary["ingest"] = {"files_loaded": sum(r.status == "loaded" for r in loaded),
                             "files_unchanged": sum(r.status == "unchanged" for r in loaded),
                             "rows_loaded": sum(r.rows for r in loaded if r.status == "loaded"),
                             "errors": errors}
        analysis = analyse(conn, org_id, lookback_days=lookback, actions=actions,
                           now=now or datetime.now(UTC), clients=clients)
    summary.update(analysis.summary)
    if errors:
        # what could be analysed is reported, but an ERROR scan resolves nothing
        return ScanReport(status="ERROR", summary=summary, findings=analysis.findings, started_at=started,
                          error="; ".join(errors))
    return ScanReport(status="FAILED_CHECKS" if analysis.findings else "CLEAN", summary=summary,
                      findings=analysis.findings, started_at=started)
