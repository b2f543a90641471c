"""Reads of the tenancy app."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from platform_core.common.errors import NotFound
from platform_core.tenancy.models import ApiKey, Tenant


def tenant_get_by_slug(*, slug: str) -> Tenant:
    """The tenant with this slug, or NotFound."""
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise NotFound(f"No tenant with slug {slug!r}.")
    return tenant


def tenant_list_for_staff(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Tenant]:
    """Tenants a console user may see: all for superusers, their memberships otherwise."""
    if not getattr(user, "is_active", False) or not getattr(user, "is_staff", False):
        return Tenant.objects.none()
    if getattr(user, "is_superuser", False):
        return Tenant.objects.all()
    return Tenant.objects.filter(memberships__user=user).distinct()


def api_key_list(*, tenant: Tenant) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(tenant=tenant)
