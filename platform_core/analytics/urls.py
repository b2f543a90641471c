"""Analytics routes under /api/v1/ (docs/analytics.md)."""

from django.urls import path

from platform_core.analytics import apis

urlpatterns = [
    path("analytics/funnel", apis.FunnelApi.as_view(), name="analytics-funnel"),
    path("analytics/retention", apis.RetentionApi.as_view(), name="analytics-retention"),
    path("analytics/paths", apis.PathsApi.as_view(), name="analytics-paths"),
    path("trending", apis.TrendingApi.as_view(), name="trending"),
]
