"""Each analytics answer as a table (the page's table and its CSV download) and as an SVG chart."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from platform_core.analytics.charts import Bar, bar_chart_svg
from platform_core.jobs.charts import line_chart_svg

Table = tuple[list[str], list[list[Any]]]
TOP_SERIES = 6  # categories drawn in the trajectory chart (the table and CSV hold them all)


# ---------------------------------------------------------------- tables
def _funnel_table(a: dict[str, Any]) -> Table:
    groups = [("(all)", a["steps"])] + [(g["value"], g["steps"]) for g in a.get("groups", [])]
    rows = [
        [group, s["step"], s["users"], s["conversion"], s["median_seconds"]]
        for group, steps in groups
        for s in steps
    ]
    return ["group", "step", "users", "conversion", "median_seconds"], rows


def _retention_table(a: dict[str, Any]) -> Table:
    rows = [
        [_iso(c["start"]), c["users"], n, kept] for c in a["cohorts"] for n, kept in enumerate(c["retained"])
    ]
    return ["cohort_start", "cohort_users", "period", "retained"], rows


def _paths_table(a: dict[str, Any]) -> Table:
    return ["path", "sessions"], [[" > ".join(p["path"]), p["sessions"]] for p in a["paths"]]


def _trending_table(a: dict[str, Any]) -> Table:
    rows = [[i["item_id"], i["count"], i["previous_mean"], i["growth"]] for i in a["items"]]
    return ["item_id", "count", "previous_mean", "growth"], rows


def _trajectory_table(a: dict[str, Any]) -> Table:
    rows = [
        [m["month"], m["users"], s["value"], s["weight"], s["share"]]
        for m in a["months"]
        for s in m["shares"]
    ]
    changes = a["changes"]
    for kind in ("risers", "fallers"):
        rows += [
            [f"{changes['from']}→{changes['to']}", kind, c["value"], c["delta"], c["share_to"]]
            for c in changes[kind]
        ]
    return ["month", "users", "value", "weight", "share"], rows


def _impact_table(a: dict[str, Any]) -> Table:
    def row(group: str, version: Any, r: dict[str, Any], diff: dict[str, Any]) -> list[Any]:
        ci, dci = r["ci95"] or [None, None], diff.get("difference_ci95") or [None, None]
        return [
            group,
            version,
            r["users"],
            r["converted"],
            r["rate"],
            *ci,
            diff.get("difference"),
            *dci,
            r.get("ctr"),
        ]

    rows = [row("exposed", None, a["exposed"], a), row("not exposed", None, a["not_exposed"], {})]
    rows += [row("exposed to version", x["model_version"], x, x) for x in a["versions"]]
    header = ["group", "model_version", "users", "converted", "rate", "ci95_low", "ci95_high"]
    return header + ["difference", "difference_ci95_low", "difference_ci95_high", "ctr"], rows


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


TABLES: dict[str, Callable[[dict[str, Any]], Table]] = {
    "funnel": _funnel_table,
    "retention": _retention_table,
    "paths": _paths_table,
    "trending": _trending_table,
    "trajectories": _trajectory_table,
    "impact": _impact_table,
}


# ---------------------------------------------------------------- charts
def _funnel_chart(a: dict[str, Any]) -> str:
    bars = [Bar(f"step {s['step']}", s["users"], note=f"{s['conversion']:.1%}") for s in a["steps"]]
    return bar_chart_svg(bars, title="Users reaching each step", value_format="{:.0f}")


def _retention_chart(a: dict[str, Any]) -> str:
    """Mean retention n periods after the cohort's, weighted by cohort size."""
    kept: dict[int, list[int]] = {}
    for c in a["cohorts"]:
        for n, users in enumerate(c["retained"]):
            kept.setdefault(n, [0, 0])
            kept[n][0] += users
            kept[n][1] += c["users"]
    bars = [Bar(f"{a['period']} {n}", k / total if total else 0.0) for n, (k, total) in sorted(kept.items())]
    return bar_chart_svg(bars, title="Share of the cohorts back n periods later", value_format="{:.1%}")


def _paths_chart(a: dict[str, Any]) -> str:
    bars = [Bar(" > ".join(p["path"]), p["sessions"]) for p in a["paths"]]
    return bar_chart_svg(bars, title="Most frequent paths (sessions)", value_format="{:.0f}")


def _trending_chart(a: dict[str, Any]) -> str:
    bars = [Bar(i["item_id"], i["growth"], note=f"{i['count']} events") for i in a["items"]]
    return bar_chart_svg(bars, title="Growth against the preceding windows", value_format="{:.2f}×")


def _trajectory_chart(a: dict[str, Any]) -> str:
    weight: dict[str, float] = {}
    for m in a["months"]:
        for s in m["shares"]:
            weight[s["value"]] = weight.get(s["value"], 0.0) + s["weight"]
    top = sorted(weight, key=lambda k: (-weight[k], k))[:TOP_SERIES]
    series: dict[str, list[tuple[dt.datetime, float]]] = {k: [] for k in top}
    for m in a["months"]:
        when = dt.datetime.strptime(m["month"], "%Y-%m").replace(tzinfo=dt.UTC)
        shares = {s["value"]: s["share"] for s in m["shares"]}
        for k in top:
            series[k].append((when, shares.get(k, 0.0)))
    return line_chart_svg(series, title=f"Share of weighted events by {a['attribute']} per month")


def _impact_chart(a: dict[str, Any]) -> str:
    def bar(label: str, r: dict[str, Any]) -> Bar | None:
        if r["rate"] is None:
            return None
        return Bar(label, r["rate"], tuple(r["ci95"]), note=f"{r['converted']}/{r['users']}")  # type: ignore[arg-type]

    bars = [bar("exposed", a["exposed"]), bar("not exposed", a["not_exposed"])]
    bars += [bar(f"version {x['model_version']}", x) for x in a["versions"]]
    return bar_chart_svg(
        [b for b in bars if b is not None],
        title="Conversion rate with its 95 % interval",
        value_format="{:.1%}",
    )


CHARTS: dict[str, Callable[[dict[str, Any]], str]] = {
    "funnel": _funnel_chart,
    "retention": _retention_chart,
    "paths": _paths_chart,
    "trending": _trending_chart,
    "trajectories": _trajectory_chart,
    "impact": _impact_chart,
}
