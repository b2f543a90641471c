"""Reads of the jobs app."""

from __future__ import annotations

from django.db.models import QuerySet

from platform_core.common.errors import NotFound
from platform_core.jobs.models import ACTIVE_STATUSES, JobKind, ModelVersion, TrainingJob, VersionState
from platform_core.tenancy.models import Tenant


def model_version_active(*, tenant: Tenant) -> ModelVersion | None:
    """The version serving ``tenant`` now, or None before the first promotion."""
    return ModelVersion.objects.for_tenant(tenant).filter(state=VersionState.ACTIVE).first()


def model_version_list(*, tenant: Tenant) -> QuerySet[ModelVersion]:
    """Every version of the tenant, newest first."""
    return ModelVersion.objects.for_tenant(tenant).order_by("-created_at", "-id")


def model_version_get_for_tenant(*, tenant: Tenant, version_id: int) -> ModelVersion:
    version = ModelVersion.objects.for_tenant(tenant).filter(pk=version_id).first()
    if version is None:
        raise NotFound(f"No model version {version_id}.")
    return version


def training_job_get_for_tenant(*, tenant: Tenant, job_id: int) -> TrainingJob:
    """The tenant's job; another tenant's id is reported exactly like a missing one."""
    job = TrainingJob.objects.for_tenant(tenant).filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"No job {job_id}.")
    return job


def training_job_list(*, tenant: Tenant, kind: str | None = None) -> QuerySet[TrainingJob]:
    qs = TrainingJob.objects.for_tenant(tenant)
    return qs.filter(kind=kind) if kind else qs


def training_job_unfinished(*, tenant: Tenant, kind: str = JobKind.TRAIN) -> TrainingJob | None:
    """The tenant's pending or running job of ``kind``, if any."""
    return TrainingJob.objects.for_tenant(tenant).filter(kind=kind, status__in=ACTIVE_STATUSES).first()
