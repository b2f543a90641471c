"""Training end to end in process (real mlcore + TensorFlow), failures, the gate, artifacts, rollback."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.files.storage import default_storage

from platform_core.common.errors import ServiceError
from platform_core.jobs.artifact_store import artifact_local_path
from platform_core.jobs.models import JobStatus, ModelVersion, VersionState
from platform_core.jobs.selectors import model_version_active
from platform_core.jobs.services import model_version_promote, model_version_rollback, training_job_request
from platform_core.jobs.training import events_frame_export, training_job_run
from platform_core.profiles.models import UserProfile
from tests.platform_core.jobs.conftest import events_seed

pytestmark = pytest.mark.django_db

SMALL = {"epochs": 8, "dim": 16, "max_minutes": 2, "seed": 1}


def _version(tenant, *, state=VersionState.ACTIVE, value=0.5, path="x/1", activated=True) -> ModelVersion:
    from django.utils import timezone

    return ModelVersion.objects.for_tenant(tenant).create(
        tenant=tenant,
        algorithm="transformer",
        artifact_path=path,
        metrics={"transformer": {"val_ndcg@10": value}},
        validation_metric="val_ndcg@10",
        state=state,
        activated_at=timezone.now() if activated else None,
    )


def _artifact(path: str, n_items: int = 5) -> None:
    """A real (NumPy-only) artifact written where storage expects ``path``."""
    from mlcore.artifacts import artifact_save

    target = default_storage.path(path)
    artifact_save(
        target,
        algorithm="popularity",
        config={},
        metrics={},
        item_ids=[f"i{i}" for i in range(n_items)],
        item_vectors=np.ones((n_items, 1), dtype=np.float32),
        item_popularity=np.arange(n_items, dtype=np.float32),
    )


def test_export_uses_plugin_weights_and_leaves_out_labels_and_itemless(tenant):
    from platform_core.catalog.models import EndUser
    from platform_core.events.models import Event
    from tests.platform_core.jobs.conftest import T0

    events_seed(tenant, n_users=2, n_items=3, per_user=2, types=("view", "purchase"))
    user = EndUser.objects.for_tenant(tenant).get(external_id="u0")
    Event.unscoped.create(tenant=tenant, event_id="no-item", user=user, item=None, type="view", timestamp=T0)
    frame = events_frame_export(tenant=tenant, chunk_size=2)  # chunks smaller than the data
    # u0: view i0, purchase i1; u1: view i1, purchase i2 (ecommerce weighs a purchase above a view).
    rows = sorted(zip(frame.user_id, frame.item_id, frame.event_type, frame.weight, strict=True))
    weights = {
        k: v
        for k, v in __import__("domains.registry").registry.plugin_get("ecommerce").event_weights().items()
    }
    assert rows == [
        ("u0", "i0", "view", weights["view"]),
        ("u0", "i1", "purchase", weights["purchase"]),
        ("u1", "i1", "view", weights["view"]),
        ("u1", "i2", "purchase", weights["purchase"]),
    ]
    assert list(frame.columns) == ["user_id", "item_id", "timestamp", "event_type", "weight"]


def test_training_promotes_a_good_first_version_and_stores_embeddings(seeded_tenant):
    tenant = seeded_tenant
    job = training_job_request(tenant=tenant, config=SMALL, enqueue=False)
    job = training_job_run(job_id=job.pk, worker="test")
    assert job.status == JobStatus.SUCCEEDED, job.error
    version = ModelVersion.objects.for_tenant(tenant).get(job=job)
    assert version.state == VersionState.ACTIVE, version.gate_reason
    assert model_version_active(tenant=tenant) == version
    assert version.artifact_path == f"{tenant.slug}/{job.pk}"
    assert default_storage.exists(f"{tenant.slug}/{job.pk}/manifest.json")
    assert set(version.metrics) >= {"transformer", "popularity"}
    assert version.gate_passed and version.gate_reason.startswith("passed")
    assert job.result["promoted"] is True and job.progress["stage"] == "done"
    # 40 users, each with a vector of the trained dimension, tied to the version.
    profiles = UserProfile.objects.for_tenant(tenant)
    assert profiles.exclude(embedding=None).count() == 40
    assert {p.model_version_id for p in profiles} == {version.pk}
    assert profiles.first().embedding_vector().shape == (16,)
    # No per-user data in the artifact.
    manifest = json.loads(default_storage.open(f"{version.artifact_path}/manifest.json").read())
    assert "u0" not in json.dumps(manifest)


def test_a_worse_model_is_not_promoted(seeded_tenant):
    tenant = seeded_tenant
    # NDCG is at most 1.0, so no model can beat an active version that scored 1.0
    # (the planted data is easy enough for a model to score 0.999).
    active = _version(tenant, value=1.0)
    job = training_job_request(tenant=tenant, config=SMALL, enqueue=False)
    job = training_job_run(job_id=job.pk)
    assert job.status == JobStatus.SUCCEEDED, job.error
    new = ModelVersion.objects.for_tenant(tenant).get(job=job)
    assert new.state == VersionState.CANDIDATE
    assert not new.gate_passed
    assert "does not beat the active version's 1.0000" in new.gate_reason
    assert model_version_active(tenant=tenant) == active
    assert not UserProfile.objects.for_tenant(tenant).exclude(embedding=None).exists()


def test_an_exception_in_training_fails_the_job_and_keeps_the_active_version(seeded_tenant, monkeypatch):
    import mlcore.pipeline

    tenant = seeded_tenant
    active = _version(tenant)

    def broken(*args, **kwargs):
        raise RuntimeError("GPU on fire")

    monkeypatch.setattr(mlcore.pipeline, "train_pipeline", broken)
    job = training_job_request(tenant=tenant, enqueue=False)
    job = training_job_run(job_id=job.pk)
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("RuntimeError: GPU on fire")
    assert job.finished_at is not None
    assert model_version_active(tenant=tenant) == active
    assert ModelVersion.objects.for_tenant(tenant).count() == 1
    assert not default_storage.exists(f"{tenant.slug}/{job.pk}")


def test_too_little_data_is_a_clear_refusal(tenant):
    events_seed(tenant, n_users=3, n_items=4, per_user=2)
    job = training_job_request(tenant=tenant, enqueue=False)
    job = training_job_run(job_id=job.pk)
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("Not enough data to train:")
    assert "at least 10 users" in job.error  # mlcore says how much is needed
    assert model_version_active(tenant=tenant) is None


def test_a_corrupt_artifact_is_refused_and_the_previous_version_keeps_serving(tenant):
    _artifact("t/1")
    good = _version(tenant, path="t/1")
    _artifact("t/2")
    bad = _version(tenant, state=VersionState.CANDIDATE, path="t/2", activated=False)
    with default_storage.open("t/2/manifest.json", "wb") as fh:
        fh.write(b"{not json")
    missing = _version(tenant, state=VersionState.CANDIDATE, path="t/404", activated=False)
    for version in (bad, missing):
        with pytest.raises(ServiceError) as info:
            model_version_promote(version=version)
        assert info.value.code == "artifact_error"
        assert "cannot be activated" in info.value.message and "keeps serving" in info.value.message
    assert model_version_active(tenant=tenant) == good
    assert artifact_local_path(version=good) == __import__("pathlib").Path(default_storage.path("t/1"))


def test_promote_then_rollback(tenant):
    _artifact("t/1")
    _artifact("t/2")
    first = _version(tenant, state=VersionState.CANDIDATE, path="t/1", activated=False)
    second = _version(tenant, state=VersionState.CANDIDATE, path="t/2", activated=False)
    model_version_promote(version=first)
    model_version_promote(version=second)
    first.refresh_from_db()
    assert first.state == VersionState.RETIRED
    assert model_version_rollback(tenant=tenant) == first
    assert model_version_active(tenant=tenant) == first
    second.refresh_from_db()
    assert second.state == VersionState.RETIRED
    # Nothing older than the first activation: a second rollback is refused.
    with pytest.raises(ServiceError) as info:
        model_version_rollback(tenant=tenant)
    assert info.value.code == "no_previous_version"


def test_train_command_exits_non_zero_on_failure_and_prints_why(tenant, capsys):
    from django.core.management import CommandError, call_command

    events_seed(tenant, n_users=3, n_items=4, per_user=2)
    with pytest.raises(CommandError) as info:
        call_command("train", tenant.slug, "--inline")
    assert "failed: Not enough data to train" in str(info.value)
    assert "[job " in capsys.readouterr().out


def test_train_command_refuses_an_unknown_tenant():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="no tenant with slug 'nope'"):
        call_command("train", "nope")
