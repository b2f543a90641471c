"""Helpers of the serving hot path's raw queries, shared by ``candidates`` and ``catalog_snapshot``.

Raw SQL because building ORM queries cost more than running them on the
recommendation path (docs/serving.md); these turn raw cursor values back into
what the ORM would have returned.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from typing import Any

import orjson
from django.utils.dateparse import parse_datetime

from platform_core.catalog.models import EndUser, Item
from platform_core.events.models import Event


@functools.cache
def sql_names() -> dict[str, str]:
    """Quoted table and column names of the hot-path raw queries (from the models' metadata)."""
    from django.db import connection

    q = connection.ops.quote_name
    ev, us, it = Event._meta, EndUser._meta, Item._meta
    return {
        "event": q(ev.db_table),
        "user": q(us.db_table),
        "item": q(it.db_table),
        "ev_user": q(ev.get_field("user").column),
        "ev_item": q(ev.get_field("item").column),
        "ev_tenant": q(ev.get_field("tenant").column),
        "us_tenant": q(us.get_field("tenant").column),
        "it_tenant": q(it.get_field("tenant").column),
    }


def json_loads(text: str | bytes) -> Any:
    """``json.loads`` through orjson (a recommendation decodes ≈ 60 attribute objects)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # what orjson refuses but json reads (e.g. integers past 64 bits)


def json_column(value: Any) -> Any:
    """A JSON column as the ORM would return it (the raw cursor hands back text on every backend)."""
    if isinstance(value, str | bytes | bytearray):
        return json_loads(value)
    return value


def json_text(value: Any) -> str:
    """A JSON column as its text (a driver that decodes JSON itself hands back objects)."""
    return value if isinstance(value, str) else json.dumps(value)


def aware(value: Any) -> datetime | None:
    """A timestamp column as the ORM would return it (aware, UTC) from a raw cursor."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value
