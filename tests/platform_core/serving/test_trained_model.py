"""End to end with a model trained by mlcore.pipeline (TensorFlow here, in the test process only)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.conf import settings

from mlcore.artifacts import artifact_load
from platform_core.jobs.models import ModelVersion, VersionState
from tests.factories import EndUserFactory, ItemFactory
from tests.platform_core.serving.conftest import events_make

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_a_model_trained_by_the_pipeline_serves_with_truthful_scores(
    tenant, api_client, tmp_path: Path
) -> None:
    from mlcore.pipeline import TrainConfig, train_pipeline

    rng = np.random.default_rng(0)
    items = [f"i{n}" for n in range(12)]
    rows = []
    for u in range(40):
        # Two tastes: even users walk the even items in order, odd users the odd ones.
        start = rng.integers(0, 6)
        for k in range(6):
            item = items[(2 * ((start + k) % 6)) + (u % 2)]
            rows.append((f"u{u}", item, 1_700_000_000 + 60 * (u * 10 + k), "view", 1.0))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "event_type", "weight"])
    out = tmp_path / "trained"
    config = TrainConfig(models=("transformer",), epochs=2, max_minutes=2, dim=16, max_len=8, eval_users=50)
    result = train_pipeline(frame, config=config, out_dir=out)
    storage_root = Path(settings.STORAGES["default"]["OPTIONS"]["location"])
    shutil.copytree(result.artifact_dir, storage_root / "tenant-a" / "trained")
    version = ModelVersion.unscoped.create(
        tenant=tenant, algorithm="transformer", artifact_path="tenant-a/trained", state=VersionState.ACTIVE
    )
    for item in items:
        ItemFactory(tenant=tenant, external_id=item, attributes={"category": "c"})
    user = EndUserFactory(tenant=tenant, external_id="fresh")
    events_make(tenant, user, ["i0", "i2", "i4"], start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))

    body = api_client.get("/api/v1/users/fresh/recommendations?k=5&explain=true").json()
    assert body["model_version"] == version.pk and body["strategy"] == "model"
    art = artifact_load(storage_root / "tenant-a" / "trained")
    q = art.encoder.embed(["i0", "i2", "i4"], ["view"] * 3)
    for item in body["items"]:
        want = float(np.asarray(art.item_vectors)[art.item_index[item["item_id"]]] @ q)
        assert item["explanation"]["model_score"] == pytest.approx(want, abs=1e-4)
