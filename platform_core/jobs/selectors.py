"""Reads of the jobs app."""

from __future__ import annotations

import datetime as dt

from django.db.models import F, Min, QuerySet
from django.db.models.functions import Coalesce

from platform_core.common.errors import NotFound
from platform_core.events.models import Event
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


def model_version_data_cutoff(*, version: ModelVersion) -> dt.datetime:
    """When ``version``'s training data was read: its job's start (the export follows the claim).

    A version without a job (deleted, or made by hand) counts from its creation, which is later:
    the rule below then errs towards "trained on it".
    """
    job = version.job
    return job.started_at if job is not None and job.started_at is not None else version.created_at


def model_versions_trained_on_user(*, tenant: Tenant, user_pk: int) -> list[ModelVersion]:
    """The versions whose training data may hold this user's events, oldest first.

    Rule: a version is trained on the user when its data cutoff (see
    ``model_version_data_cutoff``) is later than the first event of the user
    that the platform received. Conservative: events of types that carry no
    training weight count too, so a version may be listed that in fact learnt
    nothing from the user; none that did is left out.
    """
    first = (
        Event.objects.for_tenant(tenant).filter(user_id=user_pk).aggregate(first=Min("received_at"))["first"]
    )
    if first is None:
        return []
    return list(
        ModelVersion.objects.for_tenant(tenant)
        .select_related("job")
        .annotate(cutoff=Coalesce(F("job__started_at"), F("created_at")))
        .filter(cutoff__gt=first)
        .order_by("pk")
    )
