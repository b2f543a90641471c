"""Writes of the jobs app: the job state machine, model versions, schedules, housekeeping.

The training itself (the bridge to mlcore) is in :mod:`platform_core.jobs.training`;
it imports TensorFlow only inside the worker.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from platform_core.common.broker import BrokerUnavailable, task_publish
from platform_core.common.errors import ServiceError, ValidationFailed
from platform_core.jobs.errors import JobsError
from platform_core.jobs.models import (
    ACTIVE_STATUSES,
    JobKind,
    JobStatus,
    ModelVersion,
    TenantSchedule,
    TrainingJob,
    VersionState,
)
from platform_core.jobs.selectors import model_version_active, training_job_unfinished
from platform_core.tenancy.models import Tenant

log = logging.getLogger(__name__)

# Training options a request may set, with their bounds (the rest come from settings/mlcore).
TRAIN_OPTIONS: dict[str, tuple[type, float, float]] = {
    "epochs": (int, 1, 200),
    "patience": (int, 1, 200),
    "max_minutes": (float, 0.1, 600),
    "dim": (int, 4, 512),
    "max_len": (int, 2, 512),
    "seed": (int, 0, 2**31 - 1),
}


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# --------------------------------------------------------------------------- requests
def training_config_clean(*, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate a request's training options; ValidationFailed names ``config.<key>`` and the rule."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ValidationFailed("config must be an object.", fields={"config": ["must be an object"]})
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for key, value in config.items():
        spec = TRAIN_OPTIONS.get(key)
        path = f"config.{key}"
        if spec is None:
            errors[path] = [f"is not a training option; expected one of {sorted(TRAIN_OPTIONS)}"]
            continue
        typ, lo, hi = spec
        ok_type = (
            isinstance(value, int) if typ is int else isinstance(value, (int, float))
        ) and not isinstance(value, bool)
        if not ok_type:
            errors[path] = ["must be an integer" if typ is int else "must be a number"]
        elif not lo <= value <= hi:
            errors[path] = [f"must be between {lo:g} and {hi:g}"]
        else:
            cleaned[key] = typ(value)
    if errors:
        path, rules = next(iter(errors.items()))
        raise ValidationFailed(f"Invalid training options: {path}: {rules[0]}", fields=errors)
    return cleaned


def _task_for(kind: str) -> Any:
    from platform_core.jobs import tasks

    return tasks.train_model if kind == JobKind.TRAIN else tasks.build_profiles


def training_job_enqueue(*, job: TrainingJob, failures: list[BrokerUnavailable] | None = None) -> None:
    """Send the job's task once the surrounding transaction commits (never for a rolled-back row).

    With the broker down the job is marked FAILED (nothing would ever run it, and
    a PENDING row would block the next request with 409) and the error is
    appended to ``failures`` for the caller to report.
    """
    task = _task_for(job.kind)
    task_id = job.task_id

    def publish() -> None:
        try:
            task_publish(task=task, args=[job.pk], task_id=task_id)
        except BrokerUnavailable as exc:
            TrainingJob.unscoped.filter(pk=job.pk, status=JobStatus.PENDING).update(
                status=JobStatus.FAILED, finished_at=timezone.now(), error=f"Not started: {exc.message}"
            )
            if failures is None:
                raise
            failures.append(exc)

    transaction.on_commit(publish)


def training_job_request(
    *,
    tenant: Tenant,
    kind: str = JobKind.TRAIN,
    requested_by: str = "",
    config: Mapping[str, Any] | None = None,
    enqueue: bool = True,
) -> TrainingJob:
    """Create a PENDING job and enqueue it on commit.

    ``enqueue=False`` leaves it to the caller to run it in process (``train --inline``, benchmarks).

    Raises:
        ValidationFailed: bad ``config`` options.
        ServiceError (409, ``job_in_progress``): the tenant has an unfinished job of this kind.
    """
    if kind not in JobKind.values:
        raise ValidationFailed(
            f"kind must be one of {JobKind.values}.", fields={"kind": ["unknown job kind"]}
        )
    cleaned = training_config_clean(config=config) if kind == JobKind.TRAIN else {}
    failures: list[BrokerUnavailable] = []
    try:
        with transaction.atomic():
            # The partial unique index is the real guard; the check gives a clear message.
            running = training_job_unfinished(tenant=tenant, kind=kind)
            if running is not None:
                raise IntegrityError("unfinished job")
            job = TrainingJob.objects.for_tenant(tenant).create(
                tenant=tenant,
                kind=kind,
                requested_by=requested_by[:150],
                config=cleaned,
                task_id=str(uuid.uuid4()),
            )
            if enqueue:
                training_job_enqueue(job=job, failures=failures)
    except IntegrityError:
        running = training_job_unfinished(tenant=tenant, kind=kind)
        ident = f" (job {running.pk}, {running.status})" if running else ""
        raise ServiceError(
            f"A {kind} job for tenant {tenant.slug!r} is already pending or running{ident}; "
            "wait for it to finish or cancel it.",
            code=JobsError.JOB_IN_PROGRESS,
            status_code=409,
        ) from None
    if failures:  # published after the commit (this call's own transaction) and refused
        raise failures[0]
    return job


# --------------------------------------------------------------------------- state machine
def training_job_claim(*, job_id: int, worker: str = "") -> TrainingJob | None:
    """PENDING → RUNNING for exactly one caller; None for a duplicate delivery or a finished job."""
    now = timezone.now()
    # Crossing tenants on purpose: the worker knows only the job id.
    claimed = TrainingJob.unscoped.filter(pk=job_id, status=JobStatus.PENDING).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now, worker=worker[:200], error=""
    )
    if claimed != 1:
        return None
    return TrainingJob.unscoped.select_related("tenant").get(pk=job_id)


def training_job_heartbeat(*, job_id: int) -> bool:
    """Stamp the running job as alive; False when it is no longer RUNNING (cancelled, swept)."""
    return bool(
        TrainingJob.unscoped.filter(pk=job_id, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now())
    )


def training_job_progress(*, job_id: int, progress: Mapping[str, Any]) -> bool:
    """Record progress (and a heartbeat); False when the job is no longer RUNNING."""
    return bool(
        TrainingJob.unscoped.filter(pk=job_id, status=JobStatus.RUNNING).update(
            progress=dict(progress), heartbeat_at=timezone.now()
        )
    )


def training_job_finish(
    *,
    job_id: int,
    status: str,
    error: str = "",
    result: Mapping[str, Any] | None = None,
    progress: Mapping[str, Any] | None = None,
) -> bool:
    """RUNNING → a final status. False when something else finished it first (cancel, sweeper)."""
    fields: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "error": error[:20_000]}
    if result is not None:
        fields["result"] = dict(result)
    if progress is not None:
        fields["progress"] = dict(progress)
    return bool(TrainingJob.unscoped.filter(pk=job_id, status=JobStatus.RUNNING).update(**fields))


def training_job_lock(*, job_id: int) -> str | None:
    """Lock the job row until the transaction ends; its status (None when it is gone).

    Must run inside ``transaction.atomic()``. The promotion and a cancel take it, so
    one of them sees the other's outcome.
    """
    return TrainingJob.unscoped.select_for_update().filter(pk=job_id).values_list("status", flat=True).first()


def training_job_cancel(*, job: TrainingJob, reason: str = "cancelled by an operator") -> TrainingJob:
    """Cancel a pending or running job. A running one stops at its next progress report.

    Raises:
        ServiceError (409, ``bad_state``): the job has already finished.
    """
    with transaction.atomic():
        # The promotion holds this row lock while it switches versions: a cancel waits for it,
        # then sees the promoted version and refuses (never a CANCELLED job whose model serves).
        training_job_lock(job_id=job.pk)
        promoted = ModelVersion.unscoped.filter(job_id=job.pk, state=VersionState.ACTIVE).exists()
        updated = (
            0
            if promoted
            else TrainingJob.unscoped.filter(pk=job.pk, status__in=ACTIVE_STATUSES).update(
                status=JobStatus.CANCELLED, finished_at=timezone.now(), error=reason
            )
        )
    job.refresh_from_db()
    if not updated:
        state = "promoting its model" if promoted else job.status
        raise ServiceError(
            f"Job {job.pk} is {state}; only pending or running jobs can be cancelled.",
            code=JobsError.BAD_STATE,
            status_code=409,
        )
    if job.task_id:
        from platform_core.celery import app

        try:  # best effort: a pending message is dropped by the worker that gets it
            app.control.revoke(job.task_id)
        except Exception as exc:  # the broker may not support broadcast
            log.info("revoke of %s not broadcast: %s", job.task_id, exc)
    return job


def training_job_sweep_stale(*, now: dt.datetime | None = None) -> list[int]:
    """Fail RUNNING jobs whose worker stopped heart-beating (killed, OOM, host lost).

    Their broker message is redelivered (acks_late) but the claim then does
    nothing, so the job never runs twice; an operator or the schedule retrains.
    PENDING jobs whose message was lost are sent again (a duplicate is a no-op).

    Returns:
        Ids of the jobs marked FAILED.
    """
    now = now or timezone.now()
    stale_after = dt.timedelta(seconds=_setting("JOBS_STALE_AFTER_SECONDS", 120))
    failed: list[int] = []
    # Crossing tenants on purpose: housekeeping over every tenant.
    for job in TrainingJob.unscoped.filter(status=JobStatus.RUNNING, heartbeat_at__lt=now - stale_after):
        seen = job.heartbeat_at.isoformat() if job.heartbeat_at else "never"
        msg = (
            f"Worker lost: no heartbeat since {seen} (over {stale_after.total_seconds():.0f}s); "
            "the job was stopped. The active model version is unchanged."
        )
        lost = {**(job.progress or {}), "stage": "failed", "message": "worker lost"}
        if training_job_finish(job_id=job.pk, status=JobStatus.FAILED, error=msg, progress=lost):
            log.warning("job %s failed by the sweeper: %s", job.pk, msg)
            failed.append(job.pk)
            training_job_leftovers_clean(job=job)
    resend_after = dt.timedelta(seconds=_setting("JOBS_PENDING_RESEND_SECONDS", 900))
    for job in TrainingJob.unscoped.filter(status=JobStatus.PENDING, created_at__lt=now - resend_after):
        _task_for(job.kind).apply_async(args=[job.pk], task_id=job.task_id or None)
    return failed


def training_job_leftovers_clean(*, job: TrainingJob) -> None:
    """Delete what a dead training left: a partial artifact upload and its local work folder.

    The artifact prefix goes only when no version row points at it (a version
    recorded before the death keeps its files). The work folder is on the
    dead worker's disk: removed when the sweep runs on that host.
    """
    from platform_core.jobs.artifact_store import artifact_delete, artifact_prefix

    if job.kind != JobKind.TRAIN:
        return
    if not ModelVersion.unscoped.filter(job_id=job.pk).exists():
        artifact_delete(prefix=artifact_prefix(tenant_slug=job.tenant.slug, job_id=job.pk))
    for workdir in (Path(settings.VAR_DIR) / "tmp").glob(f"train-{job.pk}-*"):
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------- model versions
def gate_decide(
    *,
    metrics: Mapping[str, Mapping[str, float]],
    primary: str,
    metric: str,
    margin: float,
    active_value: float | None,
    baseline: str = "popularity",
) -> tuple[bool, str]:
    """The quality gate: does ``primary`` beat the baseline and the active version by ``margin``?

    ``margin`` is absolute on the metric's scale (0.01 = one point of recall).

    Returns:
        ``(passed, reason)`` with the numbers compared written out.
    """
    value = metrics.get(primary, {}).get(metric)
    if value is None:
        return False, f"the {primary} model reported no {metric!r}; nothing to compare"
    reasons: list[str] = []
    base = metrics.get(baseline, {}).get(metric)
    if base is not None and not value > base + margin:
        reasons.append(
            f"{primary} {metric}={value:.4f} does not beat {baseline} {base:.4f} + margin {margin:g}"
        )
    if active_value is not None and not value > active_value + margin:
        reasons.append(
            f"{primary} {metric}={value:.4f} does not beat the active version's {active_value:.4f} + margin {margin:g}"
        )
    if reasons:
        return False, "; ".join(reasons)
    parts = [f"{primary} {metric}={value:.4f}"]
    if base is not None:
        parts.append(f"{baseline} {base:.4f}")
    parts.append(f"active {active_value:.4f}" if active_value is not None else "no active version")
    return True, f"passed (margin {margin:g}): " + ", ".join(parts)


def _artifact_check(version: ModelVersion) -> None:
    """Refuse a version whose artifact is missing or corrupt (mlcore's loader decides)."""
    from mlcore.artifacts import artifact_load
    from mlcore.errors import ArtifactError
    from platform_core.jobs.artifact_store import artifact_local_path

    try:
        artifact_load(artifact_local_path(version=version))
    except (ArtifactError, OSError) as exc:
        raise ServiceError(
            f"Model version {version.pk} cannot be activated: its artifact at {version.artifact_path!r} "
            f"is unusable ({exc}). The active version keeps serving.",
            code=JobsError.ARTIFACT,
            status_code=409,
        ) from exc


@transaction.atomic
def model_version_promote(*, version: ModelVersion, check_artifact: bool = True) -> ModelVersion:
    """Make ``version`` the tenant's active version; the previous one is RETIRED.

    Raises:
        ServiceError (409, ``artifact_error``): the artifact does not load; nothing changes.
    """
    if check_artifact:
        _artifact_check(version)
    tenant = version.tenant
    now = timezone.now()
    # Lock the tenant's versions so two promotions cannot interleave.
    list(ModelVersion.objects.for_tenant(tenant).select_for_update().values_list("pk", flat=True))
    ModelVersion.objects.for_tenant(tenant).filter(state=VersionState.ACTIVE).exclude(pk=version.pk).update(
        state=VersionState.RETIRED
    )
    version.state = VersionState.ACTIVE
    version.activated_at = now
    version.save(update_fields=["state", "activated_at"])
    _active_changed(tenant)
    return version


def model_version_rollback(*, tenant: Tenant) -> ModelVersion:
    """Re-activate the version that was active before the current one.

    Raises:
        ServiceError (409, ``no_previous_version``): nothing to roll back to.
    """
    active = model_version_active(tenant=tenant)
    previous = ModelVersion.objects.for_tenant(tenant).filter(
        state=VersionState.RETIRED, activated_at__isnull=False
    )
    if active is not None and active.activated_at is not None:
        previous = previous.filter(activated_at__lt=active.activated_at)
    target = previous.order_by("-activated_at", "-id").first()
    if target is None:
        raise ServiceError(
            f"Tenant {tenant.slug!r} has no previously active version to roll back to.",
            code=JobsError.NO_PREVIOUS_VERSION,
            status_code=409,
        )
    with transaction.atomic():
        model_version_promote(version=target)
        if active is not None:
            # A rolled-back version should not come back on the next rollback.
            ModelVersion.objects.for_tenant(tenant).filter(pk=active.pk).update(
                state=VersionState.RETIRED,
                activated_at=None,
                gate_reason=active.gate_reason + " [rolled back]",
            )
    return target


def _active_changed(tenant: Tenant) -> None:
    """Tell in-process caches (serving) that the active version changed, when serving offers a hook."""
    try:
        from platform_core.serving import services as serving_services
    except ImportError:
        return
    hook = getattr(serving_services, "active_version_invalidate", None)
    if hook is not None:
        transaction.on_commit(lambda: hook(tenant=tenant))


# --------------------------------------------------------------------------- schedules
def tenant_schedule_ensure(*, tenant: Tenant) -> TenantSchedule:
    """The tenant's schedule row, created with the defaults when missing."""
    schedule, _ = TenantSchedule.objects.get_or_create(tenant=tenant)
    return schedule


def _last_success(tenant: Tenant, kind: str) -> dt.datetime | None:
    job = (
        TrainingJob.objects.for_tenant(tenant)
        .filter(kind=kind, status__in=[JobStatus.SUCCEEDED, JobStatus.RUNNING, JobStatus.PENDING])
        .order_by("-created_at")
        .first()
    )
    if job is None:
        return None
    return job.finished_at or job.created_at


def schedules_fan_out(*, now: dt.datetime | None = None) -> list[TrainingJob]:
    """Start the retraining / profile jobs of every tenant that is due.

    A tenant is due for ``kind`` when its last successful (or unfinished) job
    of that kind is older than its interval. Tenants with a job of that kind
    pending or running are skipped. A failed job does not reset the clock, but
    is not retried before the next fan-out either (every 5 minutes).

    Returns:
        The jobs created.
    """
    now = now or timezone.now()
    created: list[TrainingJob] = []
    for schedule in TenantSchedule.objects.select_related("tenant").filter(enabled=True):
        for kind, hours in (
            (JobKind.TRAIN, schedule.retrain_every_hours),
            (JobKind.PROFILES, schedule.profiles_every_hours),
        ):
            if not hours:
                continue
            tenant = schedule.tenant
            if training_job_unfinished(tenant=tenant, kind=kind) is not None:
                continue
            last = _last_success(tenant, kind)
            if last is not None and now - last < dt.timedelta(hours=hours):
                continue
            try:
                created.append(training_job_request(tenant=tenant, kind=kind, requested_by="schedule"))
            except ServiceError as exc:
                if exc.code != JobsError.JOB_IN_PROGRESS.value:
                    raise
    return created
