"""/api/v1 routing: each app contributes its own ``urls.py``."""

from django.urls import include, path

urlpatterns = [
    path("", include("platform_core.tenancy.urls")),
    path("", include("platform_core.catalog.urls")),
    path("", include("platform_core.events.urls")),
    path("", include("platform_core.jobs.urls")),
    path("", include("platform_core.profiles.urls")),
    path("", include("platform_core.serving.urls")),
]
