"""Fixtures of the jobs tests: a tenant with enough sequential behaviour to train on."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from platform_core.catalog.models import EndUser, Item
from platform_core.celery import app
from platform_core.events.models import Event
from platform_core.tenancy.models import Tenant

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def events_seed(
    tenant: Tenant, *, n_users: int = 40, n_items: int = 20, per_user: int = 12, types=("view",)
) -> None:
    """Users walk the catalog in order (item k then k+1 ...), each from their own start.

    A sequence model learns "next is k+1" quickly, which popularity cannot.
    """
    users = EndUser.unscoped.bulk_create(
        [EndUser(tenant=tenant, external_id=f"u{u}") for u in range(n_users)]
    )
    items = Item.unscoped.bulk_create(
        [Item(tenant=tenant, external_id=f"i{i}", attributes={}) for i in range(n_items)]
    )
    rows = []
    for u, user in enumerate(users):
        for step in range(per_user):
            rows.append(
                Event(
                    tenant=tenant,
                    event_id=f"e{u}-{step}",
                    user=user,
                    item=items[(u + step) % n_items],
                    type=types[step % len(types)],
                    timestamp=T0 + dt.timedelta(hours=u, minutes=step),
                )
            )
    Event.unscoped.bulk_create(rows, batch_size=1000)


@pytest.fixture
def seeded_tenant(tenant: Tenant) -> Tenant:
    events_seed(tenant)
    return tenant


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path):
    """Artifacts go to a fresh FileSystemStorage per test, never to the repository's var/."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "artifacts")},
        },
    }
    settings.ARTIFACT_CACHE_DIR = tmp_path / "artifact-cache"
    settings.VAR_DIR = tmp_path
    # The heartbeat thread has its own connection; inside a test's open transaction it
    # would wait on SQLite's write lock, so it stays quiet here (the worker test covers it).
    settings.JOBS_HEARTBEAT_SECONDS = 3600
    return tmp_path


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Point this process's Celery app at a private broker; return the worker's matching environment."""
    env: dict[str, str] = {"VAR_DIR": str(tmp_path / "worker-var")}
    original = dict(app.conf.broker_transport_options)
    if app.conf.broker_url.startswith("filesystem://"):
        broker_dir = Path(env["VAR_DIR"]) / "broker"
        for sub in ("out", "processed", "control"):
            (broker_dir / sub).mkdir(parents=True, exist_ok=True)
        options = {
            **original,
            "control_folder": str(broker_dir / "control"),
            "data_folder_in": str(broker_dir / "out"),
            "data_folder_out": str(broker_dir / "out"),
            "processed_folder": str(broker_dir / "processed"),
        }
    else:
        prefix = f"test-{uuid.uuid4().hex[:8]}:"
        env["CELERY_BROKER_KEY_PREFIX"] = prefix
        options = {**original, "global_keyprefix": prefix}
    app.conf.broker_transport_options = options
    _reset_producers()
    try:
        yield env
    finally:
        app.conf.broker_transport_options = original
        _reset_producers()


def _reset_producers() -> None:
    # Kombu pools are keyed by connection (options included); drop the cached ones.
    app.amqp._producer_pool = None
    app._pool = None
