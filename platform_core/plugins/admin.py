"""Console: a tenant's plugin config, edited through a form generated from the spec."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html_join

from platform_core.console.scoping import (
    ReadOnlyAdminMixin,
    TenantScopedAdmin,
    TenantScopedInline,
    rows_for_tenants,
    scoped_form,
    tenants_for_request,
)
from platform_core.plugins.forms import TenantConfigAddForm, config_form_class
from platform_core.plugins.models import ConfigChangeSource, TenantConfig, TenantConfigChange
from platform_core.plugins.selectors import tenant_plugin_get
from platform_core.plugins.services import tenant_config_update
from platform_core.tenancy.models import Tenant


def _diff_html(change: TenantConfigChange) -> str:
    rows = [(k, repr(old), repr(new)) for k, (old, new) in change.diff.items()]
    return format_html_join("", "<div><b>{}</b>: {} → {}</div>", rows) or "—"


class TenantConfigChangeInline(TenantScopedInline, admin.TabularInline):
    model = TenantConfigChange
    extra = 0
    can_delete = False
    fields = ("changed_at", "changed_by_name", "source", "changes")
    readonly_fields = fields
    ordering = ("-changed_at", "-id")

    @admin.display(description="old → new")
    def changes(self, obj: TenantConfigChange) -> str:
        return _diff_html(obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TenantConfig)
class TenantConfigAdmin(TenantScopedAdmin):
    list_display = ("tenant", "domain", "updated_at", "updated_by")
    list_select_related = ("tenant", "updated_by")
    search_fields = ("tenant__slug",)
    inlines = (TenantConfigChangeInline,)

    @admin.display(description="domain")
    def domain(self, obj: TenantConfig) -> str:
        return obj.tenant.domain

    def get_readonly_fields(self, request: HttpRequest, obj: TenantConfig | None = None) -> tuple[str, ...]:
        return ("tenant", "updated_at", "updated_by") if obj else ()

    def get_form(
        self, request: HttpRequest, obj: TenantConfig | None = None, change: bool = False, **kwargs: Any
    ):  # type: ignore[no-untyped-def]
        if obj is None:
            form = scoped_form(TenantConfigAddForm, request)  # a fresh class per request
            form.base_fields["tenant"].queryset = rows_for_tenants(
                Tenant.objects.exclude(pk__in=TenantConfig.unscoped.values("tenant")),
                tenants_for_request(request),
            )
            return form
        return scoped_form(config_form_class(tenant_plugin_get(tenant=obj.tenant)), request)

    def save_model(self, request: HttpRequest, obj: TenantConfig, form: Any, change: bool) -> None:
        values = form.config_values() if change else {}
        tenant_config_update(
            tenant=obj.tenant, values=values, actor=request.user, source=ConfigChangeSource.ADMIN
        )
        saved = TenantConfig.objects.for_tenant(obj.tenant).get()
        obj.pk, obj.values = saved.pk, saved.values


@admin.register(TenantConfigChange)
class TenantConfigChangeAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("tenant", "changed_at", "changed_by_name", "source", "changes")
    list_filter = ("source",)
    list_select_related = ("tenant",)
    fields = ("tenant", "changed_at", "changed_by_name", "source", "changes")
    readonly_fields = fields

    @admin.display(description="old → new")
    def changes(self, obj: TenantConfigChange) -> str:
        return _diff_html(obj)
