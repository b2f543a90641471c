"""Short-lived cache of analytics answers, dropped when events land in the queried range.

An answer's key holds the versions of the calendar months (UTC) its range
touches plus a tenant-wide version. Ingestion bumps the versions of the
months its events fall in (``services.analytics_forget``), so an answer over
January survives events for March, and one over March is recomputed at once.
Versions live in Django's cache, shared by every process when it is Redis;
the TTL (``ANALYTICS_CACHE_SECONDS``) bounds staleness from writes that send
no signal (file imports, direct SQL).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache

from platform_core.tenancy.models import Tenant

MAX_MONTHS = 48  # a longer range is not cached (its key would read too many versions)
VERSION_SECONDS = 7 * 86400  # versions outlive every answer that read them


def month_numbers(start: dt.datetime, stop: dt.datetime) -> list[int]:
    """Month numbers (year * 12 + month - 1, UTC) from ``start`` to ``stop`` inclusive."""
    first = start.astimezone(dt.UTC)
    last = stop.astimezone(dt.UTC)
    return list(range(first.year * 12 + first.month - 1, last.year * 12 + last.month))


def version_key(tenant_id: int, month: int | None) -> str:
    return f"analytics:v:{tenant_id}:{'all' if month is None else month}"


def analytics_cached(
    *,
    tenant: Tenant,
    kind: str,
    query: dict[str, Any],
    start: dt.datetime,
    stop: dt.datetime,
    compute: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """``compute()``'s answer for ``query`` over [start, stop), from the cache while still valid."""
    timeout = settings.ANALYTICS_CACHE_SECONDS
    months = month_numbers(start, stop)
    if timeout <= 0 or len(months) > MAX_MONTHS:
        return compute()
    keys = [version_key(tenant.pk, None)] + [version_key(tenant.pk, m) for m in months]
    versions = cache.get_many(keys)
    material = json.dumps(
        [kind, query, [versions.get(k, 0) for k in keys]], sort_keys=True, default=str, separators=(",", ":")
    )
    key = f"analytics:a:{tenant.pk}:{kind}:{hashlib.sha256(material.encode()).hexdigest()}"
    answer = cache.get(key)
    if answer is None:
        answer = compute()
        cache.set(key, answer, timeout)
    return answer
