"""Celery tasks of the analytics app (queue ``default``): segment computations."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="analytics.segment_compute", time_limit=1800, soft_time_limit=1740, acks_late=True)
def segment_compute_task(segment_id: int) -> int | None:
    """Recompute one segment (on demand or from the schedule); its size, or None when it is gone."""
    from platform_core.analytics.models import Segment
    from platform_core.analytics.segments import segment_compute
    from platform_core.common.scoping import tenant_scope

    # The id comes from our own enqueue; its tenant is read from the row, then the work is scoped.
    row = Segment.unscoped.filter(pk=segment_id).select_related("tenant").first()
    if row is None:
        return None  # deleted since it was asked for
    with tenant_scope(row.tenant):
        return segment_compute(tenant=row.tenant, segment_id=segment_id).size


@shared_task(name="analytics.segments_refresh", time_limit=120, soft_time_limit=100)
def segments_refresh() -> int:
    """Beat: recompute the segments older than ``ANALYTICS_SEGMENT_MAX_AGE_SECONDS``."""
    import datetime as dt

    from django.conf import settings

    from platform_core.analytics.segments import segments_refresh_due

    return segments_refresh_due(max_age=dt.timedelta(seconds=settings.ANALYTICS_SEGMENT_MAX_AGE_SECONDS))
