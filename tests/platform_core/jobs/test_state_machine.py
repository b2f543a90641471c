"""The job state machine: claims, duplicate deliveries, one job per tenant, cancel, sweeper."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from platform_core.common.errors import ServiceError, ValidationFailed
from platform_core.jobs.models import JobKind, JobStatus, TrainingJob
from platform_core.jobs.services import (
    training_job_cancel,
    training_job_claim,
    training_job_request,
    training_job_sweep_stale,
)
from platform_core.jobs.training import training_job_run

pytestmark = pytest.mark.django_db


def test_request_creates_pending_job_and_enqueues_on_commit(tenant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = training_job_request(tenant=tenant, requested_by="test", config={"epochs": 3})
    assert job.status == JobStatus.PENDING
    assert job.config == {"epochs": 3}
    assert job.task_id
    # The task is sent only when the transaction commits, never for a rolled-back row.
    assert len(callbacks) == 1


def test_claim_is_granted_once(tenant):
    job = training_job_request(tenant=tenant, enqueue=False)
    first = training_job_claim(job_id=job.pk, worker="w1")
    second = training_job_claim(job_id=job.pk, worker="w2")
    assert first is not None and first.status == JobStatus.RUNNING and first.worker == "w1"
    assert second is None
    job.refresh_from_db()
    assert job.worker == "w1"


def test_duplicate_delivery_of_a_finished_job_does_nothing(tenant):
    job = training_job_request(tenant=tenant, enqueue=False)
    TrainingJob.unscoped.filter(pk=job.pk).update(
        status=JobStatus.SUCCEEDED, finished_at=timezone.now(), result={"model_version": 7}
    )
    assert training_job_run(job_id=job.pk, worker="late-duplicate") is None
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == {"model_version": 7}
    assert job.worker == ""


def test_second_concurrent_training_is_refused_with_409(tenant):
    first = training_job_request(tenant=tenant, enqueue=False)
    with pytest.raises(ServiceError) as info:
        training_job_request(tenant=tenant, enqueue=False)
    assert info.value.status_code == 409
    assert info.value.code == "job_in_progress"
    assert f"job {first.pk}" in info.value.message
    assert TrainingJob.objects.for_tenant(tenant).count() == 1


def test_a_profiles_job_may_run_beside_a_training(tenant):
    training_job_request(tenant=tenant, enqueue=False)
    job = training_job_request(tenant=tenant, kind=JobKind.PROFILES, enqueue=False)
    assert job.kind == JobKind.PROFILES


def test_other_tenants_are_not_blocked(tenant, other_tenant):
    training_job_request(tenant=tenant, enqueue=False)
    assert training_job_request(tenant=other_tenant, enqueue=False).status == JobStatus.PENDING


def test_a_new_training_is_allowed_after_the_first_finished(tenant):
    job = training_job_request(tenant=tenant, enqueue=False)
    TrainingJob.unscoped.filter(pk=job.pk).update(status=JobStatus.FAILED)
    assert training_job_request(tenant=tenant, enqueue=False).pk != job.pk


@pytest.mark.parametrize(
    ("config", "path", "rule"),
    [
        ({"epochs": 0}, "config.epochs", "must be between 1 and 200"),
        ({"epochs": "5"}, "config.epochs", "must be an integer"),
        ({"epochs": True}, "config.epochs", "must be an integer"),
        ({"learning": 1}, "config.learning", "is not a training option"),
    ],
)
def test_bad_training_options_are_refused_and_nothing_is_written(tenant, config, path, rule):
    with pytest.raises(ValidationFailed) as info:
        training_job_request(tenant=tenant, config=config, enqueue=False)
    assert rule in info.value.fields[path][0]
    assert not TrainingJob.objects.for_tenant(tenant).exists()


def test_cancel_pending_then_cancel_again_is_refused(tenant):
    job = training_job_request(tenant=tenant, enqueue=False)
    training_job_cancel(job=job)
    assert job.status == JobStatus.CANCELLED
    # A delivery that arrives after the cancel finds nothing to claim.
    assert training_job_claim(job_id=job.pk) is None
    with pytest.raises(ServiceError) as info:
        training_job_cancel(job=job)
    assert info.value.status_code == 409


def test_sweeper_fails_running_jobs_without_heartbeat_only(tenant, other_tenant):
    now = timezone.now()
    stale = training_job_request(tenant=tenant, enqueue=False)
    fresh = training_job_request(tenant=other_tenant, enqueue=False)
    training_job_claim(job_id=stale.pk)
    training_job_claim(job_id=fresh.pk)
    TrainingJob.unscoped.filter(pk=stale.pk).update(heartbeat_at=now - dt.timedelta(seconds=121))
    TrainingJob.unscoped.filter(pk=fresh.pk).update(heartbeat_at=now - dt.timedelta(seconds=5))

    assert training_job_sweep_stale(now=now) == [stale.pk]
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == JobStatus.FAILED
    assert "no heartbeat" in stale.error
    assert fresh.status == JobStatus.RUNNING
    # The redelivered message (acks_late) finds the job finished and does nothing.
    assert training_job_run(job_id=stale.pk) is None
