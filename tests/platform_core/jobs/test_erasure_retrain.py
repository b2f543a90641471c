"""Retrains after erasures: the sweep starts them within the window and the receipt records when."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from platform_core.catalog.models import ErasureReceipt
from platform_core.catalog.services import enduser_erase
from platform_core.jobs.erasure import erasure_retrains_sweep
from platform_core.jobs.models import ERASURE_REQUESTER, JobStatus, ModelVersion, TrainingJob, VersionState
from platform_core.jobs.selectors import model_version_active
from platform_core.jobs.training import events_frame_export, training_job_run
from platform_core.profiles.models import UserProfile
from tests.platform_core.jobs.conftest import events_seed

pytestmark = pytest.mark.django_db
SMALL = {"epochs": 8, "dim": 16, "max_minutes": 2, "seed": 1}


def _serving(tenant, *, value: float = 0.5) -> ModelVersion:
    """A serving version created now: after the planted events arrived, so trained on them."""
    return ModelVersion.objects.for_tenant(tenant).create(
        tenant=tenant,
        algorithm="transformer",
        artifact_path="x/1",
        metrics={"transformer": {"val_ndcg@10": value}},
        validation_metric="val_ndcg@10",
        state=VersionState.ACTIVE,
        activated_at=timezone.now(),
    )


def _sweep(at: dt.datetime, capture) -> list[int]:
    with capture(execute=False):  # the job's message is not sent: these tests run it themselves
        return erasure_retrains_sweep(now=at)


def test_the_sweep_batches_then_starts_one_retrain_and_retries_after_a_pause(
    tenant, settings, django_capture_on_commit_callbacks
):
    settings.ERASURE_RETRAIN_WINDOW_HOURS = 24
    settings.ERASURE_RETRAIN_RETRY_MINUTES = 60
    events_seed(tenant, n_users=3, n_items=3, per_user=2)
    _serving(tenant)
    first = enduser_erase(tenant=tenant, external_id="u0")
    second = enduser_erase(tenant=tenant, external_id="u1")
    t0 = first.erased_at

    assert _sweep(t0 + dt.timedelta(hours=11), django_capture_on_commit_callbacks) == []  # batching
    started = _sweep(t0 + dt.timedelta(hours=12, minutes=1), django_capture_on_commit_callbacks)
    assert len(started) == 1
    job = TrainingJob.objects.for_tenant(tenant).get(pk=started[0])
    assert job.requested_by == ERASURE_REQUESTER and job.status == JobStatus.PENDING
    for receipt in (first, second):
        receipt.refresh_from_db()
        assert receipt.retrain_job_id == job.pk and receipt.retrain_pending
    # While it is unfinished nothing else starts; a failure is retried after the pause only.
    assert _sweep(t0 + dt.timedelta(hours=13), django_capture_on_commit_callbacks) == []
    failed_at = t0 + dt.timedelta(hours=14)
    TrainingJob.objects.for_tenant(tenant).filter(pk=job.pk).update(
        status=JobStatus.FAILED, finished_at=failed_at
    )
    assert _sweep(failed_at + dt.timedelta(minutes=30), django_capture_on_commit_callbacks) == []
    again = _sweep(failed_at + dt.timedelta(minutes=61), django_capture_on_commit_callbacks)
    assert len(again) == 1 and again != started


def test_a_version_trained_after_the_erasure_settles_the_receipt_whoever_started_it(
    tenant, django_capture_on_commit_callbacks
):
    events_seed(tenant, n_users=2, n_items=3, per_user=2)
    old = _serving(tenant)
    receipt = enduser_erase(tenant=tenant, external_id="u0")
    assert receipt.model_versions == [old.pk] and receipt.retrain_pending
    # A scheduled training that claimed its work well after the erasure, then was promoted.
    later = receipt.erased_at + dt.timedelta(hours=2)
    job = TrainingJob.objects.for_tenant(tenant).create(
        tenant=tenant,
        status=JobStatus.SUCCEEDED,
        requested_by="schedule",
        started_at=later,
        finished_at=later,
    )
    ModelVersion.objects.for_tenant(tenant).filter(pk=old.pk).update(state=VersionState.RETIRED)
    new = ModelVersion.objects.for_tenant(tenant).create(
        tenant=tenant,
        job=job,
        algorithm="transformer",
        artifact_path="x/2",
        state=VersionState.ACTIVE,
        activated_at=later,
    )
    assert _sweep(later + dt.timedelta(minutes=5), django_capture_on_commit_callbacks) == []
    receipt.refresh_from_db()
    assert receipt.retrained_at == later and receipt.retrained_version_id == new.pk
    assert not receipt.retrain_pending
    assert not ErasureReceipt.objects.for_tenant(tenant).filter(retrained_at__isnull=True).exists()


def test_a_retrain_after_erasure_replaces_the_version_and_no_longer_holds_the_user(
    tenant, settings, django_capture_on_commit_callbacks
):
    """End to end with a real training: the serving version scored 1.0 (nothing can beat it), yet the
    retrain after an erasure goes live, because it is held to the popularity baseline only."""
    settings.JOBS_TRAIN_DEFAULTS = SMALL
    settings.ERASURE_RETRAIN_WINDOW_HOURS = 0.01  # due within 36 s
    events_seed(tenant)
    old = _serving(tenant, value=1.0)
    receipt = enduser_erase(tenant=tenant, external_id="u0")
    [job_id] = _sweep(timezone.now() + dt.timedelta(minutes=1), django_capture_on_commit_callbacks)

    job = training_job_run(job_id=job_id, worker="test")

    assert job.status == JobStatus.SUCCEEDED, job.error
    new = model_version_active(tenant=tenant)
    assert new is not None and new.pk != old.pk and new.job_id == job.pk, new
    assert "u0" not in set(events_frame_export(tenant=tenant).user_id)
    assert UserProfile.objects.for_tenant(tenant).exclude(embedding=None).count() == 39
    assert _sweep(timezone.now(), django_capture_on_commit_callbacks) == []
    receipt.refresh_from_db()
    assert receipt.retrained_version_id == new.pk and receipt.retrained_at == new.activated_at
