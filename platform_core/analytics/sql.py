"""The one way analytics reaches the database: tenant-checked raw SQL, one dialect per vendor.

Why raw SQL: funnels, retention and paths are window functions and chained
CTEs over the event table; the ORM can express neither the per-user step
aggregates (``MIN(…) OVER (PARTITION BY user_id)``) nor the session numbering
without a Python loop over events. Each query is written once; only the few expressions that differ
between PostgreSQL and SQLite (time arithmetic, JSON access, period numbers)
come from :class:`Dialect`.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import Decimal
from typing import Any

from django.db import connection

from platform_core.catalog.models import EndUser, Item
from platform_core.common.scoping import TenantScopeError
from platform_core.events.models import Event
from platform_core.serving.models import RecommendationFeedback
from platform_core.tenancy.models import Tenant

#: ``{event}``, ``{item}``, ``{user}``, ``{member}``, ``{segment}``, ``{feedback}`` in a
#: template: the tenant-owned tables a query may read.
_TABLE_REF = re.compile(r"\{(event|item|user|member|segment|feedback)\}")
TENANT = "%(tenant)s"


@functools.cache
def _tables() -> dict[str, str]:
    from platform_core.analytics.models import Segment, SegmentMember  # models load after this module

    q = connection.ops.quote_name
    return {
        "event": q(Event._meta.db_table),
        "item": q(Item._meta.db_table),
        "user": q(EndUser._meta.db_table),
        "member": q(SegmentMember._meta.db_table),
        "segment": q(Segment._meta.db_table),
        "feedback": q(RecommendationFeedback._meta.db_table),  # recommendation impact
    }


def analytics_sql_rows(*, tenant: Tenant, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run one analytics query of ``tenant`` and return its rows.

    ``sql`` names tables as ``{event}``, ``{item}``, ``{user}`` and must hold
    a ``tenant_id = %(tenant)s`` test for each reference: a query that reads
    a tenant-owned table without scoping it fails here, before it runs.
    The tenant parameter is bound here, never by the caller.
    """
    text = _checked(tenant=tenant, sql=sql, params=params)
    with connection.cursor() as cursor:
        cursor.execute(text, {**params, "tenant": tenant.pk})
        return [tuple(_plain(v) for v in row) for row in cursor.fetchall()]


def analytics_sql_insert(
    *, tenant: Tenant, table: str, columns: tuple[str, ...], select: str, params: dict[str, Any]
) -> int:
    """``INSERT INTO {table} (tenant_id, columns…) <select>``: a set-based write of the tenant's rows.

    ``select`` is checked like a query of :func:`analytics_sql_rows` and must
    give ``columns`` in order; ``tenant_id`` is bound here. Returns the rows written.
    """
    if table not in ("member",):
        raise TenantScopeError(f"analytics writes no table {table!r}")
    body = _checked(tenant=tenant, sql=select, params=params)
    names = ", ".join(("tenant_id", *columns))
    text = f"INSERT INTO {_tables()[table]} ({names}) SELECT {TENANT}, q.* FROM ({body}) q"
    with connection.cursor() as cursor:
        cursor.execute(text, {**params, "tenant": tenant.pk})
        return cursor.rowcount


def _checked(*, tenant: Tenant, sql: str, params: dict[str, Any]) -> str:
    """``sql`` with its table names filled in, once every table reference has its tenant test."""
    if tenant is None or getattr(tenant, "pk", None) is None:
        raise TenantScopeError("analytics query without a tenant")
    references = len(_TABLE_REF.findall(sql))
    if references == 0 or sql.count(f"tenant_id = {TENANT}") < references:
        raise TenantScopeError("analytics query reads a tenant-owned table without a tenant_id test")
    if "tenant" in params:
        raise TenantScopeError("the tenant parameter is bound by analytics_sql_rows itself")
    return _TABLE_REF.sub(lambda m: _tables()[m.group(1)], sql)


def _plain(value: Any) -> Any:
    # PostgreSQL hands back numeric as Decimal (EXTRACT(EPOCH …), AVG); answers are JSON floats.
    return float(value) if isinstance(value, Decimal) else value


class Dialect:
    """Vendor-specific SQL expressions; ``dialect()`` gives the connection's one."""

    vendor = "postgresql"

    def when(self, value: dt.datetime) -> Any:
        """A datetime parameter as the column stores it."""
        return value

    def plus_seconds(self, expr: str, seconds: int) -> str:
        """``expr`` moved by ``seconds`` (an int validated by the caller, inlined)."""
        return f"({expr} + INTERVAL '{int(seconds)} seconds')"

    def seconds_between(self, earlier: str, later: str) -> str:
        return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"

    def day_number(self, expr: str) -> str:
        """Days since 1970-01-01 (UTC) of a timestamp column."""
        return f"(CAST(({expr} AT TIME ZONE 'UTC') AS date) - DATE '1970-01-01')"

    def month_number(self, expr: str) -> str:
        """Months since year 0 (UTC): year * 12 + month - 1."""
        utc = f"({expr} AT TIME ZONE 'UTC')"
        return f"(CAST(EXTRACT(YEAR FROM {utc}) AS integer) * 12 + CAST(EXTRACT(MONTH FROM {utc}) AS integer) - 1)"

    def json_text(self, column: str, key_param: str) -> str:
        """A JSON attribute as text (``null`` when missing); ``key_param`` holds its name."""
        return f"({column} ->> {key_param})"


class SqliteDialect(Dialect):
    vendor = "sqlite"

    def when(self, value: dt.datetime) -> Any:
        # What Django stores for an aware datetime: naive UTC text, compared as text.
        return str(value.astimezone(dt.UTC).replace(tzinfo=None))

    def plus_seconds(self, expr: str, seconds: int) -> str:
        # Text in the stored format (millisecond precision); '…:00' sorts before '…:00.000',
        # so an event exactly at the edge compares as inside it.
        return f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', {expr}, '+{int(seconds)} seconds')"

    def seconds_between(self, earlier: str, later: str) -> str:
        return f"((julianday({later}) - julianday({earlier})) * 86400.0)"

    def day_number(self, expr: str) -> str:
        return f"CAST(julianday(date({expr})) - 2440587.5 AS INTEGER)"

    def month_number(self, expr: str) -> str:
        return (
            f"(CAST(strftime('%%Y', {expr}) AS INTEGER) * 12 + CAST(strftime('%%m', {expr}) AS INTEGER) - 1)"
        )

    def json_text(self, column: str, key_param: str) -> str:
        path = f"'$.' || {key_param}"
        return (
            f"(CASE json_type({column}, {path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
            f"WHEN 'null' THEN NULL ELSE CAST(json_extract({column}, {path}) AS TEXT) END)"
        )


def dialect() -> Dialect:
    return Dialect() if connection.vendor == "postgresql" else SqliteDialect()
