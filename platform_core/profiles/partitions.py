"""A profiles job split into primary-key ranges of users, one task per range.

The ``jobs.build_profiles`` task claims the job, splits the tenant's users into
``PROFILES_BUILD_PARTS`` contiguous pk ranges of equal size and enqueues one
``jobs.build_profiles_part`` task per range on the ``profiles`` queue (a worker
with concurrency N builds N ranges at once). The job row is the only shared
state, so no result backend or chord is needed:

- each part records its progress and, when done, its count under
  ``result["parts"]`` while holding the job row's lock (``select_for_update``
  on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so the part that completes
  the set is the one that marks the job SUCCEEDED, exactly once;
- a part that raises marks the job FAILED with the part and its range named;
  the other parts then see a job that is no longer RUNNING and stop;
- a redelivered part rebuilds its range (the upsert is idempotent) and is
  counted once, by its index.

``manage.py build_profiles SLUG`` runs the same parts one after another in
its own process (:func:`profile_job_run_inline`).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from platform_core.common.scoping import tenant_scope
from platform_core.jobs.errors import JobCancelled
from platform_core.jobs.models import JobStatus, TrainingJob
from platform_core.jobs.services import training_job_claim, training_job_finish
from platform_core.profiles.services import ProfileProgress, profile_build_bulk
from platform_core.tenancy.models import Tenant

log = logging.getLogger(__name__)

PkRange = tuple[int, int]


def _parts_setting() -> int:
    return max(1, int(getattr(settings, "PROFILES_BUILD_PARTS", 2)))


def _min_users_per_part() -> int:
    return max(1, int(getattr(settings, "PROFILES_PART_MIN_USERS", 5000)))


def profile_partitions(*, tenant: Tenant, parts: int, min_users: int = 1) -> list[PkRange]:
    """Split the tenant's users into at most ``parts`` contiguous pk ranges of (nearly) equal counts.

    Fewer ranges when there are fewer than ``min_users`` users per range; an
    empty tenant gives no range.
    """
    from platform_core.catalog.models import EndUser

    pks = list(EndUser.objects.for_tenant(tenant).order_by("pk").values_list("pk", flat=True))
    if not pks:
        return []
    parts = max(1, min(parts, len(pks) // max(min_users, 1) or 1))
    size, extra = divmod(len(pks), parts)
    ranges: list[PkRange] = []
    start = 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        ranges.append((pks[start], pks[end - 1]))
        start = end
    return ranges


def profile_job_start(*, job_id: int, worker: str = "", parts: int | None = None) -> list[PkRange] | None:
    """Claim a profiles job and plan its ranges; None for a duplicate delivery.

    An empty tenant finishes the job here (no part to wait for).
    """
    job = training_job_claim(job_id=job_id, worker=worker)
    if job is None:
        log.info("job %s: already claimed or finished; duplicate delivery ignored", job_id)
        return None
    from platform_core.catalog.models import EndUser

    try:
        with tenant_scope(job.tenant):
            ranges = profile_partitions(
                tenant=job.tenant,
                parts=parts or _parts_setting(),
                min_users=_min_users_per_part() if parts is None else 1,
            )
            users = EndUser.objects.for_tenant(job.tenant).count() if ranges else 0
    except Exception as exc:  # claimed: fail it now rather than leave it to the sweeper
        message = f"Profiles job planning failed: {type(exc).__name__}: {exc}"
        training_job_finish(
            job_id=job_id,
            status=JobStatus.FAILED,
            error=message,
            progress={"stage": "failed", "message": message},
        )
        raise
    plan = {"ranges": [list(r) for r in ranges], "users": users, "parts": {}}
    if not ranges:
        training_job_finish(
            job_id=job_id,
            status=JobStatus.SUCCEEDED,
            result={"profiles": 0, "seconds": 0.0, "users_per_second": None, **plan},
            progress={"stage": "done", "message": "0 profiles (no users)"},
        )
        return []
    TrainingJob.unscoped.filter(pk=job_id, status=JobStatus.RUNNING).update(
        result=plan,
        progress={
            "stage": "profiles",
            "epoch": 0,
            "epochs": users,
            "message": f"0/{users} users, {len(ranges)} part(s) queued",
            "parts": {},
        },
    )
    return ranges


def profile_job_part_run(*, job_id: int, part: int, lo: int, hi: int) -> bool:
    """Build one range of a running profiles job; True when this part completed the job.

    Any error fails the whole job with the part named (the other parts stop
    at their next progress report).
    """
    job = TrainingJob.unscoped.select_related("tenant").filter(pk=job_id).first()
    if job is None or job.status != JobStatus.RUNNING:
        log.info("job %s part %s: job is not running; nothing to do", job_id, part)
        return False
    from platform_core.jobs.training import JobHeartbeat

    heartbeat = JobHeartbeat(job_id, float(getattr(settings, "JOBS_HEARTBEAT_SECONDS", 10)))
    heartbeat.start()
    started = time.monotonic()
    try:
        with tenant_scope(job.tenant):
            n = profile_build_bulk(
                tenant=job.tenant,
                now=job.started_at or timezone.now(),
                user_pk_range=(lo, hi),
                progress=_part_reporter(job_id, part),
            )
        return _part_done(job_id=job_id, part=part, profiles=n, seconds=time.monotonic() - started)
    except JobCancelled:
        log.info("job %s part %s stopped: the job is no longer running", job_id, part)
        return False
    except BaseException as exc:
        _part_failed(job_id=job_id, part=part, lo=lo, hi=hi, exc=exc)
        if not isinstance(exc, Exception):
            raise
        return False
    finally:
        heartbeat.stop()


def profile_job_run_inline(*, job_id: int, worker: str = "inline", parts: int | None = None) -> TrainingJob:
    """Claim and run a profiles job in this process: its parts one after another."""
    ranges = profile_job_start(job_id=job_id, worker=worker, parts=parts) or []
    for part, (lo, hi) in enumerate(ranges):
        profile_job_part_run(job_id=job_id, part=part, lo=lo, hi=hi)
    return TrainingJob.unscoped.get(pk=job_id)


# --------------------------------------------------------------------------- the shared job row
def _locked_running(job_id: int) -> TrainingJob:
    """The job row, locked until the transaction ends; JobCancelled when it is no longer RUNNING."""
    job = TrainingJob.unscoped.select_for_update().get(pk=job_id)
    if job.status != JobStatus.RUNNING:
        raise JobCancelled(f"job {job_id} is {job.status}")
    return job


def _part_reporter(job_id: int, part: int, min_interval: float = 1.0) -> Callable[[ProfileProgress], None]:
    """Progress callback of one part: merges its count into the job's progress at most once a second."""
    last = [0.0]

    def report(event: ProfileProgress) -> None:
        now = time.monotonic()
        if now - last[0] < min_interval and event.epoch != event.epochs:
            return
        last[0] = now
        with transaction.atomic():
            job = _locked_running(job_id)
            progress = dict(job.progress or {})
            done = dict(progress.get("parts") or {})
            done[str(part)] = [event.epoch, event.epochs]
            plan = job.result or {}
            progress.update(_summary(done, len(plan.get("ranges") or []), plan.get("users")))
            job.progress = progress
            job.heartbeat_at = timezone.now()
            job.save(update_fields=["progress", "heartbeat_at"])

    return report


