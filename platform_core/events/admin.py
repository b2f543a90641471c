"""Console page for events: read-only, filter by type, date hierarchy, search by external id."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from platform_core.console.scoping import ReadOnlyAdminMixin, TenantScopedAdmin
from platform_core.events.models import Event
from platform_core.events.sensitive import SENSITIVE_CONTEXT_PERMISSION, context_for_reader
from platform_core.plugins.selectors import tenant_plugin_get


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = (
        "event_id",
        "tenant",
        "user_external_id",
        "item_external_id",
        "type",
        "timestamp",
        "value",
    )
    list_filter = ("type", "tenant")
    date_hierarchy = "timestamp"
    search_fields = ("event_id", "user__external_id", "item__external_id")
    list_select_related = ("tenant", "user", "item")
    show_full_result_count = False  # COUNT(*) over millions of events on every page is too slow
    ordering = ("-timestamp",)

    # The stored context holds sealed tokens for sensitive fields: show the reader's view instead.
    exclude = ("context",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A callable per request: the admin instance is shared by every request (and thread).
        reveal = request.user.has_perm(SENSITIVE_CONTEXT_PERMISSION)

        @admin.display(description="context")
        def context_shown(event: Event) -> str:
            plugin = tenant_plugin_get(tenant=event.tenant)
            shown = context_for_reader(
                plugin=plugin, event_type=event.type, context=event.context or {}, reveal=reveal
            )
            return json.dumps(shown, ensure_ascii=False, sort_keys=True)

        return (*super().get_readonly_fields(request, obj), context_shown)

    @admin.display(description="user", ordering="user__external_id")
    def user_external_id(self, obj: Event) -> str:
        return obj.user.external_id

    @admin.display(description="item", ordering="item__external_id")
    def item_external_id(self, obj: Event) -> str:
        return obj.item.external_id if obj.item_id else "—"
