from django.urls import path

from platform_core.jobs import apis

urlpatterns = [
    path("models/train", apis.ModelTrainApi.as_view(), name="models-train"),
    path("models/rollback", apis.ModelRollbackApi.as_view(), name="models-rollback"),
    path("models/<int:version_id>/promote", apis.ModelPromoteApi.as_view(), name="models-promote"),
    path("models", apis.ModelListApi.as_view(), name="models-list"),
    path("jobs/<int:job_id>", apis.JobDetailApi.as_view(), name="jobs-detail"),
]
