"""Segment definitions: validation, and a rule compiled to one SQL ``SELECT`` of member ids.

A **rule** segment (docs/analytics.md, "Segments")::

    {"match": "all",                                   # or "any"
     "where": "country = \"DE\" and loyalty_tier in [\"gold\", \"platinum\"]",
     "events": [{"type": "purchase", "days": 30, "op": ">=", "count": 2,
                 "where": "category = \"shoes\""}]}

``where`` is the serving filter language over the **user's** attributes;
each ``events`` entry counts the user's events of ``type`` in the last
``days`` days (optionally those matching ``where`` over the event's item
attributes and ``context_<field>``) and compares the count. The whole rule
is one ``SELECT`` over the user table with one grouped pass over the events,
so a user with no events at all has count 0 (``"op": "=", "count": 0``
finds users who never bought).

A **cluster** segment: ``{"k": 4, "seed": 0, "describe_by": "category"}``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from domains.base import DomainPlugin
from platform_core.analytics import validation as v
from platform_core.analytics.sql import TENANT, dialect
from platform_core.analytics.where import Params, where_compile
from platform_core.common.errors import ValidationFailed

MAX_CONDITIONS = 10
MAX_DAYS = 3660
MAX_COUNT = 1_000_000
MAX_K = 50
OPS = {"=": "=", "==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_RULE_KEYS = {"match", "where", "events"}
_EVENT_KEYS = {"type", "days", "op", "count", "where"}
_CLUSTER_KEYS = {"k", "seed", "describe_by"}


def _int(raw: Any, *, field: str, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise v.fail(field, f"must be an integer from {low} to {high}")
    return raw


def _keys(raw: Any, allowed: set[str], field: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise v.fail(field, "must be a JSON object")
    extra = sorted(set(raw) - allowed)
    if extra:
        raise v.fail(f"{field}.{extra[0]}", f"is not a known key (known: {', '.join(sorted(allowed))})")
    return raw


def definition_check(*, plugin: DomainPlugin, kind: str, definition: Any) -> dict[str, Any]:
    """The definition normalised, or a 400 naming the offending key (``definition.events[0].op``)."""
    if kind == "cluster":
        return cluster_definition_check(plugin=plugin, definition=definition)
    if kind != "rule":
        raise v.fail("kind", "must be 'rule' or 'cluster'")
    rule_select(plugin=plugin, definition=definition, now=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    out = {**definition, "match": definition.get("match") or "all"}
    return {k: val for k, val in out.items() if val is not None}


def cluster_definition_check(*, plugin: DomainPlugin, definition: Any) -> dict[str, Any]:
    d = _keys(definition, _CLUSTER_KEYS, "definition")
    k = _int(d.get("k", 4), field="definition.k", low=2, high=MAX_K)
    seed = _int(d.get("seed", 0), field="definition.seed", low=0, high=2**31 - 1)
    by = d.get("describe_by", "category")
    spec = next((f for f in plugin.item_schema if f.name == by), None)
    if not isinstance(by, str) or spec is None or spec.sensitive or spec.type not in v.BREAKDOWN_TYPES:
        known = ", ".join(
            f.name for f in plugin.item_schema if not f.sensitive and f.type in v.BREAKDOWN_TYPES
        )
        raise v.fail(
            "definition.describe_by",
            f"{by!r} is not a categorical item attribute of domain {plugin.id!r} (known: {known})",
        )
    return {"k": k, "seed": seed, "describe_by": by}


@dataclass
class _Counts:
    """The per-user event counts of a rule: one SUM column per condition."""

    columns: list[str]
    types: list[str]
    needs_item: bool = False
    days: int = 0


def rule_select(*, plugin: DomainPlugin, definition: Any, now: dt.datetime) -> tuple[str, dict[str, Any]]:
    """``SELECT user_id, %(segment)s`` of the users matching the rule at ``now``, and its parameters.

    Raises:
        ValidationFailed: a 400 naming the key, e.g. ``definition.where``.
    """
    d = _keys(definition, _RULE_KEYS, "definition")
    match = d.get("match") or "all"
    if match not in ("all", "any"):
        raise v.fail("definition.match", "must be 'all' or 'any'")
    events = d.get("events") or []
    if not isinstance(events, list) or len(events) > MAX_CONDITIONS:
        raise v.fail("definition.events", f"must be a list of at most {MAX_CONDITIONS} conditions")
    if not d.get("where") and not events:
        raise v.fail("definition", "needs a 'where' over user attributes or at least one 'events' condition")
    bag, sql = Params(), dialect()
    tests = [_user_where(plugin, d["where"], bag)] if d.get("where") else []
    counts = _Counts(columns=[], types=[])
    for n, cond in enumerate(events):
        tests.append(_event_condition(plugin, cond, n, bag, counts, now))
    joiner = " AND " if match == "all" else " OR "
    source = f"FROM {{user}} u WHERE u.tenant_id = {TENANT}"
    if counts.columns:
        item_join = (
            f" LEFT JOIN {{item}} i ON i.id = e.item_id AND i.tenant_id = {TENANT}"
            if counts.needs_item
            else ""
        )
        types = ", ".join(bag.bind(t) for t in sorted(set(counts.types)))
        since = sql.when(now - dt.timedelta(days=counts.days))
        source = (
            f"FROM {{user}} u LEFT JOIN (SELECT e.user_id, {', '.join(counts.columns)} FROM {{event}} e{item_join} "
            f"WHERE e.tenant_id = {TENANT} AND e.type IN ({types}) AND e.timestamp >= {bag.bind(since)} "
            f"AND e.timestamp <= {bag.bind(sql.when(now))} GROUP BY e.user_id) c ON c.user_id = u.id "
            f"WHERE u.tenant_id = {TENANT}"
        )
    return f"SELECT u.id, %(segment)s {source} AND ({joiner.join(tests)})", bag.values


def _user_where(plugin: DomainPlugin, expression: Any, bag: Params) -> str:
    try:
        return where_compile(
            expression=expression,
            item_schema=plugin.user_schema,
            params={},
            bag=bag,
            sql=dialect(),
            domain=plugin.id,
            item_column="u.attributes",
            field="definition.where",
        )
    except ValidationFailed as exc:  # the parser speaks of items; here the names are the user's
        fields = {
            k: [r.replace("item schema", "user schema") for r in rules] for k, rules in exc.fields.items()
        }
        raise ValidationFailed(
            exc.message.replace("item schema", "user schema"), code=exc.code, fields=fields
        ) from None


def _event_condition(
    plugin: DomainPlugin, raw: Any, n: int, bag: Params, counts: _Counts, now: dt.datetime
) -> str:
    """``COALESCE(c.nN, 0) <op> count`` and the SUM column it reads."""
    name = f"definition.events[{n}]"
    cond = _keys(raw, _EVENT_KEYS, name)
    type_ = cond.get("type")
    if not isinstance(type_, str):
        raise v.fail(f"{name}.type", "is required: an event type")
    v.event_type_check(plugin, type_, field=f"{name}.type")
    days = _int(cond.get("days"), field=f"{name}.days", low=1, high=MAX_DAYS)
    op = cond.get("op", ">=")
    if op not in OPS:
        raise v.fail(f"{name}.op", f"must be one of {', '.join(OPS)}")
    count = _int(cond.get("count"), field=f"{name}.count", low=0, high=MAX_COUNT)
    test = f"e.type = {bag.bind(type_)} AND e.timestamp >= {bag.bind(dialect().when(now - dt.timedelta(days=days)))}"
    if cond.get("where"):
        context = next(t.context for t in plugin.event_types if t.name == type_)
        compiled = where_compile(
            expression=cond["where"],
            item_schema=plugin.item_schema,
            context_schema=context,
            params={},
            bag=bag,
            sql=dialect(),
            domain=plugin.id,
            field=f"{name}.where",
        )
        counts.needs_item = counts.needs_item or "i.attributes" in compiled
        test = f"{test} AND {compiled}"
    counts.columns.append(f"SUM(CASE WHEN {test} THEN 1 ELSE 0 END) AS n{n}")
    counts.types.append(type_)
    counts.days = max(counts.days, days)
    return f"COALESCE(c.n{n}, 0) {OPS[op]} {bag.bind(count)}"
