"""Read the reporting views into one Report: plain data (dicts, lists), ready for the terminal, the
HTML page and --json alike. Each view is read once for all the organizations reported on."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg.rows import dict_row

from dispatcher.errors import NotFound
from dispatcher.queries import load_queries

MTTR_WINDOWS = (7, 30, 90)
BAD_STATUSES = ("DRIFTED", "FAILED_CHECKS", "ERROR")
SEVERITIES = ("info", "low", "medium", "high", "critical")
# per organization, the sections read from one view each: section -> query name
SECTIONS = {
    "targets": "report_targets",
    "open_summary": "report_open_summary",
    "trend": "report_trend",
    "mttr": "report_mttr",
    "posture": "report_posture",
    "savings": "report_savings",
    "resources": "report_resources",
    "queue": "report_queue",
}
# An overview (a report of many organizations at once) reads only these: each organization's targets
# (status, open findings, overdue, error streak) and queue. The other sections aggregate every finding
# of every organization (1,000,000 of them take seconds per view); one organization's page reads its
# own and takes well under a second (make bench-report).
OVERVIEW_SECTIONS = ("targets", "queue")
# a report of more organizations than this is an overview unless detail is asked for
DETAIL_LIMIT = 5


@dataclass
class Report:
    generated_at: datetime
    mttr_days: int
    organizations: list[dict[str, Any]] = field(default_factory=list)
    # True: only OVERVIEW_SECTIONS were read; the others are empty and their key numbers None
    overview: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"generated_at": self.generated_at, "mttr_days": self.mttr_days, "overview": self.overview,
                "organizations": self.organizations}


def build_report(conn: Any, organization_refs: list[str] | None = None, *,
                 organization_ids: list[int] | None = None, mttr_days: int = 30,
                 detail: bool | None = True) -> Report:
    """The report of the organizations named (ids or names), or of every one. An unknown name is NotFound;
    an empty database gives a report without organizations. detail False: an overview (targets and
    queue only, see OVERVIEW_SECTIONS); None: an overview when more than DETAIL_LIMIT organizations."""
    if mttr_days not in MTTR_WINDOWS:
        raise ValueError(f"mttr_days must be one of {MTTR_WINDOWS}")
    queries = load_queries("report")
    refs = [str(i) for i in organization_ids] if organization_ids is not None else organization_refs
    with conn.cursor(row_factory=dict_row) as cur:
        orgs = cur.execute(queries["report_organizations"], {"refs": refs or None}).fetchall()
        if refs:
            known = {str(o["id"]) for o in orgs} | {o["name"] for o in orgs}
            missing = [r for r in refs if r not in known]
            if missing:
                raise NotFound(f"no organization {', '.join(repr(m) for m in missing)}"
                               " (see `nightshift orgs list`)")
        overview = detail is False or (detail is None and len(orgs) > DETAIL_LIMIT)
        report = Report(generated_at=datetime.now(UTC), mttr_days=mttr_days, overview=overview)
        ids = [o["id"] for o in orgs]
        by_org: dict[int, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        if ids:
            for section, name in SECTIONS.items():
                if overview and section not in OVERVIEW_SECTIONS:
                    continue
                if overview and section == "targets":
                    name = "report_overview_targets"  # the same rows, open findings counted at once
                for row in cur.execute(queries[name], {"orgs": ids, "days": mttr_days}):
                    by_org[row.pop("organization_id")][section].append(row)
    for org in orgs:
        sections = by_org.get(org["id"], {})
        report.organizations.append(_organization(org, {s: sections.get(s, []) for s in SECTIONS},
                                                  overview=overview))
    return report


def _organization(org: dict[str, Any], sections: dict[str, list[dict[str, Any]]], *,
                  overview: bool = False) -> dict[str, Any]:
    targets = sections["targets"]
    drifting = [t for t in targets if t["last_status"] in ("DRIFTED", "FAILED_CHECKS")]
    broke = [t for t in targets
             if t["last_status"] in BAD_STATUSES and t["status_24h_ago"] not in BAD_STATUSES]
    open_total = sum(row["findings"] for row in sections["open_summary"])
    resolved = sum(row["resolved"] for row in sections["mttr"])
    mttr_weighted = sum((row["mttr_seconds"] or 0) * row["resolved"] for row in sections["mttr"])
    posture = sections["posture"]
    scored = [p for p in posture if p["score"] is not None]
    savings: dict[str, float] = defaultdict(float)
    for row in sections["savings"]:
        savings[row["currency"]] += float(row["open_monthly_saving"])
    return {
        "id": org["id"],
        "name": org["name"],
        **sections,
        "drifting_now": drifting,
        "broke_since_yesterday": broke,
        "kpis": {
            "targets": len(targets),
            "open_findings": open_total,
            "critical_high": sum(r["findings"] for r in sections["open_summary"] if r["severity_rank"] >= 3),
            "drifting": len(drifting),
            "overdue": sum(1 for t in targets if t["overdue"]),
            "failing_scans": sum(1 for t in targets if t["error_streak"]),
            "mttr_seconds": round(mttr_weighted / resolved) if resolved else None,
            "resolved": resolved,
            "posture_score": (round(sum(float(p["score"]) for p in scored) / len(scored), 1)
                              if scored else None),
            "monthly_saving": dict(sorted(savings.items())),
        } if not overview else {
            # what the targets tell: their open findings (of the kinds their scans report), the worst
            "targets": len(targets),
            "open_findings": sum(t["open_findings"] for t in targets),
            "worst_severity": max((t["worst_severity"] for t in targets if t["worst_severity"]),
                                  key=SEVERITIES.index, default=None),
            "critical_high": None,
            "drifting": len(drifting),
            "overdue": sum(1 for t in targets if t["overdue"]),
            "failing_scans": sum(1 for t in targets if t["error_streak"]),
            "mttr_seconds": None,
            "resolved": None,
            "posture_score": None,
            "monthly_saving": {},
        },
    }


def worst_targets(report: Report, limit: int = 10) -> list[dict[str, Any]]:
    """Across organizations, the targets with the most open findings (then the longest error streak)."""
    rows = [dict(t, organization=o["name"]) for o in report.organizations for t in o["targets"]
            if t["open_findings"] or t["error_streak"]]
    rows.sort(key=lambda t: (-t["open_findings"], -t["error_streak"], t["target"]))
    return rows[:limit]
