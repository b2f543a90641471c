"""The beat fan-out: due tenants get jobs, tenants with a job running are skipped."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from platform_core.jobs.models import JobKind, JobStatus, TenantSchedule, TrainingJob
from platform_core.jobs.services import schedules_fan_out, training_job_request

pytestmark = pytest.mark.django_db


def test_fan_out_starts_due_jobs_and_skips_running_ones(
    tenant, other_tenant, django_capture_on_commit_callbacks
):
    now = timezone.now()
    TenantSchedule.objects.create(tenant=tenant, retrain_every_hours=24, profiles_every_hours=0)
    TenantSchedule.objects.create(tenant=other_tenant, retrain_every_hours=24, profiles_every_hours=6)
    busy = training_job_request(tenant=other_tenant, enqueue=False)  # other_tenant is training already

    with django_capture_on_commit_callbacks(execute=False):
        created = schedules_fan_out(now=now)
    assert sorted((j.tenant.slug, j.kind) for j in created) == [
        ("tenant-a", JobKind.TRAIN),
        ("tenant-b", JobKind.PROFILES),
    ]
    assert all(j.requested_by == "schedule" for j in created)
    assert TrainingJob.objects.for_tenant(other_tenant).filter(kind=JobKind.TRAIN).get() == busy


def test_a_recent_success_is_not_due_an_old_one_is(tenant, django_capture_on_commit_callbacks):
    TenantSchedule.objects.create(tenant=tenant, retrain_every_hours=24, profiles_every_hours=0)
    now = timezone.now()
    job = TrainingJob.objects.for_tenant(tenant).create(
        tenant=tenant, status=JobStatus.SUCCEEDED, finished_at=now - dt.timedelta(hours=23)
    )
    assert schedules_fan_out(now=now) == []
    TrainingJob.unscoped.filter(pk=job.pk).update(finished_at=now - dt.timedelta(hours=25))
    with django_capture_on_commit_callbacks(execute=False):
        assert [j.kind for j in schedules_fan_out(now=now)] == [JobKind.TRAIN]


def test_disabled_schedules_do_nothing(tenant):
    TenantSchedule.objects.create(tenant=tenant, enabled=False)
    assert schedules_fan_out() == []
