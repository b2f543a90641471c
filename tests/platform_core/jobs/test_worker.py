"""A real ``celery -A platform_core worker`` process trains a model end to end.

The worker runs on the configured broker: the embedded filesystem broker in a
temporary folder by default, Redis (under a per-test key prefix) when
CELERY_BROKER_URL says so, as in CI. It reads the test database, which is a
file (SQLite) or a real server database (PostgreSQL) for this reason.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from platform_core.jobs.models import JobKind, JobStatus, ModelVersion, TrainingJob, VersionState
from platform_core.jobs.monitoring import celery_status_get
from platform_core.jobs.selectors import model_version_active
from platform_core.jobs.services import training_job_request, training_job_sweep_stale
from platform_core.jobs.tasks import train_model
from platform_core.profiles.models import UserProfile
from tests.platform_core.jobs.conftest import events_seed

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[3]
CELERY = str(Path(sys.executable).with_name("celery"))


def _database_url() -> str:
    """The URL of the test database this process uses (test_<name> on PostgreSQL)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _start_worker(env_extra: dict[str, str], log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        **env_extra,
        "DATABASE_URL": _database_url(),
        "JOBS_HEARTBEAT_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    return subprocess.Popen(
        [
            CELERY,
            "-A",
            "platform_core",
            "worker",
            "-Q",
            "default,ml,profiles",
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--hostname",
            f"test-{uuid.uuid4().hex[:6]}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=REPO,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: SIGKILL reaches the pool child too
    )


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


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
    proc = _start_worker(worker_env, log)
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
        _stop(proc)


def test_a_worker_killed_mid_training_leaves_no_job_running_forever(tenant, worker_env, tmp_path):
    events_seed(tenant, n_users=40, per_user=12)
    active = ModelVersion.objects.for_tenant(tenant).create(
        tenant=tenant,
        algorithm="transformer",
        artifact_path="old/1",
        state=VersionState.ACTIVE,
        activated_at=timezone.now(),
    )
    log = tmp_path / "worker.log"
    proc = _start_worker(worker_env, log)
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
        # …so the sweeper does, once the heartbeat is older than JOBS_STALE_AFTER_SECONDS.
        later = timezone.now() + timezone.timedelta(seconds=settings.JOBS_STALE_AFTER_SECONDS + 1)
        assert training_job_sweep_stale(now=later) == [job.pk]
        job.refresh_from_db()
        assert job.status == JobStatus.FAILED and "Worker lost" in job.error
        assert model_version_active(tenant=tenant) == active
    finally:
        _stop(proc, signal.SIGKILL)
