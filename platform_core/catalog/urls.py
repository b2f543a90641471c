from django.urls import path

from platform_core.catalog import apis

urlpatterns = [
    path("users", apis.UserCollectionApi.as_view(), name="user-list"),
    path("users/<str:external_id>", apis.UserDetailApi.as_view(), name="user-detail"),
    path("items", apis.ItemCollectionApi.as_view(), name="item-list"),
    path("items/<str:external_id>", apis.ItemDetailApi.as_view(), name="item-detail"),
    path("erasures/<int:erasure_id>", apis.ErasureDetailApi.as_view(), name="erasure-detail"),
]
