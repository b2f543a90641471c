"""Celery tasks of the jobs app: thin, take ids, call one service.

TensorFlow is imported only inside ``training_job_run``'s training step, in
the worker's child process.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

_TRAIN_LIMIT = int(getattr(settings, "JOBS_TRAIN_TIME_LIMIT", settings.CELERY_TASK_TIME_LIMIT))
_PROFILES_LIMIT = int(getattr(settings, "JOBS_PROFILES_TIME_LIMIT", 1800))


@shared_task(
    name="jobs.train_model",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=_TRAIN_LIMIT,
    soft_time_limit=max(_TRAIN_LIMIT - 60, 30),
)
def train_model(self: Any, job_id: int) -> dict[str, Any] | None:
    """Claim and run a training job (a duplicate delivery does nothing)."""
    from platform_core.jobs.training import training_job_run

    job = training_job_run(job_id=job_id, worker=self.request.hostname or "")
    return None if job is None else {"job": job.pk, "status": job.status}


@shared_task(name="jobs.build_profiles", bind=True, acks_late=True, time_limit=300, soft_time_limit=270)
def build_profiles(self: Any, job_id: int) -> dict[str, Any] | None:
    """Claim a profiles job and enqueue one part per user pk range on the ``profiles`` queue."""
    from platform_core.profiles.partitions import profile_job_start

    ranges = profile_job_start(job_id=job_id, worker=self.request.hostname or "")
    if ranges is None:
        return None
    for part, (lo, hi) in enumerate(ranges):
        # The queue is named here: the "jobs.*" route sends everything else to "default".
        build_profiles_part.apply_async(args=[job_id, part, lo, hi], queue="profiles")
    return {"job": job_id, "parts": len(ranges)}


@shared_task(
    name="jobs.build_profiles_part",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=_PROFILES_LIMIT,
    soft_time_limit=max(_PROFILES_LIMIT - 30, 30),
)
def build_profiles_part(job_id: int, part: int, lo: int, hi: int) -> dict[str, Any]:
    """Build the profiles of users ``lo <= pk <= hi`` of a running job; the last part finishes it."""
    from platform_core.profiles.partitions import profile_job_part_run

    finished = profile_job_part_run(job_id=job_id, part=part, lo=lo, hi=hi)
    return {"job": job_id, "part": part, "finished_job": finished}


@shared_task(name="jobs.schedules_fan_out", time_limit=120, soft_time_limit=100)
def schedules_fan_out() -> list[int]:
    """Beat: start the jobs of the tenants that are due."""
    from platform_core.jobs.services import schedules_fan_out as fan_out

    return [job.pk for job in fan_out()]


@shared_task(name="jobs.sweep_stale", time_limit=120, soft_time_limit=100)
def sweep_stale() -> list[int]:
    """Beat: fail running jobs whose worker stopped heart-beating."""
    from platform_core.jobs.services import training_job_sweep_stale

    return training_job_sweep_stale()


@shared_task(name="jobs.erasure_retrains", time_limit=120, soft_time_limit=100)
def erasure_retrains() -> list[int]:
    """Beat: retrain tenants whose serving version was trained on an erased user (within the window)."""
    from platform_core.jobs.erasure import erasure_retrains_sweep

    return erasure_retrains_sweep()
