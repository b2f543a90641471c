from django.urls import path

from platform_core.profiles import apis

urlpatterns = [
    path("profiles/<str:user_id>", apis.ProfileDetailApi.as_view(), name="profiles-detail"),
]
