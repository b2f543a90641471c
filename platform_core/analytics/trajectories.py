"""Interest trajectories: how a user's (or a group's) category shares shift month over month.

A share is the part of the user's *weighted* events (weights: the domain's
event types, labels weigh 0) that fell on items of one category in one UTC
month. One SQL statement groups the events by (month, category); Python only
turns the sums into shares and compares two months (docs/analytics.md).

Who is counted is a :class:`UserSelection`: a SQL condition on ``e.user_id``
with its own parameters. One user and a list of users are built here; a
segment plugs in by building its own selection (a subquery over its member
table, scoped by ``tenant_id = %(tenant)s`` like every analytics query).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from domains.base import DomainPlugin
from platform_core.analytics import validation as v
from platform_core.analytics.cache import analytics_cached
from platform_core.analytics.sql import TENANT, analytics_sql_rows, dialect
from platform_core.catalog.models import EndUser
from platform_core.plugins.selectors import tenant_plugin_get
from platform_core.tenancy.models import Tenant

MAX_MONTHS = 36
MAX_SHARES = 50  # categories listed per month, the heaviest first (risers/fallers see them all)
MAX_USERS = 1000  # user ids in one group request
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class UserSelection:
    """Whose events count: ``condition`` tests ``e.user_id`` (``None``: every user of the tenant).

    ``condition`` may read tenant-owned tables (``{user}``, …); each reference needs its own
    ``tenant_id = %(tenant)s`` test, which ``analytics_sql_rows`` checks before running it.
    Its parameter names must start with ``sel_`` so they cannot clash with the query's.
    """

    label: str
    condition: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def user_selection_all() -> UserSelection:
    return UserSelection(label="all users")


def user_selection_one(*, user: EndUser) -> UserSelection:
    return UserSelection(
        label=user.external_id, condition="e.user_id = %(sel_user)s", params={"sel_user": user.pk}
    )


def user_selection_ids(*, external_ids: list[str]) -> UserSelection:
    """The users with these external ids (unknown ids select nobody, as in a segment)."""
    names = {f"sel_u{i}": x for i, x in enumerate(external_ids)}
    listed = ", ".join(f"%({n})s" for n in names)
    condition = f"e.user_id IN (SELECT su.id FROM {{user}} su WHERE su.tenant_id = {TENANT} AND su.external_id IN ({listed}))"
    return UserSelection(label=f"{len(external_ids)} listed users", condition=condition, params=names)


def user_selection_segment(*, segment_id: int, cluster: int | None, label: str) -> UserSelection:
    """The members of a segment (of one of its clusters, for a cluster segment's ``name:n``)."""
    params: dict[str, Any] = {"sel_segment": segment_id}
    condition = (
        f"e.user_id IN (SELECT sm.user_id FROM {{member}} sm WHERE sm.tenant_id = {TENANT}"
        " AND sm.segment_id = %(sel_segment)s"
    )
    if cluster is not None:
        condition += " AND sm.cluster = %(sel_cluster)s"
        params["sel_cluster"] = cluster
    return UserSelection(label=f"segment {label}", condition=condition + ")", params=params)


# ---------------------------------------------------------------- input
def _month_start(number: int) -> dt.datetime:
    return dt.datetime(number // 12, number % 12 + 1, 1, tzinfo=dt.UTC)


def _month_label(number: int) -> str:
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


def _month_parse(raw: Any, *, field: str) -> int:
    m = _MONTH.match(raw) if isinstance(raw, str) else None
    if m is None or not 1 <= int(m.group(2)) <= 12:
        raise v.fail(field, "must be a month written YYYY-MM")
    return int(m.group(1)) * 12 + int(m.group(2)) - 1


def interest_attribute(plugin: DomainPlugin, raw: str | None) -> str:
    """The item attribute interests are counted by: ``raw``, else ``category``, else the first
    categorical (string or choice) attribute the domain declares."""
    usable = [f.name for f in plugin.item_schema if not f.sensitive and f.type in ("string", "choice")]
    if raw in (None, ""):
        if not usable:
            raise v.fail("attribute", f"domain {plugin.id!r} declares no categorical item attribute")
        return "category" if "category" in usable else usable[0]
    if raw not in usable:
        raise v.fail(
            "attribute",
            f"{raw!r} is not a categorical item attribute of domain {plugin.id!r} (known: {', '.join(usable)})",
        )
    return str(raw)


@dataclass(frozen=True)
class _Span:
    first: int  # month numbers, inclusive
    last: int
    before: int  # the compared pair
    after: int


def _span(query: dict[str, Any]) -> _Span:
    stop = (query.get("to") or timezone.now()).astimezone(dt.UTC)
    if not v.EARLIEST < stop <= v.LATEST:
        raise v.fail("to", f"must lie between {v.EARLIEST.date()} and {v.LATEST.date()}")
    last = _month_number(stop - dt.timedelta(microseconds=1))
    first = last - query["months"] + 1
    before, after = query.get("compare_from"), query.get("compare_to")
    after_n = last if after in (None, "") else _month_parse(after, field="compare_to")
    before_n = after_n - 1 if before in (None, "") else _month_parse(before, field="compare_from")
    for name, n in (("compare_to", after_n), ("compare_from", before_n)):
        if not first <= n <= last:
            raise v.fail(
                name, f"must be one of the months shown ({_month_label(first)} to {_month_label(last)})"
            )
    if before_n >= after_n:
        raise v.fail("compare_from", "must be a month before 'compare_to'")
    return _Span(first=first, last=last, before=before_n, after=after_n)


def _month_number(when: dt.datetime) -> int:
    return when.year * 12 + when.month - 1


# ---------------------------------------------------------------- the query
def trajectory_compute(*, tenant: Tenant, selection: UserSelection, query: dict[str, Any]) -> dict[str, Any]:
    """Category shares per UTC month for ``selection``'s users, and the biggest risers and fallers.

    Args:
        query: ``TrajectoryInput``'s validated data (months, to, attribute, compare_from, compare_to, k).
    """
    plugin = tenant_plugin_get(tenant=tenant)
    attribute = interest_attribute(plugin, query.get("attribute"))
    span = _span(query)
    start, stop = _month_start(span.first), _month_start(span.last + 1)
    weights = {t: w for t, w in plugin.event_weights().items() if w > 0}
    sql, params = _trajectory_sql(weights=weights, selection=selection, start=start, stop=stop)
    params["attr"] = attribute

    def compute() -> dict[str, Any]:
        rows = analytics_sql_rows(tenant=tenant, sql=sql, params=params)
        return _trajectory_answer(rows=rows, span=span, k=query["k"])

    answer = analytics_cached(
        tenant=tenant,
        kind="trajectory",
        query={**query, "selection": [selection.condition, selection.params], "attribute": attribute},
        start=start,
        stop=stop,
        compute=compute,
    )
    return {"users": selection.label, "attribute": attribute, "weights": weights, **answer}


def _trajectory_sql(
    *, weights: dict[str, float], selection: UserSelection, start: dt.datetime, stop: dt.datetime
) -> tuple[str, dict[str, Any]]:
    d = dialect()
    params: dict[str, Any] = {**selection.params, "start": d.when(start), "stop": d.when(stop)}
    cases = []
    for i, (name, weight) in enumerate(sorted(weights.items())):
        params[f"t{i}"], params[f"w{i}"] = name, float(weight)
        cases.append(f"WHEN %(t{i})s THEN %(w{i})s")
    types = ", ".join(f"%(t{i})s" for i in range(len(weights))) or "NULL"
    where = f" AND {selection.condition}" if selection.condition else ""
    sql = (
        f"WITH ev AS (SELECT e.user_id, {d.month_number('e.timestamp')} AS m, "
        f"{d.json_text('i.attributes', '%(attr)s')} AS label, "
        f"CASE e.type {' '.join(cases) or 'WHEN NULL THEN 0'} ELSE 0 END AS w "
        f"FROM {{event}} e JOIN {{item}} i ON i.id = e.item_id AND i.tenant_id = {TENANT} "
        f"WHERE e.tenant_id = {TENANT} AND e.timestamp >= %(start)s AND e.timestamp < %(stop)s "
        f"AND e.type IN ({types}){where}) "
        # Events on items without the attribute are left out of both the parts and the total.
        "SELECT m, label, SUM(w), COUNT(DISTINCT user_id) FROM ev WHERE label IS NOT NULL GROUP BY m, label "
        "UNION ALL SELECT m, NULL, SUM(w), COUNT(DISTINCT user_id) FROM ev WHERE label IS NOT NULL GROUP BY m"
    )
    return sql, params


def _trajectory_answer(*, rows: list[tuple[Any, ...]], span: _Span, k: int) -> dict[str, Any]:
    totals: dict[int, tuple[float, int]] = {}
    parts: dict[int, dict[str, float]] = {}
    for m, label, weight, users in rows:
        if label is None:
            totals[int(m)] = (float(weight), int(users))
        else:
            parts.setdefault(int(m), {})[str(label)] = float(weight)
    shares = {
        m: {label: w / totals[m][0] for label, w in p.items()} for m, p in parts.items() if totals[m][0] > 0
    }
    months = []
    for m in range(span.first, span.last + 1):
        total, users = totals.get(m, (0.0, 0))
        ranked = sorted(parts.get(m, {}).items(), key=lambda lw: (-lw[1], lw[0]))
        months.append(
            {
                "month": _month_label(m),
                "users": users,
                "total_weight": round(total, 6),
                "shares": [
                    {"value": label, "weight": round(w, 6), "share": round(shares[m][label], 6)}
                    for label, w in ranked[:MAX_SHARES]
                ],
                "shares_truncated": len(ranked) > MAX_SHARES,
            }
        )
    return {"months": months, "changes": _changes(shares, span, k)}


def _changes(shares: dict[int, dict[str, float]], span: _Span, k: int) -> dict[str, Any]:
    """Share deltas between the two compared months; a category absent from a month has share 0."""
    before, after = shares.get(span.before, {}), shares.get(span.after, {})
    deltas = [
        {
            "value": label,
            "share_from": round(before.get(label, 0.0), 6),
            "share_to": round(after.get(label, 0.0), 6),
            "delta": round(after.get(label, 0.0) - before.get(label, 0.0), 6),
        }
        for label in sorted(set(before) | set(after))
    ]
    return {
        "from": _month_label(span.before),
        "to": _month_label(span.after),
        "risers": sorted((x for x in deltas if x["delta"] > 0), key=lambda x: (-x["delta"], x["value"]))[:k],
        "fallers": sorted((x for x in deltas if x["delta"] < 0), key=lambda x: (x["delta"], x["value"]))[:k],
    }
