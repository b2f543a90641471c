"""Analytics routes under /api/v1/ (docs/analytics.md)."""

from django.urls import path

from platform_core.analytics import apis, segment_apis

urlpatterns = [
    path("analytics/funnel", apis.FunnelApi.as_view(), name="analytics-funnel"),
    path("analytics/retention", apis.RetentionApi.as_view(), name="analytics-retention"),
    path("analytics/paths", apis.PathsApi.as_view(), name="analytics-paths"),
    path("trending", apis.TrendingApi.as_view(), name="trending"),
    path("analytics/segments", segment_apis.SegmentCollectionApi.as_view(), name="analytics-segments"),
    path(
        "analytics/segments/<int:segment_id>",
        segment_apis.SegmentDetailApi.as_view(),
        name="analytics-segment",
    ),
    path(
        "analytics/segments/<int:segment_id>/compute",
        segment_apis.SegmentComputeApi.as_view(),
        name="analytics-segment-compute",
    ),
]
