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

_COLUMNS = (
    "tenant_id",
    "event_id",
    "user_id",
    "item_id",
    "type",
    "timestamp",
    "value",
    "context",
    "received_at",
)


def _sqlite_datetime(value: dt.datetime) -> str:
    """What Django stores in SQLite for an aware datetime (naive UTC text), without its per-call checks."""
    return str(value.astimezone(dt.UTC).replace(tzinfo=None))


def _text_array(values: Sequence[str]) -> str:
    """A PostgreSQL text[] literal: every element double-quoted, with ``\\`` and ``"`` escaped."""
    return "{" + ",".join(['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values]) + "}"


def _table() -> str:
    return connection.ops.quote_name(Event._meta.db_table)


def events_insert(*, rows: Sequence[Row]) -> int:
    """Insert ``(tenant_id, event_id, user_id, item_id, type, timestamp, value, context_json)`` rows.

    Returns:
        How many were inserted; the rest were duplicates of stored (or earlier) rows.
    """
    if not rows:
        return 0
    # Stable sort by event_id: concurrent batches sharing ids lock them in one
    # order (no deadlock); the first occurrence of a repeated id still wins.
    rows = sorted(rows, key=lambda r: r[1])
    received = timezone.now()
    cols = ", ".join(connection.ops.quote_name(c) for c in _COLUMNS)
    head = f"INSERT INTO {_table()} ({cols}) VALUES "
    tail = " ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING 1"
    inserted = 0
    if connection.vendor == "postgresql":
        # One statement over column arrays, each sent as ONE array literal
        # ('{…}'::text[]): PostgreSQL parses a literal with array_in far faster
        # than an ARRAY[…] expression of 1,000 casted elements, and building
        # the literals here is cheaper than psycopg2 adapting each value.
        sql = (
            f"{head[: -len(' VALUES ')]} "
            "SELECT %s, e, u, i, t, ts, v, c::jsonb, %s FROM unnest("
            "%s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::timestamptz[], %s::float8[], %s::text[]"
            ") AS x(e, u, i, t, ts, v, c) ON CONFLICT (tenant_id, event_id) DO NOTHING"
        )
        utc = dt.UTC
        params = [
            rows[0][0],
            received,
            _text_array([r[1] for r in rows]),
            "{" + ",".join([str(r[2]) for r in rows]) + "}",
            "{" + ",".join(["NULL" if r[3] is None else str(r[3]) for r in rows]) + "}",
            _text_array([r[4] for r in rows]),
            "{" + ",".join([str(r[5].astimezone(utc)) for r in rows]) + "}",
            "{" + ",".join(["NULL" if r[6] is None else repr(r[6]) for r in rows]) + "}",
            _text_array([r[7] for r in rows]),
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            inserted = cursor.rowcount  # rows inserted; conflicts are not counted (no RETURNING to ship)
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
