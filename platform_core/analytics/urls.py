"""Analytics routes under /api/v1/ (docs/analytics.md)."""

from django.urls import path

from platform_core.analytics import apis, apis_insight, segment_apis

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
    path("analytics/trajectories", apis_insight.GroupTrajectoryApi.as_view(), name="analytics-trajectories"),
    path("analytics/impact", apis_insight.ImpactApi.as_view(), name="analytics-impact"),
    path(
        "users/<str:external_id>/trajectory", apis_insight.UserTrajectoryApi.as_view(), name="user-trajectory"
    ),
]
