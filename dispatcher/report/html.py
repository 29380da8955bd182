"""The report as one self-contained HTML page: inline CSS, a few lines of inline JavaScript (sortable
tables) and charts as inline SVG, so it opens anywhere without a network. The chart geometry is
computed here; templates/report.html.j2 lays it out (Jinja2, autoescaped)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from dispatcher.report.build import Report
from dispatcher.report.terminal import duration, money

# one colour per finding kind, the same in every chart
KIND_COLOURS = {"drift": "#e8590c", "pending-change": "#f59f00", "compliance": "#7048e8", "cost": "#1c7ed6",
                "pr-review": "#0ca678"}
OTHER_COLOUR = "#868e96"
CHART_WIDTH, CHART_HEIGHT, PAD = 560, 150, 28


def render_html(report: Report) -> str:
    env = Environment(loader=PackageLoader("dispatcher.report", "templates"),
                      autoescape=select_autoescape(default=True), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["duration"] = duration
    env.filters["money"] = money
    orgs = [dict(org, trend_chart=trend_chart(org["trend"], report.generated_at.date()),
                 mttr_chart=bar_chart([(r["kind"], r["mttr_seconds"] or 0, duration(r["mttr_seconds"]))
                                       for r in org["mttr"] if r["resolved"]]),
                 posture_chart=bar_chart([(f"{p['integration']} {p['framework']}", float(p["score"] or 0),
                                           "-" if p["score"] is None else f"{p['score']}%")
                                          for p in org["posture"]], maximum=100.0),
                 savings_chart=bar_chart([(f"{s['recommendation']} ({s['currency']})",
                                           float(s["open_monthly_saving"]),
                                           f"{float(s['open_monthly_saving']):,.0f}")
                                          for s in org["savings"]]))
            for org in report.organizations]
    totals = {
        "open": sum(o["kpis"]["open_findings"] for o in orgs),
        "drifting": sum(o["kpis"]["drifting"] for o in orgs),
        "broke": sum(len(o["broke_since_yesterday"]) for o in orgs),
        "overdue": sum(o["kpis"]["overdue"] for o in orgs),
        "failing": sum(o["kpis"]["failing_scans"] for o in orgs),
    }
    return env.get_template("report.html.j2").render(report=report, orgs=orgs, totals=totals,
                                                     colours=KIND_COLOURS, other_colour=OTHER_COLOUR)


def colour(kind: str) -> str:
    return KIND_COLOURS.get(kind, OTHER_COLOUR)


def trend_chart(rows: list[dict[str, Any]], today: date) -> dict[str, Any]:
    """One polyline per finding kind over the last 30 days, on a shared scale."""
    days = [today - timedelta(days=29 - i) for i in range(30)]
    series: dict[str, dict[date, int]] = defaultdict(dict)
    for row in rows:
        series[row["kind"]][row["day"]] = row["open"]
    top = max((v for s in series.values() for v in s.values()), default=0)
    scale = top or 1
    step = (CHART_WIDTH - 2 * PAD) / (len(days) - 1)
    lines = []
    for kind in sorted(series):
        points = " ".join(
            f"{PAD + i * step:.1f},{CHART_HEIGHT - PAD - series[kind].get(d, 0) / scale * (CHART_HEIGHT - 2 * PAD):.1f}"
            for i, d in enumerate(days))
        lines.append({"kind": kind, "colour": colour(kind), "points": points,
                      "last": series[kind].get(today, 0)})
    return {"width": CHART_WIDTH, "height": CHART_HEIGHT, "pad": PAD, "lines": lines, "top": top,
            "first": days[0], "last": days[-1], "empty": not lines}


def bar_chart(bars: list[tuple[str, float, str]], maximum: float | None = None) -> dict[str, Any]:
    """Horizontal bars: (label, value, text shown at the bar's end), longest first unless a maximum is
    given (a percentage)."""
    if maximum is None:
        bars = sorted(bars, key=lambda b: -b[1])
    bars = bars[:8]
    top = maximum or max((b[1] for b in bars), default=0) or 1
    rows = [{"label": label, "width": max(2.0, value / top * 100), "text": text, "y": 8 + i * 26}
            for i, (label, value, text) in enumerate(bars)]
    return {"bars": rows, "height": 16 + len(rows) * 26, "empty": not rows}
