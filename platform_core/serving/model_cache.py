"""Per-process cache of each tenant's active model (memory-mapped artifacts).

A request asks :func:`serving_model_get`. The active version is looked up in
the database at most once per ``HOT_CACHE_SECONDS`` per tenant. When it has
changed, the new artifact is loaded in a background thread while requests
keep using the old one; the new model replaces the old with one reference
assignment (atomic under the GIL), so a request sees either model whole,
never a mix. A new artifact that fails to load (``ArtifactError``) or fails
the sanity checks here is refused, logged, retried only after
``SERVING_RELOAD_RETRY_SECONDS``, and the old model keeps serving. Only a
process with nothing to serve yet loads synchronously.

Only NumPy/hnswlib modules of mlcore are imported: never TensorFlow.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings

from mlcore.artifacts import Artifact, ArtifactError, artifact_load

if TYPE_CHECKING:
    from platform_core.jobs.models import ModelVersion
    from platform_core.tenancy.models import Tenant

logger = logging.getLogger(__name__)

#: Items whose training popularity is at or below this quantile count as long tail (exploration).
LONG_TAIL_QUANTILE = 0.5


@dataclass(frozen=True)
class ServingModel:
    """One loaded model version, ready for requests (never mutated after construction)."""

    tenant_id: int
    version_id: int
    version_created_at: datetime
    artifact: Artifact
    # Plain ndarray view of the memory-mapped item vectors: same pages, but
    # indexing it skips np.memmap's per-view bookkeeping (≈0.1 ms per row).
    vectors: np.ndarray
    popular_order: np.ndarray  # artifact rows, most popular first
    long_tail: np.ndarray  # bool per artifact row
    loaded_at: float = field(default_factory=time.time)

    @property
    def n_items(self) -> int:
        return len(self.artifact.item_ids)


@dataclass
class _Entry:
    model: ServingModel | None = None
    checked_until: float = 0.0
    loading_version: int | None = None
    refused: dict[int, float] = field(default_factory=dict)  # version id → retry after (monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None


_entries: dict[int, _Entry] = {}
_entries_lock = threading.Lock()


def _entry(tenant_id: int) -> _Entry:
    entry = _entries.get(tenant_id)
    if entry is None:
        with _entries_lock:
            entry = _entries.setdefault(tenant_id, _Entry())
    return entry


def serving_model_build(*, version: ModelVersion, artifact: Artifact) -> ServingModel:
    """Check a loaded artifact and derive what serving needs from it.

    Raises:
        ArtifactError: the artifact is unusable for serving (empty, non-finite vectors…).
    """
    n = len(artifact.item_ids)
    if n == 0:
        raise ArtifactError(f"artifact {artifact.path} has no items")
    vectors = artifact.item_vectors
    # A corrupt file can load with the right shape; a bad value would poison every score.
    if not np.isfinite(vectors[: min(n, 1000)]).all() or not np.isfinite(vectors[-1]).all():
        raise ArtifactError(f"artifact {artifact.path} has non-finite item vectors")
    if artifact.index.n_items != n:
        raise ArtifactError(
            f"artifact {artifact.path}: index has {artifact.index.n_items} items, expected {n}"
        )
    popularity = np.asarray(artifact.item_popularity, dtype=np.float32)
    order = np.argsort(-popularity, kind="stable")
    threshold = float(np.quantile(popularity, LONG_TAIL_QUANTILE)) if n else 0.0
    return ServingModel(
        tenant_id=version.tenant_id,
        version_id=version.pk,
        version_created_at=version.created_at,
        artifact=artifact,
        vectors=np.asarray(vectors).view(np.ndarray),
        popular_order=order,
        long_tail=popularity <= threshold,
    )


def _load(version: ModelVersion) -> ServingModel:
    from platform_core.jobs.artifact_store import artifact_local_path

    try:
        path = artifact_local_path(version=version)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"artifact of version {version.pk} is not available: {exc}") from exc
    return serving_model_build(version=version, artifact=artifact_load(path))


def _try_load(entry: _Entry, version: ModelVersion) -> ServingModel | None:
    """Load ``version``; on success swap it in, on failure refuse it and keep the old one."""
    try:
        model = _load(version)
    except ArtifactError as exc:
        retry = getattr(settings, "SERVING_RELOAD_RETRY_SECONDS", 60)
        entry.refused[version.pk] = time.monotonic() + retry
        logger.error(
            "serving: refused model version %s of tenant %s (the previous one keeps serving): %s",
            version.pk,
            version.tenant_id,
            exc,
        )
        return None
    entry.model = model  # the atomic swap
    logger.info("serving: tenant %s now serves model version %s", version.tenant_id, version.pk)
    return model


def _reload_in_background(entry: _Entry, version: ModelVersion) -> None:
    def run() -> None:
        from django.db import close_old_connections

        try:
            _try_load(entry, version)
        finally:
            entry.loading_version = None
            close_old_connections()  # this thread's connection must not linger

    entry.loading_version = version.pk
    entry.thread = threading.Thread(target=run, name=f"model-reload-{version.tenant_id}", daemon=True)
    entry.thread.start()


def serving_model_get(*, tenant: Tenant) -> ServingModel | None:
    """The model to serve ``tenant`` with now, or None when it has no usable active version.

    Never waits for a reload when an older model can answer.
    """
    entry = _entry(tenant.pk)
    now = time.monotonic()
    if now < entry.checked_until:
        return entry.model
    with entry.lock:
        if now < entry.checked_until:
            return entry.model
        from platform_core.jobs.selectors import model_version_active

        version = model_version_active(tenant=tenant)
        entry.checked_until = time.monotonic() + settings.HOT_CACHE_SECONDS
        current = entry.model
        if version is None:
            entry.model = None  # no active version any more (rolled back to none)
            return None
        if current is not None and current.version_id == version.pk:
            return current
        if entry.refused.get(version.pk, 0.0) > time.monotonic():
            return current
        if entry.loading_version == version.pk:
            return current
        if current is not None and getattr(settings, "SERVING_RELOAD_IN_BACKGROUND", True):
            _reload_in_background(entry, version)
            return current
        # Nothing to serve yet (or background reloads are off): load now.
        loaded = _try_load(entry, version)
        return loaded if loaded is not None else current


def model_cache_wait(timeout: float = 30.0) -> None:
    """Wait for background reloads in flight (tests and benchmarks)."""
    for entry in list(_entries.values()):
        thread = entry.thread
        if thread is not None:
            thread.join(timeout)


def model_cache_expire(*, tenant_id: int | None = None) -> None:
    """Make the next request re-check the active version (tests; after a promote in this process)."""
    for tid, entry in list(_entries.items()):
        if tenant_id is None or tid == tenant_id:
            entry.checked_until = 0.0


def model_cache_clear() -> None:
    """Forget every loaded model (tests)."""
    model_cache_wait()
    with _entries_lock:
        _entries.clear()
