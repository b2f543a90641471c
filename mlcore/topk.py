"""Top-k retrieval by inner product: exact NumPy, approximate IVF and HNSW (no TensorFlow).

All implement :class:`TopKIndex`; :func:`index_build` picks one by catalog size.
Artifacts use IVF for large catalogs: its lists are contiguous row ranges of the
(memory-mapped) item vectors themselves, so a web process holds no second copy
of the catalog, unlike hnswlib, which keeps its own vectors beside the graph.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

#: At or above this many items `index_build(kind="auto")` builds an approximate (IVF) index.
HNSW_MIN_ITEMS = 20_000
APPROX_MIN_ITEMS = HNSW_MIN_ITEMS
#: Recall@10 against brute force that the ef / nprobe tuning must reach.
HNSW_TARGET_RECALL = 0.95
_EF_CANDIDATES = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
_NPROBE_CANDIDATES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
#: Points k-means iterates on (a sample: the centroids settle long before every point is seen).
_KMEANS_SAMPLE = 40_000
_KMEANS_ITERATIONS = 10


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


def _sample_queries(vectors: np.ndarray, *, seed: int, n_queries: int = 200) -> np.ndarray:
    """Queries that look like user vectors: means of a few items plus noise."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(vectors), size=(n_queries, 5))
    queries = np.asarray(vectors[picks].mean(axis=1), dtype=np.float32)
    queries += rng.normal(0, queries.std() * 0.5 + 1e-6, size=queries.shape).astype(np.float32)
    return queries


