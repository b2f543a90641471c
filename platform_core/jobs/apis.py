"""REST endpoints of the jobs app: start a training, read a job, list model versions.

Scopes: starting a training, promoting and rolling back need ``admin``; reads need ``read``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from platform_core.common.api import TenantAPIView
from platform_core.jobs import selectors, services
from platform_core.jobs.models import ModelVersion, TrainingJob

_JOB_OUT = inline_serializer(
    "TrainingJob",
    {
        "job_id": serializers.IntegerField(),
        "kind": serializers.CharField(),
        "status": serializers.CharField(),
        "progress": serializers.DictField(),
        "config": serializers.DictField(),
        "result": serializers.DictField(),
        "error": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "started_at": serializers.DateTimeField(allow_null=True),
        "finished_at": serializers.DateTimeField(allow_null=True),
        "duration_seconds": serializers.FloatField(allow_null=True),
    },
)
_VERSION_OUT = inline_serializer(
    "ModelVersion",
    {
        "version_id": serializers.IntegerField(),
        "job_id": serializers.IntegerField(allow_null=True),
        "algorithm": serializers.CharField(),
        "state": serializers.CharField(),
        "active": serializers.BooleanField(),
        "metrics": serializers.DictField(),
        "validation_metric": serializers.CharField(),
        "gate_passed": serializers.BooleanField(),
        "gate_reason": serializers.CharField(),
        "data_window": serializers.DictField(),
        "created_at": serializers.DateTimeField(),
        "activated_at": serializers.DateTimeField(allow_null=True),
    },
)


def _conflict(when: str) -> OpenApiResponse:
    # The body is the one error shape (added by platform_core.api.schema's hook).
    return OpenApiResponse(description=f"Conflict: {when}.")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def job_out(job: TrainingJob) -> dict[str, Any]:
    duration = job.duration_seconds
    return {
        "job_id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "config": job.config,
        "result": job.result,
        "error": job.error,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "duration_seconds": round(duration, 3) if duration is not None else None,
    }


def version_out(version: ModelVersion) -> dict[str, Any]:
    return {
        "version_id": version.pk,
        "job_id": version.job_id,
        "algorithm": version.algorithm,
        "state": version.state,
        "active": version.state == "active",
        "metrics": version.metrics,
        "validation_metric": version.validation_metric,
        "gate_passed": version.gate_passed,
        "gate_reason": version.gate_reason,
        "data_window": version.data_window,
        "created_at": _iso(version.created_at),
        "activated_at": _iso(version.activated_at),
    }


class TrainRequestSerializer(serializers.Serializer):
    config = serializers.DictField(
        required=False, help_text="Training options: epochs, max_minutes, dim, max_len, seed."
    )


class ModelTrainApi(TenantAPIView):
    """Start training the tenant's model; answers 202 with the job, 409 if one is running."""

    required_scope = "admin"

    @extend_schema(
        request=TrainRequestSerializer,
        responses={202: _JOB_OUT, 409: _conflict("a training job of this tenant is pending or running")},
        operation_id="models_train",
    )
    def post(self, request: Request) -> Response:
        body = TrainRequestSerializer(data=request.data if request.data is not None else {})
        body.is_valid(raise_exception=True)
        job = services.training_job_request(
            tenant=self.tenant,
            config=body.validated_data.get("config"),
            requested_by=f"api-key:{request.auth.prefix}",
        )
        return Response(job_out(job), status=status.HTTP_202_ACCEPTED)


class JobDetailApi(TenantAPIView):
    required_scope = "read"

    @extend_schema(responses={200: _JOB_OUT}, operation_id="jobs_retrieve")
    def get(self, request: Request, job_id: int) -> Response:
        job = selectors.training_job_get_for_tenant(tenant=self.tenant, job_id=job_id)
        return Response(job_out(job))


class ModelListApi(TenantAPIView):
    """The tenant's model versions, newest first (at most ``limit``, default 50)."""

    required_scope = "read"

    @extend_schema(
        responses={
            200: inline_serializer(
                "ModelVersionList",
                {
                    "active_version_id": serializers.IntegerField(allow_null=True),
                    "results": serializers.ListField(child=_VERSION_OUT),
                },
            )
        },
        parameters=[
            OpenApiParameter("limit", int, description="at most this many versions, 1 to 500 (default 50)")
        ],
        operation_id="models_list",
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("limit", "50")
        if not raw.isdigit() or not 1 <= int(raw) <= 500:
            raise serializers.ValidationError({"limit": ["must be an integer between 1 and 500"]})
        versions = list(selectors.model_version_list(tenant=self.tenant)[: int(raw)])
        active = selectors.model_version_active(tenant=self.tenant)
        return Response(
            {
                "active_version_id": active.pk if active else None,
                "results": [version_out(v) for v in versions],
            }
        )


class ModelPromoteApi(TenantAPIView):
    """Make a version active by hand (the artifact must load)."""

    required_scope = "admin"

    @extend_schema(
        request=None,
        responses={200: _VERSION_OUT, 409: _conflict("the version's artifact cannot be loaded")},
        operation_id="models_promote",
    )
    def post(self, request: Request, version_id: int) -> Response:
        version = selectors.model_version_get_for_tenant(tenant=self.tenant, version_id=version_id)
        return Response(version_out(services.model_version_promote(version=version)))


class ModelRollbackApi(TenantAPIView):
    """Re-activate the previously active version."""

    required_scope = "admin"

    @extend_schema(
        request=None,
        responses={200: _VERSION_OUT, 409: _conflict("no previously active version")},
        operation_id="models_rollback",
    )
    def post(self, request: Request) -> Response:
        return Response(version_out(services.model_version_rollback(tenant=self.tenant)))