def _summary(done: dict[str, list[int]], n_parts: int, planned: int | None) -> dict[str, Any]:
    """Users done over all parts; the total is the planned count (users added since are not in a range)."""
    users = sum(d for d, _ in done.values())
    total = planned if planned is not None else sum(t for _, t in done.values())
    return {
        "stage": "profiles",
        "epoch": users,
        "epochs": total,
        "parts": done,
        "message": f"{users}/{total} users ({len(done)}/{n_parts} part(s) started)",
    }


def _part_done(*, job_id: int, part: int, profiles: int, seconds: float) -> bool:
    """Record the part; the part that completes the set finishes the job (once: under the row lock)."""
    with transaction.atomic():
        job = _locked_running(job_id)
        result = dict(job.result or {})
        parts = dict(result.get("parts") or {})
        parts[str(part)] = {"profiles": profiles, "seconds": round(seconds, 3)}
        result["parts"] = parts
        n_parts = len(result.get("ranges") or [])
        if len(parts) < n_parts:
            job.result = result
            job.save(update_fields=["result"])
            return False
        total = sum(p["profiles"] for p in parts.values())
        elapsed = (timezone.now() - job.started_at).total_seconds() if job.started_at else seconds
        result.update(
            profiles=total,
            seconds=round(elapsed, 3),
            users_per_second=round(total / elapsed, 1) if elapsed > 0 else None,
        )
        message = f"{total} profiles in {n_parts} part(s)"
        training_job_finish(
            job_id=job_id,
            status=JobStatus.SUCCEEDED,
            result=result,
            progress={**(job.progress or {}), "stage": "done", "message": message},
        )
    return True


def _part_failed(*, job_id: int, part: int, lo: int, hi: int, exc: BaseException) -> None:
    from celery.exceptions import SoftTimeLimitExceeded

    if isinstance(exc, SoftTimeLimitExceeded):
        detail = "timed out: the part exceeded its time limit"
    else:
        detail = f"{type(exc).__name__}: {exc}"
    message = f"Profiles part {part} (users pk {lo}–{hi}) failed: {detail}"
    log.warning("job %s: %s", job_id, message)
    tb = "".join(traceback.format_exception(exc, limit=-8))
    training_job_finish(
        job_id=job_id,
        status=JobStatus.FAILED,
        error=f"{message}\n\n{tb}",
        progress={"stage": "failed", "message": message},
    )
