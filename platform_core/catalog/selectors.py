"""Reads of the catalog."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet

from platform_core.catalog.models import EndUser, ErasureReceipt, Item
from platform_core.common.access import object_get_for_tenant
from platform_core.plugins.crypto import attributes_unseal
from platform_core.plugins.selectors import tenant_plugin_get
from platform_core.tenancy.models import Tenant


def enduser_get_for_tenant(*, tenant: Tenant, external_id: str) -> EndUser:
    """The tenant's end user; NotFound for a missing id and for another tenant's alike."""
    return object_get_for_tenant(
        model=EndUser, tenant=tenant, label=f"user {external_id!r}", external_id=external_id
    )


def item_get_for_tenant(*, tenant: Tenant, external_id: str) -> Item:
    """The tenant's item; NotFound for a missing id and for another tenant's alike."""
    return object_get_for_tenant(
        model=Item, tenant=tenant, label=f"item {external_id!r}", external_id=external_id
    )


def erasure_receipt_get_for_tenant(*, tenant: Tenant, erasure_id: int) -> ErasureReceipt:
    """The tenant's erasure receipt; NotFound for a missing id and for another tenant's alike."""
    return object_get_for_tenant(
        model=ErasureReceipt, tenant=tenant, label=f"erasure {erasure_id}", pk=erasure_id
    )


def enduser_list(
    *, tenant: Tenant, external_id_prefix: str | None = None, updated_since: dt.datetime | None = None
) -> QuerySet[EndUser]:
    qs = EndUser.objects.for_tenant(tenant)
    if external_id_prefix:
        qs = qs.filter(external_id__startswith=external_id_prefix)
    if updated_since is not None:
        qs = qs.filter(updated_at__gte=updated_since)
    return qs


def item_list(
    *,
    tenant: Tenant,
    external_id_prefix: str | None = None,
    updated_since: dt.datetime | None = None,
    active: bool | None = None,
) -> QuerySet[Item]:
    qs = Item.objects.for_tenant(tenant)
    if external_id_prefix:
        qs = qs.filter(external_id__startswith=external_id_prefix)
    if updated_since is not None:
        qs = qs.filter(updated_at__gte=updated_since)
    if active is not None:
        qs = qs.filter(active=active)
    return qs


def attributes_for_reading(
    *, tenant: Tenant, kind: str, attributes: dict[str, Any], listing: bool
) -> dict[str, Any]:
    """Stored attributes → what the owner tenant's API shows; lists never show sensitive fields."""
    plugin = tenant_plugin_get(tenant=tenant)
    plain = attributes_unseal(plugin=plugin, kind=kind, attributes=attributes)  # type: ignore[arg-type]
    if listing:
        hidden = set(plugin.sensitive_fields(kind))  # type: ignore[arg-type]
        plain = {k: v for k, v in plain.items() if k not in hidden}
    return plain
