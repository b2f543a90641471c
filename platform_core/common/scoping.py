"""Fail-closed tenant scoping.

``Model.objects`` refuses to run a query unless a tenant is given, either
explicitly (``Model.objects.for_tenant(tenant)``) or by an enclosing
``tenant_scope(tenant)`` block (used by background tasks, which enter the
scope themselves). Crossing tenants is spelled out with ``Model.unscoped``
and a comment saying why.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.db import models

if TYPE_CHECKING:
    from platform_core.tenancy.models import Tenant

_current_tenant: contextvars.ContextVar[Any] = contextvars.ContextVar("current_tenant", default=None)


class TenantScopeError(RuntimeError):
    """A tenant-owned table was queried with no tenant in scope."""


@contextlib.contextmanager
def tenant_scope(tenant: Tenant) -> Iterator[Tenant]:
    """Make ``tenant`` the implicit scope of ``Model.objects`` inside the block."""
    token = _current_tenant.set(tenant)
    try:
        yield tenant
    finally:
        _current_tenant.reset(token)


def current_tenant() -> Tenant | None:
    return _current_tenant.get()


class TenantQuerySet(models.QuerySet):
    def for_tenant(self, tenant: Tenant) -> TenantQuerySet:
        return self.filter(tenant=tenant)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):  # type: ignore[misc]
    """The default scoped manager: fails closed without a tenant."""

    def get_queryset(self) -> TenantQuerySet:
        tenant = _current_tenant.get()
        if tenant is None:
            raise TenantScopeError(
                f"{self.model.__name__}.objects used with no tenant: use "
                ".for_tenant(tenant), tenant_scope(tenant), or .unscoped with a reason"
            )
        return super().get_queryset().filter(tenant=tenant)

    def for_tenant(self, tenant: Tenant) -> TenantQuerySet:
        if tenant is None:
            raise TenantScopeError(f"{self.model.__name__}.objects.for_tenant(None)")
        return super().get_queryset().filter(tenant=tenant)


class TenantOwnedModel(models.Model):
    """Abstract base of every tenant-owned row."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")

    # Declared first so Django's machinery (admin, cascades, related managers)
    # uses the plain manager; application code uses ``objects``.
    unscoped = models.Manager()
    objects = TenantManager()

    class Meta:
        abstract = True
        base_manager_name = "unscoped"
        default_manager_name = "unscoped"
