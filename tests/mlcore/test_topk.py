import numpy as np

from mlcore.topk import BruteForceIndex, HnswIndex, index_build


def test_brute_force_is_exact_and_excludes():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [-1.0, 0.0]], dtype=np.float32)
    index = BruteForceIndex(vectors)
    # query (1, 0.5): scores 1.0, 0.5, 1.05, -1.0 → order 2, 0, 1
    idx, scores = index.search(np.array([1.0, 0.5]), 3)
    assert idx.tolist() == [2, 0, 1]
    assert np.allclose(scores, [1.05, 1.0, 0.5])
    idx, _ = index.search(np.array([1.0, 0.5]), 3, exclude=[2])
    assert idx.tolist() == [0, 1, 3]


def test_hnsw_recall_and_save_load(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 16)).astype(np.float32)
    index = HnswIndex.build(vectors)
    brute = BruteForceIndex(vectors)
    queries = rng.normal(size=(50, 16)).astype(np.float32)
    recall = np.mean([len(set(index.search(q, 10)[0]) & set(brute.search(q, 10)[0])) / 10 for q in queries])
    assert recall >= 0.9
    top = brute.search(queries[0], 5)[0]
    found, scores = index.search(queries[0], 5, exclude=[int(top[0])])
    assert int(top[0]) not in found.tolist() and len(found) == 5
    assert np.all(np.diff(scores) <= 1e-6)  # best first
    index.save(tmp_path / "i.hnsw")
    loaded = HnswIndex.load(tmp_path / "i.hnsw")
    assert loaded.ef == index.ef
    assert loaded.search(queries[1], 10)[0].tolist() == index.search(queries[1], 10)[0].tolist()


def test_index_build_auto_uses_brute_force_for_small_catalogs():
    assert index_build(np.eye(4, dtype=np.float32)).kind == "brute"
    assert index_build(np.eye(4, dtype=np.float32), kind="hnsw").kind == "hnsw"
