"""Multi-row ``INSERT … ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING`` for events.

One statement per page of rows on both PostgreSQL and SQLite (3.35+ has
RETURNING), so the answer counts inserted rows exactly, duplicates within one
batch included, without a serializer or a model instance per event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import connection
from django.utils import timezone

from platform_core.events.models import Event

Row = tuple[int, str, int, int | None, str, dt.datetime, float | None, str]

_COLUMNS = ("tenant_id", "event_id", "user_id", "item_id", "type", "timestamp", "value", "context", "received_at")


def _sqlite_datetime(value: dt.datetime) -> str:
    """What Django stores in SQLite for an aware datetime (naive UTC text), without its per-call checks."""
    return str(value.astimezone(dt.UTC).replace(tzinfo=None))


def _table() -> str:
    return connection.ops.quote_name(Event._meta.db_table)


def events_insert(*, rows: Sequence[Row]) -> int:
    """Insert ``(tenant_id, event_id, user_id, item_id, type, timestamp, value, context_json)`` rows.

    Returns:
        How many were inserted; the rest were duplicates of stored (or earlier) rows.
    """
    if not rows:
        return 0
    received = timezone.now()
    cols = ", ".join(connection.ops.quote_name(c) for c in _COLUMNS)
    head = f"INSERT INTO {_table()} ({cols}) VALUES "
    tail = " ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING 1"
    inserted = 0
    if connection.vendor == "postgresql":
        from psycopg2.extras import execute_values

        with connection.cursor() as cursor:
            values = [(*r, received) for r in rows]
            result = execute_values(
                cursor.cursor,
                head + "%s" + tail,
                values,
                template="(%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s)",
                page_size=1000,
                fetch=True,
            )
            inserted = len(result)
    else:
        received_db = _sqlite_datetime(received)
        adapt = _sqlite_datetime
        page = max(1, 30_000 // len(_COLUMNS))  # SQLite's bound-parameter limit is 32,766
        one = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
        with connection.cursor() as cursor:
            for start in range(0, len(rows), page):
                chunk = rows[start : start + page]
                params: list[object] = []
                for t, e, u, i, ty, ts, v, c in chunk:
                    params.extend((t, e, u, i, ty, adapt(ts), v, c, received_db))
                cursor.execute(head + ", ".join([one] * len(chunk)) + tail, params)
                inserted += len(cursor.fetchall())
    return inserted
