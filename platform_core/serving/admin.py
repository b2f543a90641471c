"""Console pages of serving: online metrics (CTR, conversion) next to each version's offline metrics."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from platform_core.console.scoping import TenantScopedAdmin
from platform_core.serving.models import ModelVersionServingStats, RecommendationFeedback


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2%}"


class _ReadOnly(TenantScopedAdmin):
    """Serving's rows are written by the API only; the console shows them."""

    list_select_related = ("tenant",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ModelVersionServingStats)
class ModelVersionServingStatsAdmin(_ReadOnly):
    list_display = (
        "model_version", "tenant", "state", "algorithm", "offline_metric", "offline_value",
        "lists_served", "items_shown", "clicks", "conversions", "dismissals", "ctr_display", "conversion_display",
        "updated_at",
    )  # fmt: skip
    list_filter = ("tenant", "model_version__state")
    ordering = ("-model_version__created_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("model_version")

    @admin.display(description="state")
    def state(self, obj: ModelVersionServingStats) -> str:
        return obj.model_version.state

    @admin.display(description="algorithm")
    def algorithm(self, obj: ModelVersionServingStats) -> str:
        return obj.model_version.algorithm

    @admin.display(description="offline metric")
    def offline_metric(self, obj: ModelVersionServingStats) -> str:
        return obj.model_version.validation_metric or "–"

    @admin.display(description="offline value")
    def offline_value(self, obj: ModelVersionServingStats) -> str:
        value = obj.model_version.primary_metric()
        return "–" if value is None else f"{value:.4f}"

    @admin.display(description="CTR")
    def ctr_display(self, obj: ModelVersionServingStats) -> str:
        return _pct(obj.ctr)

    @admin.display(description="conversion")
    def conversion_display(self, obj: ModelVersionServingStats) -> str:
        return _pct(obj.conversion_rate)


@admin.register(RecommendationFeedback)
class RecommendationFeedbackAdmin(_ReadOnly):
    list_display = ("created_at", "tenant", "model_version", "item_external_id", "rank", "action")
    list_filter = ("tenant", "action")
    search_fields = ("item_external_id",)
    ordering = ("-created_at",)
