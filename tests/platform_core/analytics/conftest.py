"""Planted data for the analytics tests: every number asserted is worked out by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from platform_core.catalog.models import EndUser, Item
from platform_core.tenancy.models import Tenant
from tests.factories import EndUserFactory, EventFactory, ItemFactory

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)  # a Monday


def at(days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0) -> dt.datetime:
    """T0 moved by the given amount."""
    return T0 + dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


@pytest.fixture
def plant(db: None) -> Callable[..., Any]:
    """``plant(tenant, user, type, when, item=None, **context)``: one event (users and items made on first use)."""
    users: dict[tuple[int, str], EndUser] = {}
    items: dict[tuple[int, str], Item] = {}

    def make(
        tenant: Tenant,
        user: str,
        type_: str,
        when: dt.datetime,
        item: str | None = "i1",
        user_attrs: dict[str, Any] | None = None,
        item_attrs: dict[str, Any] | None = None,
        **context: Any,
    ) -> None:
        if (tenant.pk, user) not in users:
            users[(tenant.pk, user)] = EndUserFactory(
                tenant=tenant, external_id=user, attributes=user_attrs or {}
            )
        it = None
        if item is not None:
            if (tenant.pk, item) not in items:
                items[(tenant.pk, item)] = ItemFactory(
                    tenant=tenant, external_id=item, attributes=item_attrs or {"category": "shoes"}
                )
            it = items[(tenant.pk, item)]
        EventFactory(
            tenant=tenant, user=users[(tenant.pk, user)], item=it, type=type_, timestamp=when, context=context
        )

    return make
