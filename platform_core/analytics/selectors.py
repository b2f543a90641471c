"""Reads of the analytics app: funnels, retention, paths, trending (docs/analytics.md).

Each selector validates its query against the tenant's domain, builds one SQL
statement (chained CTEs and window functions) and runs it through
``analytics_sql_rows``; the answer is cached by ``analytics_cached`` until its
time range receives events or its short TTL ends.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from domains.base import DomainPlugin
from platform_core.analytics import validation as v
from platform_core.analytics.cache import analytics_cached
from platform_core.analytics.segments import segment_ref_resolve
from platform_core.analytics.sql import TENANT, analytics_sql_rows, dialect
from platform_core.analytics.where import Params, where_compile
from platform_core.plugins.selectors import tenant_plugin_get
from platform_core.tenancy.models import Tenant

MAX_GROUPS = 50  # breakdown groups answered, the largest first
NO_LABEL = "(none)"  # a path step whose event has no item, or an item without the attribute


@dataclass
class _Built:
    """One query under construction: its parameters and the step conditions."""

    plugin: DomainPlugin
    bag: Params = field(default_factory=Params)
    needs_item: bool = False
    types: str = ""  # the bound event types a query reads, e.g. "%(p0)s, %(p3)s"

    def condition(self, *, type_: str, where: str | None, params: dict[str, Any], name: str) -> str:
        """``e.type = … AND <where>`` for one step (the where compiled to SQL)."""
        v.event_type_check(self.plugin, type_, field=f"{name}.type")
        test = f"e.type = {self.bag.bind(type_)}"
        if where:
            context = next(t.context for t in self.plugin.event_types if t.name == type_)
            sql = where_compile(
                expression=where,
                item_schema=self.plugin.item_schema,
                context_schema=context,
                params=params,
                bag=self.bag,
                sql=dialect(),
                domain=self.plugin.id,
                field=f"{name}.where",
            )
            self.needs_item = self.needs_item or "i.attributes" in sql
            test = f"{test} AND {sql}"
        return test


# ============================================================== funnels
def funnel_compute(*, tenant: Tenant, query: dict[str, Any]) -> dict[str, Any]:
    """Ordered funnel: per step the users who reached it, conversion from step 0, median seconds.

    Args:
        query: ``FunnelInput``'s validated data (steps, window, exclusions, breakdown, from, to).
    """
    plugin = tenant_plugin_get(tenant=tenant)
    start, stop = v.range_check(query.get("from"), query.get("to"))
    window = v.duration_parse(query.get("window", "7d"), field="window")
    breakdown = v.breakdown_parse(plugin, query.get("breakdown"))
    built = _Built(plugin=plugin)
    flags = [
        built.condition(
            type_=s["type"], where=s.get("where"), params=query["filter_params"], name=f"steps[{i}]"
        )
        for i, s in enumerate(query["steps"])
    ]
    exclusions = _exclusions_check(query.get("exclusions") or [], n_steps=len(flags))
    xflags = [
        built.condition(
            type_=x["type"], where=x.get("where"), params=query["filter_params"], name=f"exclusions[{i}]"
        )
        for i, x in enumerate(exclusions)
    ]
    seconds = int(window.total_seconds())
    types = sorted({s["type"] for s in query["steps"]} | {x["type"] for x in exclusions})
    built.types = ", ".join(built.bag.bind(t) for t in types)  # only these events are read
    sql = _funnel_sql(
        built=built, flags=flags, xflags=xflags, exclusions=exclusions, seconds=seconds, breakdown=breakdown
    )
    d = dialect()
    params = {**built.bag.values, "start": d.when(start), "to": d.when(stop), "stop": d.when(stop + window)}
    if breakdown is not None and breakdown.entity != "segment":
        params["bkey"] = breakdown.name

    def compute() -> dict[str, Any]:
        rows = analytics_sql_rows(tenant=tenant, sql=sql, params=params)
        return _funnel_answer(rows=rows, n_steps=len(flags), breakdown=breakdown)

    answer = analytics_cached(
        tenant=tenant, kind="funnel", query=query, start=start, stop=stop + window, compute=compute
    )
    return {"from": start, "to": stop, "window": query.get("window", "7d"), **answer}


def _exclusions_check(exclusions: list[dict[str, Any]], *, n_steps: int) -> list[dict[str, Any]]:
    out = []
    for i, x in enumerate(exclusions):
        after, before = x.get("after_step", 0), x.get("before_step")
        before = n_steps - 1 if before is None else before
        if after >= n_steps - 1 or before >= n_steps or before <= after:
            raise v.fail(
                f"exclusions[{i}]",
                f"needs 0 <= after_step < before_step <= {n_steps - 1} (the funnel has {n_steps} steps)",
            )
        out.append({**x, "after_step": after, "before_step": before})
    return out


def _funnel_sql(
    *,
    built: _Built,
    flags: list[str],
    xflags: list[str],
    exclusions: list[dict[str, Any]],
    seconds: int,
    breakdown: v.Breakdown | None,
) -> str:
    """Step k's time is the earliest matching event after step k-1's, within the window of step 0."""
    d = dialect()
    n = len(flags)
    cols = ", ".join(f"CASE WHEN {c} THEN 1 ELSE 0 END AS m{k}" for k, c in enumerate(flags))
    xcols = "".join(f", CASE WHEN {c} THEN 1 ELSE 0 END AS x{k}" for k, c in enumerate(xflags))
    item_join = (
        f" LEFT JOIN {{item}} i ON i.id = e.item_id AND i.tenant_id = {TENANT}" if built.needs_item else ""
    )
    limit = d.plus_seconds("t0", seconds)
    entry = "m0 = 1 AND ts < %(to)s"
    # No joins between events: each step is a window aggregate over the user's events, so
    # both databases sort once per step (a join of the events with themselves took minutes
    # on SQLite at 100,000 events; it builds no index on a CTE).
    anchor = (
        f"FIRST_VALUE(CASE WHEN {entry} THEN item_id END) OVER (PARTITION BY user_id "
        f"ORDER BY CASE WHEN {entry} THEN 0 ELSE 1 END, ts, id)"
        if breakdown is not None and breakdown.entity == "item"
        else "NULL"
    )
    ctes = [
        f"ev AS (SELECT e.id, e.user_id, e.item_id, e.timestamp AS ts, {cols}{xcols} FROM {{event}} e{item_join} "
        f"WHERE e.tenant_id = {TENANT} AND e.timestamp >= %(start)s AND e.timestamp < %(stop)s "
        f"AND e.type IN ({built.types}))",
        # The user's first step-0 event in [from, to) anchors the funnel (its item: ties by event id).
        f"c0 AS (SELECT ev.*, MIN(CASE WHEN {entry} THEN ts END) OVER (PARTITION BY user_id) AS t0, "
        f"{anchor} AS anchor_item FROM ev)",
    ]
    for k in range(1, n):
        ctes.append(
            f"c{k} AS (SELECT c{k - 1}.*, MIN(CASE WHEN m{k} = 1 AND ts > t{k - 1} AND ts <= {limit} THEN ts END) "
            f"OVER (PARTITION BY user_id) AS t{k} FROM c{k - 1})"
        )
    times = ", ".join(f"MIN(t{k}) AS t{k}" for k in range(n))
    ctes.append(
        f"kept AS (SELECT user_id, MIN(anchor_item) AS anchor_item, {times} FROM c{n - 1} WHERE t0 IS NOT NULL "
        f"GROUP BY user_id{_exclusion_test(exclusions, limit)})"
    )
    ctes.append(_grouped_cte(breakdown))
    spans = " UNION ALL ".join(
        ["SELECT b, g, 0 AS step, 0.0 AS secs FROM grouped"]
        + [
            f"SELECT b, g, {k}, {d.seconds_between(f't{k - 1}', f't{k}')} FROM grouped WHERE t{k} IS NOT NULL"
            for k in range(1, n)
        ]
    )
    ctes.append(f"spans AS ({spans})")
    # The median from window functions: the middle row (or the two middle rows' mean) per group and step.
    ctes.append(
        "r AS (SELECT b, g, step, secs, ROW_NUMBER() OVER (PARTITION BY b, g, step ORDER BY secs) AS rn, "
        "COUNT(*) OVER (PARTITION BY b, g, step) AS n FROM spans)"
    )
    return (
        "WITH "
        + ", ".join(ctes)
        + " SELECT b, g, step, MAX(n), AVG(CASE WHEN rn IN ((n + 1) / 2, (n + 2) / 2) "
        "THEN secs END) FROM r GROUP BY b, g, step"
    )


def _exclusion_test(exclusions: list[dict[str, Any]], limit: str) -> str:
    """A user with an exclusion event strictly between their step a and step b leaves the funnel."""
    if not exclusions:
        return ""
    tests = [
        f"(x{k} = 1 AND ts > t{x['after_step']} AND ts < COALESCE(t{x['before_step']}, {limit}))"
        for k, x in enumerate(exclusions)
    ]
    return f" HAVING MAX(CASE WHEN {' OR '.join(tests)} THEN 1 ELSE 0 END) = 0"


def _grouped_cte(breakdown: v.Breakdown | None) -> str:
    """Every kept user twice when broken down: once in the total (b = 0), once in its group (b = 1)
    (with ``segment``: once in each segment they are in, or once under null)."""
    if breakdown is None:
        return "grouped AS (SELECT 0 AS b, NULL AS g, kept.* FROM kept)"
    join, label = _group_join(breakdown, user="kept.user_id", item="kept.anchor_item")
    return (
        "grouped AS (SELECT 0 AS b, NULL AS g, kept.* FROM kept UNION ALL "
        f"SELECT 1 AS b, {label} AS g, kept.* FROM kept {join})"
    )


def _group_join(breakdown: v.Breakdown, *, user: str, item: str = "NULL") -> tuple[str, str]:
    """(the LEFT JOINs, the group label expression) of a breakdown, for the user column ``user``."""
    if breakdown.entity == "segment":
        # One row per segment the user is in (a cluster segment's as "name:n"); none: one null row.
        return (
            f"LEFT JOIN {{member}} sm ON sm.user_id = {user} AND sm.tenant_id = {TENANT} "
            f"LEFT JOIN {{segment}} sg ON sg.id = sm.segment_id AND sg.tenant_id = {TENANT}",
            "CASE WHEN sm.cluster IS NULL THEN sg.name ELSE sg.name || ':' || CAST(sm.cluster AS VARCHAR(8)) END",
        )
    table, key = ("user", user) if breakdown.entity == "user" else ("item", item)
    return (
        f"LEFT JOIN {{{table}}} x ON x.id = {key} AND x.tenant_id = {TENANT}",
        dialect().json_text("x.attributes", "%(bkey)s"),
    )


def _funnel_answer(
    *, rows: list[tuple[Any, ...]], n_steps: int, breakdown: v.Breakdown | None
) -> dict[str, Any]:
    by_group: dict[tuple[int, Any], dict[int, tuple[int, float | None]]] = {}
    for b, g, step, users, median in rows:
        by_group.setdefault((b, g), {})[int(step)] = (
            int(users),
            None if median is None or step == 0 else round(float(median), 3),
        )
    answer: dict[str, Any] = {"steps": _funnel_steps(by_group.get((0, None), {}), n_steps)}
    if breakdown is not None:
        groups = sorted(
            ((g, s) for (b, g), s in by_group.items() if b == 1),
            key=lambda gs: (-gs[1].get(0, (0,))[0], str(gs[0])),
        )
        answer["breakdown"] = breakdown.label
        answer["groups"] = [{"value": g, "steps": _funnel_steps(s, n_steps)} for g, s in groups[:MAX_GROUPS]]
        answer["groups_truncated"] = len(groups) > MAX_GROUPS
    return answer


def _funnel_steps(counts: dict[int, tuple[int, float | None]], n_steps: int) -> list[dict[str, Any]]:
    first = counts.get(0, (0, None))[0]
    out = []
    for k in range(n_steps):
        users, median = counts.get(k, (0, None))
        out.append(
            {
                "step": k,
                "users": users,
                "conversion": round(users / first, 6) if first else 0.0,
                "median_seconds": median,
            }
        )
    return out


# ============================================================== retention
def _period_sql(period: str, expr: str) -> str:
    """The period number of a timestamp: days since 1970, Monday-weeks since 1970, or months."""
    d = dialect()
    if period == "month":
        return d.month_number(expr)
    days = d.day_number(expr)
    # 1970-01-01 was a Thursday: +3 makes weeks start on Monday.
    return f"(({days} + 3) / 7)" if period == "week" else days


def _period_of(period: str, when: dt.datetime) -> int:
    days = (when.astimezone(dt.UTC).date() - dt.date(1970, 1, 1)).days
    if period == "day":
        return days
    if period == "week":
        return (days + 3) // 7
    when = when.astimezone(dt.UTC)
    return when.year * 12 + when.month - 1


def _period_start(period: str, number: int) -> dt.datetime:
    if period == "month":
        return dt.datetime(number // 12, number % 12 + 1, 1, tzinfo=dt.UTC)
    days = number if period == "day" else number * 7 - 3
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=days)


def retention_compute(*, tenant: Tenant, query: dict[str, Any]) -> dict[str, Any]:
    """Cohorts by the period of each user's first start event in [from, to); ``retained[n]``
    counts the cohort's users with a return event n periods later (``retained[0]`` = the cohort).
    With ``breakdown`` the same per group (``segment`` or ``user.<attribute>``)."""
    plugin = tenant_plugin_get(tenant=tenant)
    start, stop = v.range_check(query.get("from"), query.get("to"))
    period = query["period"]
    last = _period_of(period, stop - dt.timedelta(microseconds=1))
    if last - _period_of(period, start) >= 400:
        raise v.fail(
            "period", "the range holds more than 400 periods: use a longer period or a shorter range"
        )
    breakdown = v.breakdown_parse(plugin, query.get("breakdown"), entities=("user",))
    built = _Built(plugin=plugin)
    for name in ("start_type", "return_type"):
        v.event_type_check(plugin, query.get(name), field=name)
    sql = _retention_sql(built=built, query=query, breakdown=breakdown)
    d = dialect()
    params = {**built.bag.values, "start": d.when(start), "stop": d.when(stop)}
    if breakdown is not None and breakdown.entity == "user":
        params["bkey"] = breakdown.name

    def compute() -> dict[str, Any]:
        rows = analytics_sql_rows(tenant=tenant, sql=sql, params=params)
        return _retention_answer(rows=rows, period=period, last=last, breakdown=breakdown)

    answer = analytics_cached(
        tenant=tenant, kind="retention", query=query, start=start, stop=stop, compute=compute
    )
    return {"period": period, "from": start, "to": stop, **answer}


def _retention_sql(*, built: _Built, query: dict[str, Any], breakdown: v.Breakdown | None) -> str:
    """Rows (b, g, cohort, n, users): b = 0 the totals, b = 1 per group of the breakdown."""
    tests = [
        f"e.type = {built.bag.bind(query[n])}" if query.get(n) else "1 = 1"
        for n in ("start_type", "return_type")
    ]
    # With both types named only their events are read; with "any event" on either side, all are.
    only = f" AND ({tests[0]} OR {tests[1]})" if query.get("start_type") and query.get("return_type") else ""
    p = _period_sql(query["period"], "e.timestamp")
    sql = (
        f"WITH ev AS (SELECT e.user_id, {p} AS p, CASE WHEN {tests[0]} THEN 1 ELSE 0 END AS s, "
        f"CASE WHEN {tests[1]} THEN 1 ELSE 0 END AS r FROM {{event}} e "
        f"WHERE e.tenant_id = {TENANT} AND e.timestamp >= %(start)s AND e.timestamp < %(stop)s{only}), "
        # The cohort as a window aggregate, not a join back to the events (PostgreSQL
        # planned that join as a nested loop over the CTE: minutes at 100,000 events).
        "wc AS (SELECT ev.*, MIN(CASE WHEN s = 1 THEN p END) OVER (PARTITION BY user_id) AS c FROM ev), "
        "firsts AS (SELECT DISTINCT user_id, c FROM wc WHERE c IS NOT NULL), "
        "back AS (SELECT DISTINCT user_id, c, p - c AS n FROM wc WHERE c IS NOT NULL AND r = 1 AND p > c)"
    )
    totals = (
        " SELECT 0, NULL, c, 0, COUNT(*) FROM firsts GROUP BY c"
        " UNION ALL SELECT 0, NULL, c, n, COUNT(*) FROM back GROUP BY c, n"
    )
    if breakdown is None:
        return sql + totals
    join, label = _group_join(breakdown, user="f.user_id")
    return (
        sql
        + f", ug AS (SELECT f.user_id, {label} AS g FROM (SELECT DISTINCT user_id FROM firsts) f {join})"
        + totals
        + " UNION ALL SELECT 1, ug.g, f.c, 0, COUNT(*) FROM firsts f JOIN ug ON ug.user_id = f.user_id "
        "GROUP BY ug.g, f.c"
        " UNION ALL SELECT 1, ug.g, k.c, k.n, COUNT(*) FROM back k JOIN ug ON ug.user_id = k.user_id "
        "GROUP BY ug.g, k.c, k.n"
    )


def _retention_answer(
    *, rows: list[tuple[Any, ...]], period: str, last: int, breakdown: v.Breakdown | None
) -> dict[str, Any]:
    groups: dict[tuple[int, Any], dict[int, list[int]]] = {}
    for b, g, c, n, users in rows:
        cohorts = groups.setdefault((int(b), g), {})
        c, n = int(c), int(n)
        cohorts.setdefault(c, [0] * (last - c + 1))[n] = int(users)

    def listed(cohorts: dict[int, list[int]]) -> list[dict[str, Any]]:
        return [
            {"start": _period_start(period, c), "users": row[0], "retained": row}
            for c, row in sorted(cohorts.items())
        ]

    answer: dict[str, Any] = {"cohorts": listed(groups.get((0, None), {}))}
    if breakdown is not None:
        ranked = sorted(
            ((g, cs) for (b, g), cs in groups.items() if b == 1),
            key=lambda gc: (-sum(r[0] for r in gc[1].values()), str(gc[0])),
        )
        answer["breakdown"] = breakdown.label
        answer["groups"] = [{"value": g, "cohorts": listed(cs)} for g, cs in ranked[:MAX_GROUPS]]
        answer["groups_truncated"] = len(ranked) > MAX_GROUPS
    return answer


# ============================================================== paths
def paths_compute(*, tenant: Tenant, query: dict[str, Any]) -> dict[str, Any]:
    """The top-k paths of event types (or item attributes) after or before ``event``, per session."""
    plugin = tenant_plugin_get(tenant=tenant)
    start, stop = v.range_check(query.get("from"), query.get("to"))
    gap = v.duration_parse(query["session_gap"], field="session_gap", maximum=dt.timedelta(days=1))
    v.event_type_check(plugin, query["event"], field="event")
    label, needs_item = _path_label(plugin, query["by"])
    d = dialect()
    steps, fn = query["steps"], "LEAD" if query["direction"] == "after" else "LAG"
    nexts = ", ".join(f"{fn}(label, {j}) OVER w AS l{j}" for j in range(1, steps + 1))
    item_join = f" LEFT JOIN {{item}} i ON i.id = e.item_id AND i.tenant_id = {TENANT}" if needs_item else ""
    labels = ", ".join(f"l{j}" for j in range(1, steps + 1))
    order = ", ".join(f"COALESCE(l{j}, '')" for j in range(1, steps + 1))
    sql = (
        f"WITH ev AS (SELECT e.id, e.user_id, e.timestamp AS ts, e.type, {label} AS label FROM {{event}} e{item_join} "
        f"WHERE e.tenant_id = {TENANT} AND e.timestamp >= %(start)s AND e.timestamp < %(stop)s), "
        f"gaps AS (SELECT ev.*, CASE WHEN LAG(ts) OVER (PARTITION BY user_id ORDER BY ts, id) IS NULL "
        f"OR ts > {d.plus_seconds('LAG(ts) OVER (PARTITION BY user_id ORDER BY ts, id)', int(gap.total_seconds()))} "
        "THEN 1 ELSE 0 END AS new_session FROM ev), "
        "sess AS (SELECT gaps.*, SUM(new_session) OVER (PARTITION BY user_id ORDER BY ts, id ROWS UNBOUNDED PRECEDING) "
        "AS session FROM gaps), "
        f"walk AS (SELECT type, {nexts}, ROW_NUMBER() OVER (PARTITION BY user_id, session, type ORDER BY ts, id) AS nth "
        "FROM sess WINDOW w AS (PARTITION BY user_id, session ORDER BY ts, id)) "
        f"SELECT {labels}, COUNT(*) AS sessions FROM walk WHERE type = %(event)s AND nth = 1 "
        f"GROUP BY {labels} ORDER BY sessions DESC, {order} LIMIT %(k)s"
    )
    params = {"start": d.when(start), "stop": d.when(stop), "event": query["event"], "k": query["k"]}
    if needs_item:
        params["label_key"] = query["by"].partition(".")[2]

    def compute() -> dict[str, Any]:
        rows = analytics_sql_rows(tenant=tenant, sql=sql, params=params)
        return {"paths": [_path_row(query["event"], row, query["direction"]) for row in rows]}

    answer = analytics_cached(
        tenant=tenant, kind="paths", query=query, start=start, stop=stop, compute=compute
    )
    return {
        "event": query["event"],
        "direction": query["direction"],
        "by": query["by"],
        "from": start,
        "to": stop,
        **answer,
    }


def _path_label(plugin: DomainPlugin, by: str) -> tuple[str, bool]:
    if by == "type":
        return "e.type", False
    entity, _, name = by.partition(".")
    spec = next((f for f in plugin.item_schema if f.name == name), None)
    if entity != "item" or spec is None or spec.sensitive or spec.type not in v.BREAKDOWN_TYPES:
        raise v.fail(
            "by",
            f"must be 'type' or 'item.<attribute>' naming a categorical item attribute of domain {plugin.id!r}",
        )
    # Events without an item (or items without the attribute) show as NO_LABEL rather than ending the path.
    return f"COALESCE({dialect().json_text('i.attributes', '%(label_key)s')}, '{NO_LABEL}')", True


def _path_row(event: str, row: tuple[Any, ...], direction: str) -> dict[str, Any]:
    *labels, sessions = row
    path = [event]
    for label in labels:
        if label is None:
            break  # the session ended
        path.append(label)
    if direction == "before":
        path.reverse()
    return {"path": path, "sessions": int(sessions)}


# ============================================================== trending
def trending_list(*, tenant: Tenant, query: dict[str, Any]) -> dict[str, Any]:
    """Items whose event count in the last ``window`` grew most against the mean of the
    ``periods`` windows before it: ``growth = (current + 1) / (previous_mean + 1)``."""
    plugin = tenant_plugin_get(tenant=tenant)
    window = v.duration_parse(query["window"], field="window", maximum=dt.timedelta(days=90))
    now = timezone.now()
    current = now - window
    start = now - window * (query["periods"] + 1)
    built = _Built(plugin=plugin)
    tests = [f"e.type = {built.bag.bind(query['type'])}"] if query.get("type") else []
    if query.get("type"):
        v.event_type_check(plugin, query["type"], field="type")
    tests += _trending_filters(built, plugin, query)
    if query.get("segment"):
        tests.append(_segment_members_test(built, tenant=tenant, ref=query["segment"]))
    d = dialect()
    growth = f"((cur + 1.0) / (prev * 1.0 / {int(query['periods'])} + 1.0))"
    sql = (
        f"WITH counts AS (SELECT i.external_id AS item, SUM(CASE WHEN e.timestamp >= %(current)s THEN 1 ELSE 0 END) AS cur, "
        "SUM(CASE WHEN e.timestamp < %(current)s THEN 1 ELSE 0 END) AS prev "
        f"FROM {{event}} e JOIN {{item}} i ON i.id = e.item_id AND i.tenant_id = {TENANT} AND i.active = %(active)s "
        f"WHERE e.tenant_id = {TENANT} AND e.timestamp >= %(start)s AND e.timestamp < %(now)s"
        + "".join(f" AND {t}" for t in tests)
        + " GROUP BY i.external_id) "
        f"SELECT item, cur, prev, {growth} AS growth FROM counts WHERE cur >= %(min_count)s "
        "ORDER BY growth DESC, cur DESC, item LIMIT %(k)s"
    )
    params = {
        **built.bag.values,
        "current": d.when(current),
        "start": d.when(start),
        "now": d.when(now),
        "active": True,
        "min_count": query["min_count"],
        "k": query["k"],
    }

    def compute() -> dict[str, Any]:
        rows = analytics_sql_rows(tenant=tenant, sql=sql, params=params)
        periods = query["periods"]
        return {
            "items": [
                {
                    "item_id": item,
                    "count": int(cur),
                    "previous_mean": round(int(prev) / periods, 4),
                    "growth": round(float(g), 4),
                }
                for item, cur, prev, g in rows
            ]
        }

    answer = analytics_cached(
        tenant=tenant, kind="trending", query=query, start=start, stop=now, compute=compute
    )
    return {"window": query["window"], "periods": query["periods"], "min_count": query["min_count"], **answer}


def _segment_members_test(built: _Built, *, tenant: Tenant, ref: str) -> str:
    """Only events of the segment's (or cluster's) members."""
    seg = segment_ref_resolve(tenant=tenant, ref=ref, field="segment")
    cluster = f" AND sm.cluster = {built.bag.bind(seg.cluster)}" if seg.cluster is not None else ""
    # Cached answers need no segment version: a computation drops the tenant's cached answers.
    return (
        f"e.user_id IN (SELECT sm.user_id FROM {{member}} sm WHERE sm.tenant_id = {TENANT} "
        f"AND sm.segment_id = {built.bag.bind(seg.segment_id)}{cluster})"
    )


def _trending_filters(built: _Built, plugin: DomainPlugin, query: dict[str, Any]) -> list[str]:
    params = query.get("filter_params") or {}
    if not isinstance(params, dict):
        raise v.fail("filter_params", "must be a JSON object")
    tests = []
    if query.get("category"):
        if not any(f.name == "category" and not f.sensitive for f in plugin.item_schema):
            raise v.fail("category", f"domain {plugin.id!r} declares no item attribute 'category'")
        tests.append(
            where_compile(
                expression="category = $category",
                item_schema=plugin.item_schema,
                params={"category": query["category"]},
                bag=built.bag,
                sql=dialect(),
                domain=plugin.id,
                field="category",
            )
        )
    if query.get("filter"):
        tests.append(
            where_compile(
                expression=query["filter"],
                item_schema=plugin.item_schema,
                params=params,
                bag=built.bag,
                sql=dialect(),
                domain=plugin.id,
                field="filter",
            )
        )
    return tests
