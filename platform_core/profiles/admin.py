"""Read-only view of the personas in the console."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from platform_core.console.scoping import TenantScopedAdmin
from platform_core.profiles.models import UserProfile


@admin.register(UserProfile)
class UserProfileAdmin(TenantScopedAdmin):
    list_display = ("user", "tenant", "segment", "n_events", "top_interests", "has_embedding", "computed_at")
    list_filter = ("segment", "tenant")
    search_fields = ("user__external_id",)
    list_select_related = ("user", "tenant")
    exclude = ("embedding",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in UserProfile._meta.fields if f.name != "embedding"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="interests")
    def top_interests(self, profile: UserProfile) -> str:
        return ", ".join(f"{i['key']} ({i['weight']:.2f})" for i in (profile.interests or [])[:3])

    @admin.display(boolean=True, description="embedding")
    def has_embedding(self, profile: UserProfile) -> bool:
        return profile.embedding is not None
