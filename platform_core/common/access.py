"""``*_get_for_tenant`` building block: a missing id and another tenant's id
give the same NotFound, so a client learns nothing about other tenants."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models

from platform_core.common.errors import NotFound

M = TypeVar("M", bound=models.Model)


def object_get_for_tenant(*, model: type[M], tenant: Any, label: str, **lookup: Any) -> M:
    """The ``model`` row of ``tenant`` matching ``lookup``, or NotFound.

    Args:
        model: a TenantOwnedModel subclass.
        tenant: the caller's tenant; the query is always filtered by it.
        label: what the client calls it in the message, e.g. ``"user 'u1'"``.
    """
    obj = model.objects.for_tenant(tenant).filter(**lookup).first()  # type: ignore[attr-defined]
    if obj is None:
        raise NotFound(f"No {label}.")
    return obj
