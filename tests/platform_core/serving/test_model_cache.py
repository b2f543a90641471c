"""The per-process model cache: atomic swaps under traffic, corrupt artifacts refused."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from django.test import Client

from platform_core.jobs.models import ModelVersion, VersionState
from platform_core.jobs.services import model_version_promote
from platform_core.serving import model_cache
from tests.factories import EndUserFactory, ItemFactory, api_key_raw
from tests.platform_core.serving.conftest import events_make

IDS = [f"i{n}" for n in range(30)]


@pytest.fixture
def setup(tenant, model_version_make):
    for item_id in IDS:
        ItemFactory(tenant=tenant, external_id=item_id, attributes={"category": "shoes"})
    user = EndUserFactory(tenant=tenant, external_id="alice")
    events_make(tenant, user, ["i1", "i2", "i3"])
    v1 = model_version_make(tenant, IDS, seed=11)
    return tenant, v1


def _activate(version: ModelVersion) -> None:
    # The real promotion: one transaction, so a concurrent reader never sees "no active version".
    model_version_promote(version=ModelVersion.unscoped.get(pk=version.pk), check_artifact=False)


@pytest.mark.django_db(transaction=True)
def test_swapping_the_active_version_mid_traffic_never_fails_a_request(
    setup, model_version_make, settings
) -> None:
    tenant, v1 = setup
    settings.HOT_CACHE_SECONDS = 0  # every request re-checks the active version
    key = api_key_raw(tenant=tenant, scopes=["read"])
    client = Client(HTTP_AUTHORIZATION=f"Api-Key {key}")
    v2 = model_version_make(tenant, IDS, seed=12, state=VersionState.CANDIDATE)
    statuses: list[int] = []
    versions: list[int] = []
    slow = threading.Event()
    real_load = model_cache._load

    def slow_load(version):  # a big artifact takes a while to map: requests must not wait for it
        slow.wait(5)
        return real_load(version)

    model_cache._load = slow_load
    try:
        for n in range(40):
            if n == 10:
                _activate(v2.version)
            if n == 25:
                slow.set()
                model_cache.model_cache_wait()
            r = client.get("/api/v1/users/alice/recommendations?k=5")
            statuses.append(r.status_code)
            versions.append(r.json().get("model_version"))
    finally:
        model_cache._load = real_load
        slow.set()
    assert statuses == [200] * 40
    # v1 answers until v2 is loaded in the background (requests never wait), then v2 at once.
    assert versions[:25] == [v1.version.pk] * 25
    assert versions[25:] == [v2.version.pk] * 15


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_during_a_swap_all_succeed(setup, model_version_make, settings) -> None:
    tenant, v1 = setup
    settings.HOT_CACHE_SECONDS = 0
    key = api_key_raw(tenant=tenant, scopes=["read"])
    v2 = model_version_make(tenant, IDS, seed=13, state=VersionState.CANDIDATE)
    results: list[tuple[int, int | None]] = []
    lock = threading.Lock()

    def traffic() -> None:
        client = Client(HTTP_AUTHORIZATION=f"Api-Key {key}")
        for _ in range(15):
            r = client.get("/api/v1/users/alice/recommendations?k=3")
            with lock:
                results.append((r.status_code, r.json().get("model_version")))
        from django.db import connection

        connection.close()

    threads = [threading.Thread(target=traffic) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    _activate(v2.version)
    for t in threads:
        t.join(60)
    model_cache.model_cache_wait()
    assert len(results) == 45
    assert {s for s, _ in results} == {200}
    assert {v for _, v in results} <= {v1.version.pk, v2.version.pk}


@pytest.mark.django_db
def test_a_corrupt_new_artifact_is_refused_and_the_old_one_keeps_serving(
    setup, model_version_make, settings, caplog, api_client
) -> None:
    tenant, v1 = setup
    assert api_client.get("/api/v1/users/alice/recommendations").json()["model_version"] == v1.version.pk
    bad = model_version_make(tenant, IDS, seed=14, state=VersionState.CANDIDATE)
    path = Path(settings.STORAGES["default"]["OPTIONS"]["location"]) / bad.version.artifact_path
    (path / "item_vectors.npy").write_bytes(b"not an array")
    _activate(bad.version)
    model_cache.model_cache_expire()
    for _ in range(3):
        r = api_client.get("/api/v1/users/alice/recommendations")
        assert r.status_code == 200
        model_cache.model_cache_wait()
        assert r.json()["model_version"] == v1.version.pk
        model_cache.model_cache_expire()
    assert "refused model version" in caplog.text and "not a valid .npy" in caplog.text


@pytest.mark.django_db
def test_without_an_active_version_serving_falls_back_and_loads_it_when_promoted(
    tenant, model_version_make, api_client
) -> None:
    for item_id in IDS:
        ItemFactory(tenant=tenant, external_id=item_id, attributes={"category": "shoes"})
    user = EndUserFactory(tenant=tenant, external_id="alice")
    events_make(tenant, user, ["i1"])
    assert api_client.get("/api/v1/users/alice/recommendations").json()["model_version"] is None
    built = model_version_make(tenant, IDS, seed=15)
    model_cache.model_cache_expire()
    body = api_client.get("/api/v1/users/alice/recommendations").json()
    assert body["model_version"] == built.version.pk and body["strategy"] == "model"
