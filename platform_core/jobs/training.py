"""The bridge to mlcore: export a tenant's events, train, store the version, gate, promote.

Runs in Celery workers only. ``mlcore.pipeline`` (and so TensorFlow) is
imported inside :func:`training_job_run`, never at module import, so the web
tier can import this module (for the ``train`` command) and stay small.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, transaction

from platform_core.catalog.models import EndUser, Item
from platform_core.common.errors import ServiceError
from platform_core.common.scoping import tenant_scope
from platform_core.events.models import Event
from platform_core.jobs.artifact_store import artifact_delete, artifact_prefix, artifact_upload
from platform_core.jobs.errors import JobCancelled
from platform_core.jobs.models import (
    ERASURE_REQUESTER,
    JobKind,
    JobStatus,
    ModelVersion,
    TrainingJob,
    VersionState,
)
from platform_core.jobs.selectors import model_version_active
from platform_core.jobs.services import (
    gate_decide,
    model_version_promote,
    training_job_claim,
    training_job_finish,
    training_job_heartbeat,
    training_job_lock,
    training_job_progress,
)
from platform_core.plugins.selectors import tenant_plugin_get
from platform_core.tenancy.models import Tenant

log = logging.getLogger(__name__)

EXPORT_CHUNK = 20_000
FRAME_COLUMNS = ["user_id", "item_id", "timestamp", "event_type", "weight"]


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# --------------------------------------------------------------------------- export
def events_frame_export(*, tenant: Tenant, chunk_size: int = EXPORT_CHUNK) -> pd.DataFrame:
    """The tenant's training interactions as mlcore's input frame.

    Events are streamed in chunks (``iterator(chunk_size=...)``) as integer
    ids, mapped to external ids through two dictionaries built once, so no
    join runs per row. Weights come from the plugin's ``event_weights()``;
    label events (weight 0), unknown types and events without an item are not
    interactions and are left out.
    """
    weights = {k: float(v) for k, v in tenant_plugin_get(tenant=tenant).event_weights().items() if v > 0}
    users = dict(
        EndUser.objects.for_tenant(tenant).values_list("pk", "external_id").iterator(chunk_size=chunk_size)
    )
    items = dict(
        Item.objects.for_tenant(tenant).values_list("pk", "external_id").iterator(chunk_size=chunk_size)
    )
    rows = (
        Event.objects.for_tenant(tenant)
        .filter(item__isnull=False, type__in=list(weights))
        .order_by()
        .values_list("user_id", "item_id", "timestamp", "type")
        .iterator(chunk_size=chunk_size)
    )
    frames: list[pd.DataFrame] = []
    buf: list[tuple] = []

    def flush() -> None:
        if not buf:
            return
        u, i, ts, et = zip(*buf, strict=True)
        frames.append(
            pd.DataFrame(
                {
                    "user_id": [users[x] for x in u],
                    "item_id": [items[x] for x in i],
                    "timestamp": np.fromiter((t.timestamp() for t in ts), dtype=np.int64, count=len(ts)),
                    "event_type": et,
                    "weight": np.fromiter((weights[t] for t in et), dtype=np.float32, count=len(et)),
                }
            )
        )
        buf.clear()

    for row in rows:
        buf.append(row)
        if len(buf) >= chunk_size:
            flush()
    flush()
    if not frames:
        return pd.DataFrame(
            {
                c: pd.Series(dtype=t)
                for c, t in zip(FRAME_COLUMNS, ["str", "str", "int64", "str", "float32"], strict=True)
            }
        )
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(["timestamp"], kind="stable", ignore_index=True)


# --------------------------------------------------------------------------- heartbeat / progress
class JobHeartbeat(threading.Thread):
    """Stamps the job row every few seconds while training runs (epochs may be long).

    When the process dies (SIGKILL, OOM) the stamps stop and the sweeper fails the job.
    """

    def __init__(self, job_id: int, every: float) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{job_id}")
        self.job_id = job_id
        self.every = every
        self.stop_event = threading.Event()
        self.cancelled = False

    def run(self) -> None:
        try:
            while not self.stop_event.wait(self.every):
                alive = _db_retrying(lambda: training_job_heartbeat(job_id=self.job_id))
                if alive is False:
                    self.cancelled = True
        except Exception:  # a lost heartbeat only makes the sweeper act sooner
            log.exception("heartbeat of job %s stopped", self.job_id)
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=10)


def _db_retrying(write: Callable[[], bool]) -> bool | None:
    """Run one small write; a lost database connection is dropped and the write tried once more.

    None when the database is still unreachable: the caller skips this beat or
    report and tries again at the next (a restart of a few seconds does not fail
    a training of hours; only an outage longer than JOBS_STALE_AFTER_SECONDS does).
    """
    for attempt in range(2):
        try:
            return write()
        except (OperationalError, InterfaceError) as exc:
            conn = connections["default"]
            if conn.in_atomic_block:
                raise  # a transaction cannot be resumed on a new connection
            conn.close()  # this thread's connection is broken; the next query reconnects
            if attempt:
                log.warning("job write skipped, database unreachable: %s", exc)
    return None


def _progress_reporter(job_id: int, min_interval: float = 1.0) -> Callable[[Any], None]:
    """mlcore's progress callback: writes at most once a second, stops a cancelled job."""
    last = [0.0]

    def report(event: Any) -> None:
        now = time.monotonic()
        final = getattr(event, "epoch", None) is not None and getattr(event, "epoch", 0) == getattr(
            event, "epochs", -1
        )
        if now - last[0] < min_interval and not final:
            return
        last[0] = now
        payload = {
            k: _jsonable(getattr(event, k, None))
            for k in ("stage", "epoch", "epochs", "loss", "metric", "eta_seconds", "message")
        }
        if _db_retrying(lambda: training_job_progress(job_id=job_id, progress=payload)) is False:
            raise JobCancelled(f"job {job_id} is no longer running")

    return report


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------- the run
def _train_config(job: TrainingJob) -> Any:
    from mlcore.pipeline import TrainConfig

    options: dict[str, Any] = {}
    max_minutes = _setting("JOBS_TRAIN_MAX_MINUTES", None)
    if max_minutes is not None:
        options["max_minutes"] = float(max_minutes)
    options.update(_setting("JOBS_TRAIN_DEFAULTS", {}))
    options.update(job.config or {})
    known = set(getattr(TrainConfig, "__dataclass_fields__", {}))
    return TrainConfig(**{k: v for k, v in options.items() if k in known})


