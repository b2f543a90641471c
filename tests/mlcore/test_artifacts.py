import json

import numpy as np
import pytest

from mlcore.artifacts import FORMAT_VERSION, ArtifactError, artifact_load, artifact_save


def _save(path, n=5, d=3, **kw):
    rng = np.random.default_rng(0)
    args = dict(
        algorithm="popularity",
        config={"dim": d},
        metrics={"test_ndcg@10": 0.5},
        item_ids=[f"i{i}" for i in range(n)],
        item_vectors=rng.normal(size=(n, d)),
        item_popularity=np.arange(n),
        event_types=["view"],
    )
    args.update(kw)
    return artifact_save(path, **args)


def test_round_trip(tmp_path):
    _save(tmp_path / "a")
    art = artifact_load(tmp_path / "a")
    assert art.format_version == FORMAT_VERSION and art.algorithm == "popularity"
    assert art.item_ids == ["i0", "i1", "i2", "i3", "i4"] and art.item_index["i3"] == 3
    assert isinstance(art.item_vectors, np.memmap) and art.item_vectors.dtype == np.float32
    assert art.item_popularity.tolist() == [0, 1, 2, 3, 4]
    assert art.metrics == {"test_ndcg@10": 0.5} and art.event_types == ["view"] and art.encoder is None
    best = int(np.argmax(art.item_vectors @ np.ones(3)))
    assert art.index.search(np.ones(3), 1)[0].tolist() == [best]


def test_hnsw_index_is_saved_when_asked(tmp_path):
    _save(tmp_path / "a", n=50, d=4, index_kind="hnsw")
    assert artifact_load(tmp_path / "a").index.kind == "hnsw"


def test_missing_corrupt_wrong_version_and_shape(tmp_path):
    with pytest.raises(ArtifactError, match="not found"):
        artifact_load(tmp_path / "nope")
    path = _save(tmp_path / "a")
    manifest = json.loads((path / "manifest.json").read_text())

    (path / "manifest.json").write_text("{broken")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        artifact_load(path)

    (path / "manifest.json").write_text(json.dumps(manifest | {"format_version": FORMAT_VERSION + 1}))
    with pytest.raises(ArtifactError, match="format_version"):
        artifact_load(path)

    (path / "manifest.json").write_text(json.dumps(manifest | {"n_items": 6}))
    with pytest.raises(ArtifactError, match="shapes disagree"):
        artifact_load(path)

    (path / "manifest.json").write_text(json.dumps(manifest))
    (path / "item_vectors.npy").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        artifact_load(path)


def test_save_refuses_inconsistent_arrays(tmp_path):
    with pytest.raises(ArtifactError, match="disagree"):
        _save(tmp_path / "a", item_popularity=np.arange(4))
