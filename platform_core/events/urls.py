from django.urls import path

from platform_core.events import apis

urlpatterns = [
    path("events", apis.EventCollectionApi.as_view(), name="event-list"),
]
