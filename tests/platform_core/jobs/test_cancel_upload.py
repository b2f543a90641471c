"""A job cancelled while it writes its artifacts is never promoted; cancel and promotion share a row lock."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone

from platform_core.common.errors import ServiceError
from platform_core.jobs import training
from platform_core.jobs.models import JobStatus, ModelVersion, TrainingJob, VersionState
from platform_core.jobs.selectors import model_version_active
from platform_core.jobs.services import (
    model_version_promote,
    training_job_cancel,
    training_job_lock,
    training_job_request,
)
from platform_core.jobs.training import training_job_run

SMALL = {"epochs": 4, "dim": 8, "max_minutes": 2, "seed": 1}


def _active(tenant, path: str = "old/1") -> ModelVersion:
    return ModelVersion.objects.for_tenant(tenant).create(
        tenant=tenant,
        algorithm="transformer",
        artifact_path=path,
        metrics={"transformer": {"val_ndcg@10": 0.0}},  # any trained model beats it
        validation_metric="val_ndcg@10",
        state=VersionState.ACTIVE,
        activated_at=timezone.now(),
    )


@pytest.mark.django_db
def test_a_job_cancelled_during_upload_is_never_promoted(seeded_tenant, monkeypatch):
    tenant = seeded_tenant
    old = _active(tenant)
    job = training_job_request(tenant=tenant, config=SMALL, enqueue=False)
    upload = training.artifact_upload

    def upload_then_cancel(**kwargs):
        written = upload(**kwargs)
        # An operator cancels while the files are being written (the job is RUNNING, stage "upload").
        training_job_cancel(job=TrainingJob.unscoped.get(pk=job.pk), reason="cancelled during upload")
        return written

    monkeypatch.setattr(training, "artifact_upload", upload_then_cancel)
    job = training_job_run(job_id=job.pk, worker="test")
    assert job.status == JobStatus.CANCELLED and job.error == "cancelled during upload"
    assert model_version_active(tenant=tenant) == old
    # Nothing of the cancelled training stays: no version row, no files.
    assert not ModelVersion.objects.for_tenant(tenant).filter(job=job).exists()
    assert not default_storage.exists(f"{tenant.slug}/{job.pk}")


@pytest.mark.django_db(transaction=True)
def test_a_cancel_waits_for_a_promotion_in_progress_and_then_refuses(tenant):
    if connection.vendor != "postgresql":
        pytest.skip(
            "PostgreSQL stage only: SQLite has no row locks (a writer locks the whole file, so the two "
            "transactions cannot interleave there at all)"
        )
    _active(tenant)
    job = TrainingJob.objects.for_tenant(tenant).create(tenant=tenant, status=JobStatus.RUNNING, task_id="t")
    new = ModelVersion.objects.for_tenant(tenant).create(
        tenant=tenant, job=job, algorithm="transformer", artifact_path="new/1", state=VersionState.CANDIDATE
    )
    locked = threading.Event()

    def promote() -> None:
        try:
            with transaction.atomic():
                assert training_job_lock(job_id=job.pk) == JobStatus.RUNNING
                model_version_promote(version=new, check_artifact=False)
                locked.set()
                time.sleep(0.8)  # the switch is still uncommitted
        finally:
            connection.close()

    worker = threading.Thread(target=promote)
    worker.start()
    assert locked.wait(10)
    started = time.monotonic()
    with pytest.raises(ServiceError) as refused:
        training_job_cancel(job=job)
    worker.join()
    assert time.monotonic() - started > 0.4  # it waited for the promotion's commit
    assert refused.value.status_code == 409 and "promoting its model" in refused.value.message
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert model_version_active(tenant=tenant) == new
