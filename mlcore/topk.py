"""Top-k retrieval by inner product: exact NumPy and approximate HNSW (no TensorFlow).

Both implement :class:`TopKIndex`; :func:`index_build` picks one by catalog size.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

#: At or above this many items `index_build(kind="auto")` builds an HNSW index.
HNSW_MIN_ITEMS = 20_000
#: Recall@10 against brute force that the ef tuning must reach.
HNSW_TARGET_RECALL = 0.95
_EF_CANDIDATES = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


@runtime_checkable
class TopKIndex(Protocol):
    """Inner-product top-k over a fixed set of item vectors."""

    kind: str
    n_items: int

    def search(
        self, query: np.ndarray, k: int, exclude: Collection[int] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (item indices, scores) of the k best items, best first, skipping `exclude`."""
        ...


class BruteForceIndex:
    """Exact inner-product search with one matrix-vector product."""

    kind = "brute"

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.n_items = int(self.vectors.shape[0])

    def search(
        self, query: np.ndarray, k: int, exclude: Collection[int] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = self.vectors @ np.asarray(query, dtype=np.float32)
        if exclude:
            scores[np.fromiter(exclude, dtype=np.int64)] = -np.inf
        return _best_of(scores, k)

    def search_batch(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k for many queries at once: (n, k) indices and scores."""
        scores = np.asarray(queries, dtype=np.float32) @ self.vectors.T
        k = min(k, self.n_items)
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


def _best_of(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    valid = int(np.isfinite(scores).sum())
    k = min(k, valid)
    if k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    part = np.argpartition(-scores, k - 1)[:k]
    order = np.argsort(-scores[part], kind="stable")
    idx = part[order]
    return idx.astype(np.int64), scores[idx].astype(np.float32)


class HnswIndex:
    """Approximate inner-product search (hnswlib, space "ip") with ef tuned for recall@10."""

    kind = "hnsw"

    def __init__(self, index: object, n_items: int, dim: int, ef: int) -> None:
        self._index = index
        self.n_items = n_items
        self.dim = dim
        self.ef = ef

    @classmethod
    def build(
        cls, vectors: np.ndarray, *, m: int = 16, ef_construction: int = 200, seed: int = 0
    ) -> HnswIndex:
        """Index `vectors` and tune ef on sample queries until recall@10 ≥ HNSW_TARGET_RECALL."""
        import hnswlib

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(max_elements=max(n, 1), ef_construction=ef_construction, M=m, random_seed=seed)
        index.add_items(vectors, np.arange(n))
        built = cls(index, n, dim, ef=64)
        built.ef = built._tune_ef(vectors, seed=seed)
        index.set_ef(built.ef)
        index.set_num_threads(1)
        return built

    def _tune_ef(self, vectors: np.ndarray, *, seed: int, n_queries: int = 200) -> int:
        # Queries look like user vectors: means of a few items plus noise.
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, self.n_items, size=(n_queries, 5))
        queries = vectors[picks].mean(axis=1)
        queries += rng.normal(0, queries.std() * 0.5 + 1e-6, size=queries.shape).astype(np.float32)
        k = min(10, self.n_items)
        truth, _ = BruteForceIndex(vectors).search_batch(queries, k)
        for ef in _EF_CANDIDATES:
            self._index.set_ef(max(ef, k))
            found, _ = self._index.knn_query(queries, k=k)
            recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth, strict=True)])
            if recall >= HNSW_TARGET_RECALL:
                return max(ef, k)
        return _EF_CANDIDATES[-1]

    def search(
        self, query: np.ndarray, k: int, exclude: Collection[int] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        excluded = set(exclude)
        want = min(k + len(excluded), self.n_items)
        if want <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        self._index.set_ef(max(self.ef, want))
        labels, dist = self._index.knn_query(np.asarray(query, dtype=np.float32)[None, :], k=want)
        labels, scores = labels[0].astype(np.int64), (1.0 - dist[0]).astype(np.float32)
        if excluded:
            keep = np.fromiter((lab not in excluded for lab in labels), dtype=bool, count=len(labels))
            labels, scores = labels[keep], scores[keep]
        return labels[:k], scores[:k]

    def save(self, path: str | Path) -> None:
        """Write the graph to `path` and its settings to `path` + ".json"."""
        path = Path(path)
        self._index.save_index(str(path))
        meta = {"n_items": self.n_items, "dim": self.dim, "ef": self.ef, "space": "ip"}
        Path(f"{path}.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, path: str | Path) -> HnswIndex:
        """Read an index written by :meth:`save`."""
        import hnswlib

        meta = json.loads(Path(f"{path}.json").read_text())
        index = hnswlib.Index(space="ip", dim=int(meta["dim"]))
        index.load_index(str(path), max_elements=int(meta["n_items"]))
        index.set_ef(int(meta["ef"]))
        index.set_num_threads(1)
        return cls(index, int(meta["n_items"]), int(meta["dim"]), int(meta["ef"]))


def index_build(vectors: np.ndarray, kind: str = "auto", *, seed: int = 0) -> TopKIndex:
    """Build a top-k index: "brute", "hnsw", or "auto" (HNSW from HNSW_MIN_ITEMS items)."""
    if kind == "auto":
        kind = "hnsw" if len(vectors) >= HNSW_MIN_ITEMS else "brute"
    if kind == "brute":
        return BruteForceIndex(vectors)
    if kind == "hnsw":
        return HnswIndex.build(vectors, seed=seed)
    raise ValueError(f"index kind must be 'auto', 'brute' or 'hnsw', not {kind!r}")