def _gate_metric(metrics: dict[str, dict[str, float]], primary: str, config: Any) -> str:
    configured = _setting("JOBS_GATE_METRIC", "")
    if configured:
        return configured
    for attr in ("validation_metric", "metric"):
        value = getattr(config, attr, None)
        if isinstance(value, str) and value:
            return value
    keys = list(metrics.get(primary, {}))
    for preferred in ("val_ndcg@10", "val_recall@10", "ndcg@10", "recall@10"):
        if preferred in keys:
            return preferred
    return keys[0] if keys else "val_ndcg@10"


def training_job_run(*, job_id: int, worker: str = "") -> TrainingJob | None:
    """Claim and run one training job; None when another delivery already claimed it.

    Any error (including a soft time limit) ends in FAILED with the message;
    the active version changes only after a version passed the gate and its
    artifact loaded.
    """
    job = training_job_claim(job_id=job_id, worker=worker)
    if job is None:
        log.info("job %s: already claimed or finished; duplicate delivery ignored", job_id)
        return None
    heartbeat = JobHeartbeat(job.pk, float(_setting("JOBS_HEARTBEAT_SECONDS", 10)))
    heartbeat.start()
    prefix = artifact_prefix(tenant_slug=job.tenant.slug, job_id=job.pk)
    uploaded = False
    try:
        with tenant_scope(job.tenant):
            if job.kind == JobKind.PROFILES:
                # Profile jobs fan out as per-range parts (platform_core.profiles.partitions).
                raise ValueError(f"job {job.pk} is a profiles job, not a training")
            frame, config, trained = _train_and_upload(job, prefix)
            uploaded = True  # from here on a version row points at the files: keep them
            result = _version_record(job, prefix, frame, config, trained)
        done = {"stage": "done", "message": result.get("gate") or "trained"}
        training_job_finish(job_id=job.pk, status=JobStatus.SUCCEEDED, result=result, progress=done)
    except JobCancelled:
        log.info("job %s cancelled while running", job.pk)
        if job.kind == JobKind.TRAIN:
            _cancelled_clean(job, prefix)
    except BaseException as exc:
        message = _error_message(exc)
        log.warning("job %s failed: %s", job.pk, message.splitlines()[0])
        if job.kind == JobKind.TRAIN and not uploaded:
            artifact_delete(prefix=prefix)
        training_job_finish(
            job_id=job.pk,
            status=JobStatus.FAILED,
            error=message,
            progress={"stage": "failed", "message": message.splitlines()[0]},
        )
        if not isinstance(exc, Exception):
            raise  # SystemExit / KeyboardInterrupt: record, then let the worker stop
    finally:
        heartbeat.stop()
    job.refresh_from_db()
    return job


def _cancelled_clean(job: TrainingJob, prefix: str) -> None:
    """Drop what a cancelled training wrote: its never-promoted version rows and its files."""
    ModelVersion.objects.for_tenant(job.tenant).filter(job=job).exclude(state=VersionState.ACTIVE).delete()
    if not ModelVersion.objects.for_tenant(job.tenant).filter(job=job).exists():
        artifact_delete(prefix=prefix)


def _error_message(exc: BaseException) -> str:
    from celery.exceptions import SoftTimeLimitExceeded

    from mlcore.errors import NotEnoughData

    if isinstance(exc, NotEnoughData):
        return f"Not enough data to train: {exc}"
    if isinstance(exc, SoftTimeLimitExceeded):
        return "Timed out: the training exceeded its time limit; the active version is unchanged."
    tb = "".join(traceback.format_exception(exc, limit=-8))
    return f"{type(exc).__name__}: {exc}\n\n{tb}"


