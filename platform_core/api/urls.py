"""/api/v1 routing: each app contributes its own ``urls.py``.

Serving first: its reads are the hottest routes, and Django tries the
patterns in order (no app's patterns overlap another's).
"""

from django.urls import include, path

urlpatterns = [
    path("", include("platform_core.serving.urls")),
    path("", include("platform_core.tenancy.urls")),
    path("", include("platform_core.catalog.urls")),
    path("", include("platform_core.events.urls")),
    path("", include("platform_core.jobs.urls")),
    path("", include("platform_core.profiles.urls")),
    path("", include("platform_core.analytics.urls")),
]
