"""The jobs app's part in an end user's erasure (``DELETE /api/v1/users/{id}``).

- At erasure (a ``catalog.signals.user_erasing`` receiver, inside the erasure's
  transaction, before the cascade): list the model versions trained on the
  user's events and scrub kept Celery task results that name the user.
- Afterwards (beat, ``jobs.erasure_retrains``): retrain every tenant whose
  serving version was trained on an erased user, within
  ``ERASURE_RETRAIN_WINDOW_HOURS``, and note on the receipts when a version
  trained without them went live.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_celery_results.models import TaskResult

from platform_core.catalog.models import EndUser, ErasureReceipt
from platform_core.catalog.services import ErasureShare, erasure_retrain_record
from platform_core.common.errors import ServiceError
from platform_core.jobs.models import ERASURE_REQUESTER, JobKind, ModelVersion, TrainingJob, VersionState
from platform_core.jobs.selectors import (
    model_version_active,
    model_version_data_cutoff,
    model_versions_trained_on_user,
    training_job_unfinished,
)
from platform_core.jobs.services import training_job_request
from platform_core.tenancy.models import Tenant

log = logging.getLogger(__name__)

TASK_RESULTS_LABEL = "django_celery_results.TaskResult"
ERASED = '"[erased]"'
# A job that claims its work within this margin of the erasure may have exported the events
# before the erasure committed: only a later one counts as trained without the user.
COMMIT_MARGIN = dt.timedelta(seconds=60)


def task_results_scrub(*, external_id: str) -> int:
    """Blank the arguments, result and traceback of kept task results that name ``external_id``.

    Tasks take internal ids; this catches what older releases, error messages or
    third-party tasks left. Matched as a quoted string (JSON or ``repr``), so a
    short id does not hit every row that merely contains its letters.

    Returns:
        The number of task result rows scrubbed.
    """
    needles = {json.dumps(external_id), json.dumps(external_id, ensure_ascii=False), repr(external_id)}
    fields = ("task_args", "task_kwargs", "result", "traceback")
    match = Q()
    for needle in needles:
        for name in fields:
            match |= Q(**{f"{name}__contains": needle})
    scrubbed = 0
    for row in TaskResult.objects.filter(match).only("pk", *fields).iterator(chunk_size=500):
        changes = {name: ERASED for name in fields if any(n in (getattr(row, name) or "") for n in needles)}
        scrubbed += TaskResult.objects.filter(pk=row.pk).update(**changes)
    return scrubbed


def erasure_share(sender: Any, *, tenant: Tenant, user: EndUser, **kwargs: Any) -> ErasureShare:
    """Receiver of ``user_erasing``: the versions trained on the user, and the task results scrubbed."""
    versions = model_versions_trained_on_user(tenant=tenant, user_pk=user.pk)
    scrubbed = task_results_scrub(external_id=user.external_id)
    return ErasureShare(
        counts={TASK_RESULTS_LABEL: scrubbed} if scrubbed else {},
        model_versions=[v.pk for v in versions],
        retrain=any(v.state == VersionState.ACTIVE for v in versions),
    )


# --------------------------------------------------------------------------- the sweep
def erasure_retrains_sweep(*, now: dt.datetime | None = None) -> list[int]:
    """Beat: settle the pending retrains of erasure receipts, tenant by tenant.

    Returns:
        Ids of the training jobs started.
    """
    now = now or timezone.now()
    pending: dict[int, list[ErasureReceipt]] = defaultdict(list)
    # Crossing tenants on purpose: housekeeping over every tenant, then one tenant at a time.
    for receipt in ErasureReceipt.unscoped.filter(retrained_at__isnull=True, retrain_due_by__isnull=False):
        pending[receipt.tenant_id].append(receipt)
    started: list[int] = []
    for tenant in Tenant.objects.filter(pk__in=list(pending)):
        job = _tenant_retrain_step(tenant=tenant, receipts=pending[tenant.pk], now=now)
        if job is not None:
            started.append(job.pk)
    return started


def _trained_without(version: ModelVersion, receipt: ErasureReceipt) -> bool:
    """Did ``version`` read its data after the erasure committed?

    Certain for the job this sweep started for the receipt (it was created after the sweep read
    the committed receipt); for any other job, when it claimed its work past the margin.
    """
    if version.job_id is not None and version.job_id == receipt.retrain_job_id:
        return True
    return model_version_data_cutoff(version=version) > receipt.erased_at + COMMIT_MARGIN


def _tenant_retrain_step(
    *, tenant: Tenant, receipts: list[ErasureReceipt], now: dt.datetime
) -> TrainingJob | None:
    """Record receipts the serving version already settles; start a retrain for the rest when due."""
    active = model_version_active(tenant=tenant)
    # Settled: the serving version read its data after the erasure (any retrain counts,
    # a scheduled one too), or nothing serves any more.
    settled = [r for r in receipts if active is None or _trained_without(active, r)]
    if settled:
        erasure_retrain_record(
            receipt_ids=[r.pk for r in settled],
            version_id=active.pk if active is not None else None,
            at=(active.activated_at or now) if active is not None else now,
        )
    waiting = [r for r in receipts if r not in settled]
    if not waiting or training_job_unfinished(tenant=tenant, kind=JobKind.TRAIN) is not None:
        return None  # a running job that started after the erasures settles them when it is promoted
    window = dt.timedelta(hours=settings.ERASURE_RETRAIN_WINDOW_HOURS)
    due = min(r.retrain_due_by for r in waiting if r.retrain_due_by is not None)
    if now < due - window / 2:
        return None  # erasures of the first half of the window share one retrain
    if _retried_too_soon(waiting, now):
        return None
    if now > due:
        log.warning("tenant %s: retrain after erasure is overdue (due %s)", tenant.slug, due.isoformat())
    return _retrain_start(tenant=tenant, receipts=waiting)


def _retried_too_soon(receipts: list[ErasureReceipt], now: dt.datetime) -> bool:
    """A retrain for these receipts failed or was not promoted a short while ago: wait before the next."""
    job_ids = {r.retrain_job_id for r in receipts if r.retrain_job_id is not None}
    if not job_ids:
        return False
    pause = dt.timedelta(minutes=settings.ERASURE_RETRAIN_RETRY_MINUTES)
    # Crossing tenants is not possible here: the ids come from this tenant's receipts.
    last = TrainingJob.unscoped.filter(pk__in=job_ids, finished_at__gt=now - pause)
    return last.exists()


def _retrain_start(*, tenant: Tenant, receipts: list[ErasureReceipt]) -> TrainingJob | None:
    try:
        job = training_job_request(tenant=tenant, kind=JobKind.TRAIN, requested_by=ERASURE_REQUESTER)
    except ServiceError as exc:  # another request won the race for the tenant's one unfinished job
        log.info("tenant %s: erasure retrain not started: %s", tenant.slug, exc.message)
        return None
    erasure_retrain_record(receipt_ids=[r.pk for r in receipts], job_id=job.pk)
    log.info("tenant %s: retrain job %s started for %d erasure(s)", tenant.slug, job.pk, len(receipts))
    return job
