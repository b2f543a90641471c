"""Tenant-limited admin: staff users see and edit only the tenants they belong to.

Superusers see everything. Other staff need Django's model permissions as
usual *and* a ``TenantMembership``; querysets, foreign-key choices and saves
are all limited to their tenants, so another tenant's row is "not found".
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest

from platform_core.tenancy.models import Tenant


def tenants_for_request(request: HttpRequest) -> QuerySet[Tenant] | None:
    """The tenants this console user may act on; None means all (superuser)."""
    from platform_core.tenancy.selectors import tenant_list_for_staff

    user = request.user
    if getattr(user, "is_superuser", False):
        return None
    return tenant_list_for_staff(user=user)


class TenantScopedAdmin(admin.ModelAdmin):
    """Base ModelAdmin of tenant-owned models (``tenant_field`` names the FK path)."""

    tenant_field: str = "tenant"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        qs = super().get_queryset(request)
        allowed = tenants_for_request(request)
        if allowed is None:
            return qs
        return qs.filter(**{f"{self.tenant_field}__in": allowed})

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey, request: HttpRequest, **kwargs: Any
    ) -> Any:
        allowed = tenants_for_request(request)
        if allowed is not None:
            related = db_field.related_model
            if related is Tenant:
                kwargs["queryset"] = allowed
            elif any(f.name == "tenant" for f in related._meta.fields):
                kwargs["queryset"] = related._default_manager.filter(tenant__in=allowed)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        allowed = tenants_for_request(request)
        tenant_id = getattr(obj, "tenant_id", None)
        if allowed is not None and not allowed.filter(pk=tenant_id).exists():
            raise PermissionDenied("Not a tenant you belong to.")
        super().save_model(request, obj, form, change)
