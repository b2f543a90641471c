"""Serving routes under /api/v1/ (docs/serving.md)."""

from django.urls import path

from platform_core.serving import apis

urlpatterns = [
    path(
        "users/<str:external_id>/recommendations", apis.RecommendationsApi.as_view(), name="recommendations"
    ),
    path("users/<str:external_id>/profile", apis.ProfileApi.as_view(), name="user-profile"),
    path("users/<str:external_id>/risk", apis.RiskApi.as_view(), name="user-risk"),
    path("items/<str:external_id>/similar", apis.SimilarItemsApi.as_view(), name="item-similar"),
    path("popular", apis.PopularApi.as_view(), name="popular"),
    path("feedback", apis.FeedbackApi.as_view(), name="feedback"),
]
