"""Artifacts in Django's default storage: upload after training, a local directory for serving.

Storage names are ``<tenant slug>/<job id>/<file>``; with the default
FileSystemStorage (``VAR_DIR/artifacts``) that is the on-disk layout
``artifacts/<tenant>/<job>/``. Remote storage (S3 and the like) is
downloaded once into ``settings.ARTIFACT_CACHE_DIR`` because serving
memory-maps the arrays.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, default_storage

if TYPE_CHECKING:
    from platform_core.jobs.models import ModelVersion

_COMPLETE_MARKER = ".complete"


def artifact_prefix(*, tenant_slug: str, job_id: int) -> str:
    return f"{tenant_slug}/{job_id}"


def artifact_upload(*, local_dir: Path, prefix: str, storage: Storage | None = None) -> list[str]:
    """Copy every file under ``local_dir`` to ``<prefix>/<relative path>`` in storage.

    Returns:
        The storage names written.
    """
    storage = storage or default_storage
    written: list[str] = []
    files = [p for p in Path(local_dir).rglob("*") if p.is_file()]
    # The manifest goes last: a half-uploaded version then fails to load instead of loading wrong.
    for path in sorted(files, key=lambda p: (p.name == "manifest.json", p.as_posix())):
        name = f"{prefix}/{path.relative_to(local_dir).as_posix()}"
        if storage.exists(name):
            storage.delete(name)  # a retried upload replaces, never renames
        with path.open("rb") as fh:
            saved = storage.save(name, File(fh, name=path.name))
        written.append(saved)
    return written


def _storage_walk(storage: Storage, prefix: str) -> list[str]:
    dirs, files = storage.listdir(prefix)
    names = [f"{prefix}/{f}" for f in files]
    for d in dirs:
        names.extend(_storage_walk(storage, f"{prefix}/{d}"))
    return names


def artifact_local_path(*, version: ModelVersion, storage: Storage | None = None) -> Path:
    """A local directory holding ``version``'s artifact files (for ``mlcore.artifacts.artifact_load``).

    FileSystemStorage: the files' own directory. Remote storage: a copy under
    ARTIFACT_CACHE_DIR, downloaded once (a marker file says it is complete, so
    a download cut short is redone rather than served half-written).
    """
    storage = storage or default_storage
    try:
        return Path(storage.path(version.artifact_path))
    except NotImplementedError:
        pass  # remote storage: no local path, fall through to the cache
    cache_dir = Path(settings.ARTIFACT_CACHE_DIR) / version.artifact_path
    if (cache_dir / _COMPLETE_MARKER).exists():
        return cache_dir
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".dl-", dir=cache_dir.parent))
    try:
        for name in _storage_walk(storage, version.artifact_path):
            target = tmp / name[len(version.artifact_path) + 1 :]
            target.parent.mkdir(parents=True, exist_ok=True)
            with storage.open(name, "rb") as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        (tmp / _COMPLETE_MARKER).write_text("ok")
        if cache_dir.exists():
            shutil.rmtree(cache_dir)
        os.replace(tmp, cache_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return cache_dir


def artifact_delete(*, prefix: str, storage: Storage | None = None) -> None:
    """Remove a version's files (used when a job fails after a partial upload)."""
    storage = storage or default_storage
    try:
        names = _storage_walk(storage, prefix)
    except (FileNotFoundError, OSError):
        return
    for name in names:
        storage.delete(name)
    try:  # FileSystemStorage keeps the emptied folders: no partial directory may stay behind
        folder = Path(storage.path(prefix))
    except NotImplementedError:
        return  # object storage has no folders
    shutil.rmtree(folder, ignore_errors=True)