def _train_and_upload(job: TrainingJob, prefix: str) -> tuple[pd.DataFrame, Any, Any]:
    from mlcore.pipeline import train_pipeline  # TensorFlow: worker only

    tenant = job.tenant
    training_job_progress(job_id=job.pk, progress={"stage": "export", "message": "exporting events"})
    frame = events_frame_export(tenant=tenant)
    config = _train_config(job)
    warm = _warm_start(tenant)
    workdir = Path(tempfile.mkdtemp(prefix=f"train-{job.pk}-", dir=_tmp_root()))
    try:
        out_dir = workdir / "artifact"
        result = train_pipeline(
            frame, config=config, out_dir=out_dir, progress=_progress_reporter(job.pk), warm_start=warm
        )
        training_job_progress(job_id=job.pk, progress={"stage": "upload", "message": "writing artifacts"})
        artifact_upload(local_dir=Path(result.artifact_dir), prefix=prefix)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return frame, config, result


def _tmp_root() -> str:
    root = Path(settings.VAR_DIR) / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return str(root)


def _warm_start(tenant: Tenant) -> Any:
    """The active version's local artifact directory, when mlcore wants to start from it."""
    if not _setting("JOBS_WARM_START", False):
        return None
    active = model_version_active(tenant=tenant)
    if active is None:
        return None
    from platform_core.jobs.artifact_store import artifact_local_path

    return artifact_local_path(version=active)


def _promote_unless_cancelled(job: TrainingJob, version: ModelVersion, reason: str) -> None:
    """Switch to ``version`` under the job's row lock: a job cancelled during the upload is never promoted."""
    try:
        with transaction.atomic():
            if training_job_lock(job_id=job.pk) != JobStatus.RUNNING:
                raise JobCancelled(f"job {job.pk} was cancelled before its promotion")
            # The artifact is loaded back before the switch: a broken upload never serves.
            model_version_promote(version=version)
    except ServiceError as exc:
        version.gate_passed = False
        version.gate_reason = f"{reason}; refused at load: {exc.message}"
        version.save(update_fields=["gate_passed", "gate_reason"])
        raise


def _version_record(
    job: TrainingJob, prefix: str, frame: pd.DataFrame, config: Any, result: Any
) -> dict[str, Any]:
    """Create the version, run the gate, promote or keep as candidate, store embeddings."""
    from platform_core.profiles.services import profile_embeddings_store

    tenant = job.tenant
    metrics = {m: {k: _jsonable(v) for k, v in vals.items()} for m, vals in result.metrics.items()}
    metric = _gate_metric(metrics, result.primary, config)
    margin = float(_setting("JOBS_GATE_MARGIN", 0.0))
    ts = frame["timestamp"]
    window = {
        "start": dt.datetime.fromtimestamp(int(ts.min()), tz=dt.UTC).isoformat() if len(ts) else None,
        "end": dt.datetime.fromtimestamp(int(ts.max()), tz=dt.UTC).isoformat() if len(ts) else None,
        "n_events": int(result.n_events),
        "n_users": int(result.n_users),
        "n_items": int(result.n_items),
    }
    with transaction.atomic():
        active = model_version_active(tenant=tenant)
        # A retrain after an erasure is not held to the serving version's score: that version
        # learnt from the erased users, and it must go (the popularity baseline still applies).
        comparable = active is not None and active.validation_metric == metric
        if job.requested_by == ERASURE_REQUESTER:
            comparable = False
        active_value = active.primary_metric() if comparable else None
        passed, reason = gate_decide(
            metrics=metrics, primary=result.primary, metric=metric, margin=margin, active_value=active_value
        )
        version = ModelVersion.objects.for_tenant(tenant).create(
            tenant=tenant,
            job=job,
            algorithm=result.primary,
            artifact_path=prefix,
            metrics=metrics,
            validation_metric=metric,
            data_window=window,
            state=VersionState.CANDIDATE,
            gate_passed=passed,
            gate_reason=reason,
        )
    promoted = False
    extra: dict[str, Any] = {}
    if passed:
        _promote_unless_cancelled(job, version, reason)
        promoted = True
        try:
            stored = profile_embeddings_store(
                tenant=tenant,
                version=version,
                user_ids=list(result.user_ids),
                embeddings=np.asarray(result.user_embeddings, dtype=np.float32),
            )
            extra["embeddings_stored"] = stored
        except Exception as exc:  # the model serves without stored embeddings
            log.exception("job %s: storing user embeddings failed", job.pk)
            extra["embeddings_error"] = f"{type(exc).__name__}: {exc}"
    extra["peak_rss_mb"] = round(float(getattr(result, "peak_rss_mb", 0.0)), 1)
    extra["clean_report"] = getattr(result, "clean_report", {})
    return {
        **extra,
        "model_version": version.pk,
        "promoted": promoted,
        "gate": reason,
        "metric": metric,
        "metrics": metrics,
        **window,
    }
