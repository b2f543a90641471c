"""Recommendation impact: conversion of users exposed to recommendations vs not, with 95 % intervals.

Serving writes nothing per request (a ``recommendation_id`` is a signed token),
so the only per-user record of a served list is the feedback sent back for it
(``serving.RecommendationFeedback``: click, convert or dismiss, each with the
list's ``served_at`` and model version). A user is **exposed** in [from, to)
when feedback names them for a list served in the range. The comparison is
observational: users who give feedback are more engaged to begin with, so the
difference is an upper bound on the lift, not a causal effect
(docs/analytics.md).
"""

from __future__ import annotations

import math
from typing import Any

from domains.base import DomainPlugin
from platform_core.analytics import validation as v
from platform_core.analytics.cache import analytics_cached
from platform_core.analytics.sql import TENANT, analytics_sql_rows, dialect
from platform_core.plugins.selectors import tenant_plugin_get
from platform_core.serving.models import ModelVersionServingStats
from platform_core.tenancy.models import Tenant

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def conversion_type_default(plugin: DomainPlugin) -> str:
    """``purchase`` when the domain has it, else its heaviest non-label event type (first declared on ties)."""
    names = [t.name for t in plugin.event_types]
    if "purchase" in names:
        return "purchase"
    learnable = [t for t in plugin.event_types if not t.is_label] or list(plugin.event_types)
    return max(learnable, key=lambda t: t.weight).name  # max keeps the first of equal weights


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (None when n = 0)."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float] | None:
    """Newcombe's hybrid score interval of p1 − p2 (method 10), built from the two Wilson intervals.

    Unlike the plain normal approximation it stays inside [-1, 1] and behaves at 0 % and 100 %.
    """
    w1, w2 = wilson_interval(x1, n1, z), wilson_interval(x2, n2, z)
    if w1 is None or w2 is None:
        return None
    p1, p2 = x1 / n1, x2 / n2
    (l1, u1), (l2, u2) = w1, w2
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def _group(users: int, converted: int) -> dict[str, Any]:
    ci = wilson_interval(converted, users)
    return {
        "users": users,
        "converted": converted,
        "rate": round(converted / users, 6) if users else None,
        "ci95": [round(ci[0], 6), round(ci[1], 6)] if ci else None,
    }


def _lift(group: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    ci = difference_interval(group["converted"], group["users"], base["converted"], base["users"])
    return {
        "difference": round(group["rate"] - base["rate"], 6) if ci else None,
        "difference_ci95": [round(ci[0], 6), round(ci[1], 6)] if ci else None,
    }


# One pass over the range's events and one over its feedback; the groups are unions of counts.
_SQL = (
    "WITH fb AS (SELECT DISTINCT f.user_id, f.model_version_id AS v FROM {feedback} f "
    f"WHERE f.tenant_id = {TENANT} AND f.user_id IS NOT NULL "
    "AND f.served_at >= %(start)s AND f.served_at < %(stop)s), "
    "act AS (SELECT e.user_id, MAX(CASE WHEN e.type = %(conversion)s THEN 1 ELSE 0 END) AS c FROM {event} e "
    f"WHERE e.tenant_id = {TENANT} AND e.timestamp >= %(start)s AND e.timestamp < %(stop)s GROUP BY e.user_id), "
    # Everyone active or exposed in the range; an exposed user without events did not convert.
    "pop AS (SELECT user_id, MAX(c) AS c FROM (SELECT user_id, c FROM act UNION ALL "
    "SELECT user_id, 0 AS c FROM fb) x GROUP BY user_id), "
    "exposed AS (SELECT DISTINCT user_id FROM fb) "
    "SELECT CASE WHEN exposed.user_id IS NULL THEN 0 ELSE 1 END AS g, NULL AS v, COUNT(*), SUM(pop.c) "
    "FROM pop LEFT JOIN exposed ON exposed.user_id = pop.user_id "
    "GROUP BY CASE WHEN exposed.user_id IS NULL THEN 0 ELSE 1 END "
    "UNION ALL SELECT 2, fb.v, COUNT(*), SUM(pop.c) FROM fb JOIN pop ON pop.user_id = fb.user_id GROUP BY fb.v"
)


def impact_compute(*, tenant: Tenant, query: dict[str, Any]) -> dict[str, Any]:
    """Conversion of exposed vs not-exposed users in [from, to), overall and per model version.

    Args:
        query: ``ImpactInput``'s validated data (from, to, conversion_type).
    """
    plugin = tenant_plugin_get(tenant=tenant)
    start, stop = v.range_check(query.get("from"), query.get("to"))
    conversion = query.get("conversion_type") or conversion_type_default(plugin)
    v.event_type_check(plugin, conversion, field="conversion_type")
    d = dialect()
    params = {"start": d.when(start), "stop": d.when(stop), "conversion": conversion}

    def compute() -> dict[str, Any]:
        rows = analytics_sql_rows(tenant=tenant, sql=_SQL, params=params)
        return _impact_answer(tenant=tenant, rows=rows)

    answer = analytics_cached(
        tenant=tenant,
        kind="impact",
        query={**query, "conversion_type": conversion},
        start=start,
        stop=stop,
        compute=compute,
    )
    return {"from": start, "to": stop, "conversion_type": conversion, **answer}


def _impact_answer(*, tenant: Tenant, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    counts = {(int(g), ver): (int(n), int(c or 0)) for g, ver, n, c in rows}
    exposed = _group(*counts.get((1, None), (0, 0)))
    not_exposed = _group(*counts.get((0, None), (0, 0)))
    stats = {
        s.model_version_id: s
        for s in ModelVersionServingStats.objects.for_tenant(tenant).filter(
            model_version_id__in=[ver for g, ver in counts if g == 2 and ver is not None]
        )
    }
    versions = []
    for (g, ver), (n, c) in sorted(counts.items(), key=lambda kv: (kv[0][1] is None, kv[0][1] or 0)):
        if g != 2:
            continue
        group = _group(n, c)
        s = stats.get(ver)
        versions.append(
            {
                "model_version": ver,
                **group,
                **_lift(group, not_exposed),
                "ctr": round(s.ctr, 6) if s is not None and s.ctr is not None else None,
            }
        )
    return {
        "exposed": exposed,
        "not_exposed": not_exposed,
        **_lift(exposed, not_exposed),
        "versions": versions,
    }
