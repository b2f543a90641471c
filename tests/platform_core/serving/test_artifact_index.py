"""Serving's artifact format 2: compact id maps, the IVF index over the stored vectors, the catalog snapshot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlcore.artifacts import FORMAT_VERSION, ArtifactError, ItemIds, ItemIndex, artifact_load, artifact_save
from mlcore.topk import BruteForceIndex, IvfIndex, index_build
from platform_core.catalog.models import Item
from platform_core.serving.catalog_snapshot import item_texts_get
from tests.factories import EndUserFactory, ItemFactory
from tests.platform_core.serving.conftest import ENCODER_CONFIG, EVENT_TYPES, encoder_weights, events_make


def _clustered(n: int, d: int, *, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.0, size=(40, d)).astype(np.float32)
    return centres[rng.integers(0, 40, size=n)] + rng.normal(0, 0.3, size=(n, d)).astype(np.float32)


# --------------------------------------------------------------------------- ids
def test_item_index_finds_every_id_and_nothing_else() -> None:
    raw = [f"item-{n}" for n in range(500)] + ["ünïcode", "x"]
    ids = ItemIds.from_strings(raw)
    index = ItemIndex(ids)
    assert ids == raw and list(ids) == raw and ids[3] == "item-3" and ids[-1] == "x"
    assert ids[1:3] == ["item-1", "item-2"] and len(index) == len(raw)
    assert all(index[item] == row for row, item in enumerate(raw))
    # Unknown ids, prefixes, ids longer than the stored width, and non-strings are absent.
    for missing in ("item-500", "item-", "item-10000000000000", "", "x\x00", 3, None):
        assert missing not in index and index.get(missing) is None
    with pytest.raises(KeyError):
        index["nope"]
    assert index.rows(["x", "nope", "item-7"]).tolist() == [501, -1, 7]
    assert ids.take(np.array([501, 3])) == ["x", "item-3"]


def test_duplicate_or_nul_ids_are_refused(tmp_path) -> None:
    args = dict(algorithm="popularity", config={}, metrics={}, item_vectors=np.eye(2), item_popularity=[1, 2])
    with pytest.raises(ArtifactError, match="unique"):
        artifact_save(tmp_path / "a", item_ids=["a", "a"], **args)
    with pytest.raises(ArtifactError, match="NUL"):
        artifact_save(tmp_path / "b", item_ids=["a", "b\x00"], **args)


def test_a_format_1_artifact_is_refused_with_a_clear_message(tmp_path) -> None:
    path = artifact_save(
        tmp_path / "a", algorithm="popularity", config={}, metrics={}, item_ids=["a", "b"],
        item_vectors=np.eye(2), item_popularity=[1, 2],
    )  # fmt: skip
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps(manifest | {"format_version": 1}))
    with pytest.raises(ArtifactError, match=rf"format_version 1; this code reads {FORMAT_VERSION}.*retrain"):
        artifact_load(path)


# --------------------------------------------------------------------------- IVF
def test_ivf_recall_exclusion_and_order() -> None:
    vectors = _clustered(4000, 16)
    index = IvfIndex.build(vectors, seed=1)
    brute = BruteForceIndex(vectors)
    queries = vectors[np.random.default_rng(2).integers(0, 4000, size=(60, 4))].mean(axis=1)
    recall = np.mean(
        [
            len(set(index.search(q, 10)[0].tolist()) & set(brute.search(q, 10)[0].tolist())) / 10
            for q in queries
        ]
    )
    assert recall >= 0.9 and 1 <= index.nprobe <= index.n_lists
    top = brute.search(queries[0], 5)[0]
    found, scores = index.search(queries[0], 5, exclude={int(top[0])})
    assert int(top[0]) not in found.tolist() and len(found) == 5
    assert np.all(np.diff(scores) <= 1e-6)  # best first
    np.testing.assert_allclose(
        scores, vectors[found] @ queries[0], rtol=1e-5
    )  # true scores, caller's indices
    # More asked for than the probed lists hold: more lists are read, never fewer results.
    assert len(index.search(queries[0], 3000)[0]) == 3000
    assert (
        index_build(vectors, kind="auto").kind == "brute" and index_build(vectors, kind="ivf").kind == "ivf"
    )


def test_ivf_artifact_stores_rows_list_by_list_and_keeps_every_item_consistent(tmp_path) -> None:
    n = 3000
    ids = [f"i{k}" for k in range(n)]
    weights = encoder_weights(n, seed=3)
    weights["item_emb"][1:] = _clustered(n, weights["item_emb"].shape[1], seed=3)
    vectors = weights["item_emb"][1:].copy()
    popularity = np.arange(n, dtype=np.float32)
    path = artifact_save(
        tmp_path / "a", algorithm="transformer", config={}, metrics={}, item_ids=ids, item_vectors=vectors,
        item_popularity=popularity, event_types=EVENT_TYPES, encoder_weights=weights,
        encoder_config=ENCODER_CONFIG, index_kind="ivf",
    )  # fmt: skip
    art = artifact_load(path)
    assert art.index.kind == "ivf" and art.format_version == FORMAT_VERSION
    assert isinstance(art.item_vectors, np.memmap)
    assert list(art.item_ids) != ids and sorted(art.item_ids) == sorted(ids)  # reordered, nothing lost
    rows = art.item_index.rows(ids)
    np.testing.assert_array_equal(np.asarray(art.item_vectors)[rows], vectors)
    np.testing.assert_array_equal(art.item_popularity[rows], popularity)
    # The encoder shares the stored vectors and sees the same items as the original weights.
    assert art.encoder is not None and art.encoder.item_table is art.item_vectors
    from mlcore.inference import SequenceEncoder

    original = SequenceEncoder(weights, ENCODER_CONFIG, ids, EVENT_TYPES)
    seq = ["i5", "i2900", "i17", "i1234"]
    np.testing.assert_allclose(
        art.encoder.embed(seq, ["view"] * 4), original.embed(seq, ["view"] * 4), atol=1e-5
    )
    # The warm-start reader's JSON ids follow the stored row order.
    assert json.loads((path / "item_ids.json").read_text()) == list(art.item_ids)
    # Search answers in stored rows; their ids are the brute-force best ones.
    q = original.embed(seq, ["view"] * 4)
    want = [ids[i] for i in BruteForceIndex(vectors).search(q, 10)[0]]
    got = [art.item_ids[i] for i in art.index.search(q, 10)[0]]
    assert len(set(want) & set(got)) >= 8


# --------------------------------------------------------------------------- serving with IVF
@pytest.mark.django_db
def test_recommendations_from_an_ivf_artifact_are_the_model_ranking(
    api_client, tenant, model_version_make
) -> None:
    ids = [f"i{n}" for n in range(30)]
    for item_id in ids:
        ItemFactory(tenant=tenant, external_id=item_id, attributes={"category": "shoes", "in_stock": True})
    built = model_version_make(tenant, ids, seed=4, index_kind="ivf")
    user = EndUserFactory(tenant=tenant, external_id="bob")
    history = ["i3", "i11", "i20"]
    events_make(tenant, user, history)
    q = built.user_vector(history)
    scores = built.vectors @ q
    want = [ids[i] for i in np.argsort(-scores, kind="stable")[:5]]
    body = api_client.get("/api/v1/users/bob/recommendations?k=5&explain=true").json()
    assert [i["item_id"] for i in body["items"]] == want
    for item in body["items"]:
        assert item["explanation"]["model_score"] == pytest.approx(built.score(q, item["item_id"]), abs=1e-5)


# --------------------------------------------------------------------------- catalog snapshot
@pytest.mark.django_db
def test_catalog_snapshot_follows_updates_creations_deactivations_and_deletions(tenant, settings) -> None:
    settings.HOT_CACHE_SECONDS = 0  # every lookup checks for changes
    for n in range(5):
        ItemFactory(tenant=tenant, external_id=f"i{n}", attributes={"category": "shoes", "in_stock": True})
    texts = item_texts_get(tenant_id=tenant.pk, item_ids=["i0", "i4", "zz"])
    assert texts is not None and json.loads(texts["i0"]) == {"category": "shoes", "in_stock": True}
    assert texts["zz"] is None

    from platform_core.catalog.services import item_upsert

    item_upsert(tenant=tenant, external_id="i0", attributes={"category": "bags", "in_stock": False})
    ItemFactory(tenant=tenant, external_id="new", attributes={"category": "hats"})
    Item.objects.for_tenant(tenant).filter(external_id="i1").update(active=False)
    Item.objects.for_tenant(tenant).filter(external_id="i1").first().save()  # a write moves updated_at
    texts = item_texts_get(tenant_id=tenant.pk, item_ids=["i0", "new", "i1"])
    assert json.loads(texts["i0"])["in_stock"] is False
    assert json.loads(texts["new"]) == {"category": "hats"}
    assert texts["i1"] is None  # inactive items are never candidates

    Item.objects.for_tenant(tenant).filter(external_id="i4").delete()
    texts = item_texts_get(tenant_id=tenant.pk, item_ids=["i4", "i2"])
    assert texts is not None and texts["i4"] is None and texts["i2"] is not None


@pytest.mark.django_db
def test_other_tenants_items_are_not_in_the_snapshot(tenant, other_tenant) -> None:
    ItemFactory(tenant=other_tenant, external_id="theirs", attributes={"category": "shoes"})
    ItemFactory(tenant=tenant, external_id="ours", attributes={"category": "shoes"})
    texts = item_texts_get(tenant_id=tenant.pk, item_ids=["theirs", "ours"])
    assert texts is not None and texts["theirs"] is None and texts["ours"] is not None


@pytest.mark.django_db
def test_a_failed_snapshot_build_falls_back_to_the_database_and_is_retried(
    shop, settings, monkeypatch
) -> None:
    from platform_core.plugins.selectors import tenant_plugin_get
    from platform_core.serving import catalog_snapshot
    from platform_core.serving.candidates import item_attributes_get

    settings.HOT_CACHE_SECONDS = 0
    real = catalog_snapshot._build
    calls = []

    def failing(tenant_id: int):
        calls.append(tenant_id)
        if len(calls) <= 2:
            raise RuntimeError("database went away")
        return real(tenant_id)

    monkeypatch.setattr(catalog_snapshot, "_build", failing)
    assert (
        item_texts_get(tenant_id=shop.tenant.pk, item_ids=["i0"]) is None
    )  # no snapshot: callers ask the DB
    plugin = tenant_plugin_get(tenant=shop.tenant)
    attrs = item_attributes_get(tenant=shop.tenant, plugin=plugin, item_ids=["i0", "nope"])
    assert attrs == {"i0": {"category": "shoes", "in_stock": True}} and len(calls) == 2
    texts = item_texts_get(tenant_id=shop.tenant.pk, item_ids=["i0"])  # the next check builds it
    assert texts is not None and json.loads(texts["i0"])["category"] == "shoes" and len(calls) == 3
