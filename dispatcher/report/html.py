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
CHART_WIDTH, CHART_HEIGHT, PAD = 560, 150, 36
ATTENTION_ROWS = 20


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
    attention = needs_attention(report)
    return env.get_template("report.html.j2").render(
        report=report, orgs=orgs, totals=totals, attention=attention[:ATTENTION_ROWS],
        attention_more=max(0, len(attention) - ATTENTION_ROWS))


def needs_attention(report: Report) -> list[dict[str, Any]]:
    """The targets someone should look at this morning, the most urgent first: broke since yesterday,
    failing to scan, overdue."""
    rows = []
    for org in report.organizations:
        broke = {(t["subject"], t["kind"]) for t in org["broke_since_yesterday"]}
        for t in org["targets"]:
            reasons = []
            if (t["subject"], t["kind"]) in broke:
                reasons.append("broke since yesterday")
            if t["error_streak"]:
                reasons.append(f"{t['error_streak']} failed scans in a row")
            if t["overdue"]:
                reasons.append("overdue")
            if reasons:
                rows.append(dict(t, organization=org["name"], organization_id=org["id"],
                                 why=", ".join(reasons),
                                 urgency=(len(reasons), t["open_findings"])))
    rows.sort(key=lambda t: (t["urgency"][0], t["urgency"][1]), reverse=True)
    return rows


def colour(kind: str) -> str:
    return KIND_COLOURS.get(kind, OTHER_COLOUR)


def trend_chart(rows: list[dict[str, Any]], today: date) -> dict[str, Any]:
    """Open findings per day of the last 30, stacked by kind: each kind an area on top of the ones
    before it, so the top edge is the total."""
    days = [today - timedelta(days=29 - i) for i in range(30)]
    series: dict[str, dict[date, int]] = defaultdict(dict)
    for row in rows:
        series[row["kind"]][row["day"]] = row["open"]
    kinds = sorted(series, key=lambda k: -sum(series[k].values()))  # the largest at the bottom
    totals = [sum(series[k].get(d, 0) for k in kinds) for d in days]
    top = max(totals, default=0)
    scale = (CHART_HEIGHT - 2 * PAD) / (top or 1)
    step = (CHART_WIDTH - 2 * PAD) / (len(days) - 1)
    xs = [PAD + i * step for i in range(len(days))]
    base = [0] * len(days)
    areas = []
    for kind in kinds:
        upper = [b + series[kind].get(d, 0) for b, d in zip(base, days, strict=True)]
        edge = [f"{x:.1f},{CHART_HEIGHT - PAD - u * scale:.1f}" for x, u in zip(xs, upper, strict=True)]
        floor = [f"{x:.1f},{CHART_HEIGHT - PAD - b * scale:.1f}" for x, b in zip(xs, base, strict=True)]
        areas.append({"kind": kind, "colour": colour(kind), "polygon": " ".join(edge + floor[::-1]),
                      "edge": " ".join(edge), "last": series[kind].get(today, 0)})
        base = upper
    return {"width": CHART_WIDTH, "height": CHART_HEIGHT, "pad": PAD, "areas": areas, "top": top,
            "total": totals[-1] if totals else 0, "first": days[0], "last": days[-1], "empty": not areas}


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
