"""A real ``celery -A platform_core worker`` process trains a model end to end.

The worker runs on the configured broker: the embedded filesystem broker in a
temporary folder by default, Redis (under a per-test key prefix) when
CELERY_BROKER_URL says so, as in CI. It reads the test database, which is a
file (SQLite) or a real server database (PostgreSQL) for this reason.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from django.utils import timezone

from platform_core.jobs.models import JobKind, JobStatus, ModelVersion, TrainingJob, VersionState
from platform_core.jobs.monitoring import celery_status_get
from platform_core.jobs.selectors import model_version_active
from platform_core.jobs.services import training_job_request, training_job_sweep_stale
from platform_core.jobs.tasks import train_model
from platform_core.profiles.models import UserProfile
from platform_core.serving.model_cache import model_cache_clear
from tests.platform_core.jobs.conftest import events_seed
from tests.workers import worker_start, worker_stop

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _wait(job: TrainingJob, statuses: tuple[str, ...], log: Path, timeout: float = 300) -> TrainingJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in statuses:
            return job
        time.sleep(0.5)
    pytest.fail(f"job {job.pk} still {job.status} after {timeout}s; worker log:\n{log.read_text()[-4000:]}")


@pytest.fixture
def worker_env(broker: dict[str, str], settings, tmp_path: Path) -> dict[str, str]:
    # Worker and test share one artifacts folder: the worker's VAR_DIR/artifacts.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(Path(broker["VAR_DIR"]) / "artifacts")},
        },
    }
    return {**broker, "ARTIFACT_CACHE_DIR": str(tmp_path / "cache")}


def test_a_real_worker_trains_promotes_and_ignores_a_duplicate(tenant, worker_env, tmp_path):
    events_seed(tenant, n_users=40, per_user=12)
    log = tmp_path / "worker.log"
    proc = worker_start(worker_env, log)
    try:
        job = training_job_request(
            tenant=tenant, config={"epochs": 8, "dim": 16, "max_minutes": 3, "seed": 1}, requested_by="test"
        )
        job = _wait(job, (JobStatus.SUCCEEDED, JobStatus.FAILED), log)
        assert job.status == JobStatus.SUCCEEDED, job.error
        assert job.worker.startswith("test-")
        assert job.heartbeat_at is not None and job.progress["stage"] == "done"
        version = ModelVersion.objects.for_tenant(tenant).get(job=job)
        assert version.state == VersionState.ACTIVE, version.gate_reason
        assert (
            Path(worker_env["VAR_DIR"]) / "artifacts" / tenant.slug / str(job.pk) / "manifest.json"
        ).exists()
        assert UserProfile.objects.for_tenant(tenant).exclude(embedding=None).count() == 40
        # The monitoring page's source sees this worker and its queues.
        status = celery_status_get(timeout=3)
        (name, info), *_ = status.workers.items()
        assert name.startswith("test-") and sorted(info["queues"]) == ["default", "ml", "profiles"]

        # A duplicate delivery of the same job: the worker runs it and changes nothing.
        finished_at = job.finished_at
        train_model.apply_async(args=[job.pk]).id  # noqa: B018
        profiles = training_job_request(tenant=tenant, kind=JobKind.PROFILES, requested_by="test")
        profiles = _wait(profiles, (JobStatus.SUCCEEDED, JobStatus.FAILED), log, timeout=120)
        assert profiles.status == JobStatus.SUCCEEDED, profiles.error
        assert profiles.result["profiles"] == 40
        job.refresh_from_db()
        assert (job.status, job.finished_at) == (JobStatus.SUCCEEDED, finished_at)
        assert ModelVersion.objects.for_tenant(tenant).count() == 1
        # Profiles rebuilt after training keep the embeddings training stored.
        assert UserProfile.objects.for_tenant(tenant).exclude(embedding=None).count() == 40
    finally:
        worker_stop(proc)


def _old_version(tenant, artifacts: Path) -> ModelVersion:
    """An active version with a real artifact over the seeded items, as a past training left it."""
    from mlcore.artifacts import artifact_save
    from tests.platform_core.serving.conftest import DIM, ENCODER_CONFIG, EVENT_TYPES, encoder_weights

    item_ids = [f"i{i}" for i in range(20)]
    weights = encoder_weights(len(item_ids), seed=3)
    artifact_save(
        artifacts / tenant.slug / "old",
        algorithm="transformer",
        config={"dim": DIM},
        metrics={"transformer": {"val_ndcg@10": 0.3}},
        item_ids=item_ids,
        item_vectors=weights["item_emb"][1:].copy(),
        item_popularity=np.ones(len(item_ids), np.float32),
        event_types=EVENT_TYPES,
        encoder_weights=weights,
        encoder_config=ENCODER_CONFIG,
    )
    return ModelVersion.objects.for_tenant(tenant).create(
        tenant=tenant,
        algorithm="transformer",
        artifact_path=f"{tenant.slug}/old",
        state=VersionState.ACTIVE,
        activated_at=timezone.now(),
    )


def test_a_worker_killed_mid_training_leaves_no_job_running_forever(
    tenant, worker_env, tmp_path, api_client, settings
):
    events_seed(tenant, n_users=40, per_user=12)
    worker_var = Path(worker_env["VAR_DIR"])
    active = _old_version(tenant, worker_var / "artifacts")
    log = tmp_path / "worker.log"
    proc = worker_start(worker_env, log)
    try:
        job = training_job_request(
            # No early stopping: the training must still be running when the worker is killed.
            tenant=tenant,
            config={"epochs": 200, "patience": 200, "max_minutes": 10},
            requested_by="test",
        )
        job = _wait(job, (JobStatus.RUNNING,), log, timeout=120)
        # Let it reach TensorFlow, then kill the worker and its pool child outright.
        deadline = time.monotonic() + 120
        while (job.progress or {}).get("stage") not in (
            "train",
            "evaluate",
            "epoch",
        ) and time.monotonic() < deadline:
            time.sleep(0.5)
            job.refresh_from_db()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        job.refresh_from_db()
        assert job.status == JobStatus.RUNNING  # nothing could record the death…
        # What the dead training left: its work folder, and (had it died while uploading,
        # a window too short to hit reliably) part of its artifact folder.
        workdirs = list((worker_var / "tmp").glob(f"train-{job.pk}-*"))
        assert workdirs, "the killed training left no work folder to clean"
        partial = worker_var / "artifacts" / tenant.slug / str(job.pk)
        partial.mkdir(parents=True)
        (partial / "item_vectors.npy").write_bytes(b"half")
        # …so the sweeper does, once the heartbeat is older than JOBS_STALE_AFTER_SECONDS,
        # on the worker's host (its VAR_DIR).
        settings.VAR_DIR = worker_var
        later = timezone.now() + timezone.timedelta(seconds=settings.JOBS_STALE_AFTER_SECONDS + 1)
        assert training_job_sweep_stale(now=later) == [job.pk]
        job.refresh_from_db()
        assert job.status == JobStatus.FAILED and "Worker lost" in job.error
        assert not any(w.exists() for w in workdirs) and not partial.exists()
        assert (worker_var / "artifacts" / tenant.slug / "old" / "manifest.json").exists()
        # The old version keeps serving.
        assert model_version_active(tenant=tenant) == active
        model_cache_clear()
        r = api_client.get("/api/v1/users/u1/recommendations?k=3")
        assert r.status_code == 200, r.content
        assert r.json()["model_version"] == active.pk and len(r.json()["items"]) == 3
    finally:
        worker_stop(proc, signal.SIGKILL)
