"""Console pages for end users and items.

Attributes are shown read-only with sensitive values masked, and rows are
neither added nor renamed here: writes go through the API's services, which
validate ids and attributes against the domain schema and encrypt sensitive
fields (an admin form would bypass both). Items can be (de)activated.
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from platform_core.catalog.models import EndUser, ErasureReceipt, Item
from platform_core.console.scoping import ReadOnlyAdminMixin, TenantScopedAdmin
from platform_core.plugins.crypto import attributes_redact
from platform_core.plugins.selectors import tenant_plugin_get


class _AttributesAdmin(TenantScopedAdmin):
    kind: str = "user"
    exclude = ("attributes",)
    search_fields = ("external_id",)
    list_select_related = ("tenant",)
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Rows come from the API, whose services check the id and the
        # attributes against the domain schema; an admin form would check neither.
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Moving or renaming a row would orphan its events and skip the id rules.
        return ("tenant", "external_id", *super().get_readonly_fields(request, obj))

    @admin.display(description="attributes (sensitive values masked)")
    def attributes_display(self, obj: Any) -> str:
        plugin = tenant_plugin_get(tenant=obj.tenant)
        shown = attributes_redact(plugin=plugin, kind=self.kind, attributes=obj.attributes or {})
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", sorted(shown.items()))
        return format_html("<table>{}</table>", rows) if shown else "—"


@admin.register(EndUser)
class EndUserAdmin(_AttributesAdmin):
    kind = "user"
    list_display = ("external_id", "tenant", "created_at", "updated_at")
    list_filter = ("tenant",)
    readonly_fields = ("attributes_display", "created_at", "updated_at")


@admin.register(Item)
class ItemAdmin(_AttributesAdmin):
    kind = "item"
    list_display = ("external_id", "tenant", "active", "created_at", "updated_at")
    list_filter = ("tenant", "active")
    readonly_fields = ("attributes_display", "created_at", "updated_at")


@admin.register(ErasureReceipt)
class ErasureReceiptAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    """Erasure receipts are an audit trail: read-only here (the erasure itself is the API's DELETE)."""

    list_display = ("id", "tenant", "erased_at", "retrain_due_by", "retrained_at", "retrained_version_id")
    list_filter = ("tenant",)
    list_select_related = ("tenant",)
    date_hierarchy = "erased_at"
