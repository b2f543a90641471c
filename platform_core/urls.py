from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from platform_core.api import views as api_views

urlpatterns = [
    path("healthz", api_views.healthz, name="healthz"),
    path("api/v1/", include("platform_core.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("admin/", admin.site.urls),
    # Last: any other path under /api/ (a trailing slash included) answers a JSON 404.
    re_path(r"^api/", api_views.api_not_found, name="api-not-found"),
]

handler404 = api_views.handler404
handler500 = api_views.handler500
