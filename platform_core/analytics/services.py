"""Writes of the analytics app: dropping cached answers when their data changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.cache import cache
from django.db import transaction

from platform_core.analytics.cache import MAX_MONTHS, VERSION_SECONDS, month_numbers, version_key


def _bump(key: str) -> None:
    if not cache.add(key, 1, VERSION_SECONDS):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, VERSION_SECONDS)


def analytics_forget(
    *, tenant_id: int, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> None:
    """Drop the tenant's cached answers whose range touches [since, until] (all of them without a range)."""
    if since is None or until is None or len(month_numbers(since, until)) > MAX_MONTHS:
        _bump(version_key(tenant_id, None))
        return
    for month in month_numbers(since, until):
        _bump(version_key(tenant_id, month))


def analytics_forget_on_ingest(sender: Any, *, tenant_id: int, **kwargs: Any) -> None:
    """Receiver of ``events.signals.events_committed`` (``ts_min``/``ts_max``: the batch's time range)."""
    analytics_forget(tenant_id=tenant_id, since=kwargs.get("ts_min"), until=kwargs.get("ts_max"))


def analytics_forget_on_erasure(sender: Any, *, tenant: Any, **kwargs: Any) -> None:
    """Receiver of ``catalog.signals.user_erased``: the user's events are gone from every range."""
    analytics_forget(tenant_id=tenant.pk)


def analytics_forget_on_feedback(sender: Any, *, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """``post_save`` receiver of ``serving.RecommendationFeedback``: impact answers over its
    ``served_at`` month are recomputed, once the feedback is committed (an answer computed
    before the commit must not be cached under the new version)."""
    if created:
        tenant_id, served = instance.tenant_id, instance.served_at
        transaction.on_commit(lambda: analytics_forget(tenant_id=tenant_id, since=served, until=served))
