"""Reads of the events app."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from platform_core.events.models import Event
from platform_core.tenancy.models import Tenant


def event_list(
    *,
    tenant: Tenant,
    user_external_id: str | None = None,
    item_external_id: str | None = None,
    type: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[Event]:
    """The tenant's events, filtered; callers order and slice."""
    qs = Event.objects.for_tenant(tenant)
    if user_external_id is not None:
        qs = qs.filter(user__external_id=user_external_id)
    if item_external_id is not None:
        qs = qs.filter(item__external_id=item_external_id)
    if type:
        qs = qs.filter(type=type)
    if since is not None:
        qs = qs.filter(timestamp__gte=since)
    if until is not None:
        qs = qs.filter(timestamp__lt=until)
    return qs
