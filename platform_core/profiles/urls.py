from django.urls import path  # noqa: F401

# The persona is served at /api/v1/users/{id}/profile (platform_core.serving).
urlpatterns: list = []
