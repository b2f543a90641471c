"""Console pages for end users and items."""

from django.contrib import admin

from platform_core.catalog.models import EndUser, Item
from platform_core.console.scoping import TenantScopedAdmin


@admin.register(EndUser)
class EndUserAdmin(TenantScopedAdmin):
    list_display = ("external_id", "tenant", "created_at", "updated_at")
    list_filter = ("tenant",)
    search_fields = ("external_id",)
    readonly_fields = ("created_at", "updated_at")
    list_select_related = ("tenant",)
    show_full_result_count = False


@admin.register(Item)
class ItemAdmin(TenantScopedAdmin):
    list_display = ("external_id", "tenant", "active", "created_at", "updated_at")
    list_filter = ("tenant", "active")
    search_fields = ("external_id",)
    readonly_fields = ("created_at", "updated_at")
    list_select_related = ("tenant",)
    show_full_result_count = False