def ivf_partition(vectors: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k-means lists of an IVF index: (row order that makes each list contiguous, centroids, offsets).

    ``vectors[order][offsets[c]:offsets[c + 1]]`` are the rows of list ``c``.
    About ``2·√n`` lists; k-means runs on a sample, then every row is assigned once.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    n, _ = vectors.shape
    n_lists = max(1, min(n, int(round(2 * np.sqrt(n)))))
    rng = np.random.default_rng(seed)
    sample = vectors[np.sort(rng.choice(n, size=min(n, _KMEANS_SAMPLE), replace=False))]
    centroids = sample[rng.choice(len(sample), size=n_lists, replace=False)].copy()
    for _ in range(_KMEANS_ITERATIONS):
        assign = _nearest(sample, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, sample)
        counts = np.bincount(assign, minlength=n_lists)
        empty = counts == 0
        centroids[~empty] = sums[~empty] / counts[~empty, None]
        # An empty list restarts on a random point instead of staying useless.
        centroids[empty] = sample[rng.choice(len(sample), size=int(empty.sum()))]
    assign = _nearest(vectors, centroids)
    order = np.argsort(assign, kind="stable")
    offsets = np.zeros(n_lists + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(assign, minlength=n_lists))
    return order.astype(np.int64), centroids.astype(np.float32), offsets


def _nearest(points: np.ndarray, centroids: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Index of the nearest centroid (L2) of each point, in chunks to bound memory."""
    half_norms = 0.5 * (centroids * centroids).sum(axis=1)
    out = np.empty(len(points), dtype=np.int64)
    for start in range(0, len(points), chunk):
        block = points[start : start + chunk] @ centroids.T - half_norms
        out[start : start + chunk] = block.argmax(axis=1)
    return out


class IvfIndex:
    """Approximate inner-product search over k-means lists stored as contiguous row ranges.

    The index proper is ``centroids`` and ``offsets`` (a few hundred KB); the
    rows it scores are the item vectors themselves (memory-mapped in
    artifacts), ordered list by list. A query scores the centroids, then the
    rows of the ``nprobe`` best lists (more when they hold fewer rows than
    asked for); ``nprobe`` is tuned at build time for recall@10 ≥
    ``HNSW_TARGET_RECALL``. ``labels`` maps a row back to the caller's index
    when the vectors were reordered here (None: rows are the caller's indices).
    """

    kind = "ivf"

    def __init__(
        self,
        vectors: np.ndarray,
        centroids: np.ndarray,
        offsets: np.ndarray,
        nprobe: int,
        labels: np.ndarray | None = None,
    ) -> None:
        # A plain ndarray view of a memmap: same pages, without np.memmap's per-slice bookkeeping.
        self._vectors = np.asarray(vectors).view(np.ndarray)
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.n_items = int(self._vectors.shape[0])
        self.n_lists = int(self.centroids.shape[0])
        self.nprobe = int(nprobe)
        self.labels = labels
        self._sizes = np.diff(self.offsets)
        if self.offsets.shape != (self.n_lists + 1,) or self.offsets[-1] != self.n_items:
            raise ValueError(
                f"IVF offsets cover {int(self.offsets[-1]) if len(self.offsets) else 0} rows "
                f"in {len(self.offsets) - 1} lists; expected {self.n_items} rows in {self.n_lists}"
            )

    @classmethod
    def build(cls, vectors: np.ndarray, *, seed: int = 0) -> IvfIndex:
        """Index a copy of ``vectors`` reordered list by list (``labels`` maps back); nprobe tuned."""
        vectors = np.asarray(vectors, dtype=np.float32)
        order, centroids, offsets = ivf_partition(vectors, seed=seed)
        index = cls(vectors[order], centroids, offsets, nprobe=1, labels=order)
        index.nprobe = index.tune(seed=seed)
        return index

    def tune(self, *, seed: int = 0) -> int:
        """The smallest nprobe whose recall@10 against brute force reaches HNSW_TARGET_RECALL."""
        queries = _sample_queries(self._vectors, seed=seed)
        k = min(10, self.n_items)
        truth, _ = BruteForceIndex(self._vectors).search_batch(queries, k)
        if self.labels is not None:
            truth = self.labels[truth]
        for nprobe in (*[c for c in _NPROBE_CANDIDATES if c < self.n_lists], self.n_lists):
            self.nprobe = nprobe
            found = [self.search(q, k)[0] for q in queries]
            recall = np.mean(
                [len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(found, truth, strict=True)]
            )
            if recall >= HNSW_TARGET_RECALL:
                return nprobe
        return self.n_lists

    def search(
        self, query: np.ndarray, k: int, exclude: Collection[int] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(query, dtype=np.float32)
        want = min(k + len(exclude), self.n_items)
        if want <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        ranked = np.argsort(-(self.centroids @ q))
        # Enough lists to hold `want` rows, and at least nprobe of them.
        enough = int(np.searchsorted(np.cumsum(self._sizes[ranked]), want)) + 1
        probe = np.sort(ranked[: max(self.nprobe, enough)])
        starts, stops = self.offsets[probe], self.offsets[probe + 1]
        vec = self._vectors
        scores = np.concatenate([vec[a:b] @ q for a, b in zip(starts.tolist(), stops.tolist(), strict=True)])
        sizes = stops - starts
        # Row numbers of the concatenated lists without a Python loop per row.
        rows = np.arange(len(scores), dtype=np.int64) + np.repeat(starts - np.cumsum(sizes) + sizes, sizes)
        labels = self.labels[rows] if self.labels is not None else rows
        if exclude:
            scores[np.isin(labels, np.fromiter(exclude, dtype=np.int64))] = -np.inf
        idx, best = _best_of(scores, k)
        return labels[idx], best

    def save(self, path: str | Path) -> None:
        """Write centroids, offsets and nprobe to ``path`` (.npz); the vectors are the caller's to store."""
        if self.labels is not None:
            raise ValueError("save an IVF index over vectors stored in list order (labels is None)")
        with open(path, "wb") as fh:
            np.savez(fh, centroids=self.centroids, offsets=self.offsets, nprobe=np.int64(self.nprobe))

    @classmethod
    def load(cls, path: str | Path, vectors: np.ndarray) -> IvfIndex:
        """Read an index written by :meth:`save` over ``vectors`` (stored in list order)."""
        with np.load(path, allow_pickle=False) as data:
            return cls(vectors, data["centroids"], data["offsets"], int(data["nprobe"]))


def index_build(vectors: np.ndarray, kind: str = "auto", *, seed: int = 0) -> TopKIndex:
    """Build a top-k index: "brute", "ivf", "hnsw", or "auto" (IVF from APPROX_MIN_ITEMS items)."""
    if kind == "auto":
        kind = "ivf" if len(vectors) >= APPROX_MIN_ITEMS else "brute"
    if kind == "brute":
        return BruteForceIndex(vectors)
    if kind == "ivf":
        return IvfIndex.build(vectors, seed=seed)
    if kind == "hnsw":
        return HnswIndex.build(vectors, seed=seed)
    raise ValueError(f"index kind must be 'auto', 'brute', 'ivf' or 'hnsw', not {kind!r}")
