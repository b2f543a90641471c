"""k-means in NumPy for cluster segments (scikit-learn is not a dependency; the web tier stays small).

Vectors are scaled to unit length first: the model scores items by dot
product, so a user's direction, not the length of their vector (which grows
with their activity), says what they are interested in.
"""

from __future__ import annotations

import numpy as np

MAX_ITERATIONS = 100


def kmeans_labels(vectors: np.ndarray, *, k: int, seed: int) -> np.ndarray:
    """Cluster numbers (0 = the largest cluster) of each row of ``vectors``.

    k-means++ seeding from ``seed``, then Lloyd's iterations until no label
    changes. Clusters are renumbered by size (ties: the cluster holding the
    earliest row first), so the same data and seed give the same numbers.
    """
    x = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    k = min(k, len(x))
    rng = np.random.default_rng(seed)
    centres = _seeds(x, k, rng)
    labels = np.full(len(x), -1)
    for _ in range(MAX_ITERATIONS):
        d = _sq_distances(x, centres)
        new = d.argmin(axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        for c in range(k):
            rows = x[labels == c]
            # An emptied cluster restarts at the row farthest from its centre.
            centres[c] = rows.mean(axis=0) if len(rows) else x[d.min(axis=1).argmax()]
    return _by_size(labels, k)


def _seeds(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = _sq_distances(x, np.array(centres)).min(axis=1)
        total = d.sum()
        pick = rng.choice(len(x), p=d / total) if total > 0 else rng.integers(len(x))
        centres.append(x[pick])
    return np.array(centres)


def _sq_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return (x * x).sum(axis=1)[:, None] - 2 * x @ centres.T + (centres * centres).sum(axis=1)[None, :]


def _by_size(labels: np.ndarray, k: int) -> np.ndarray:
    sizes = np.bincount(labels, minlength=k)
    first = np.array([np.flatnonzero(labels == c)[0] if sizes[c] else len(labels) for c in range(k)])
    order = sorted(range(k), key=lambda c: (-sizes[c], first[c]))
    renumber = np.empty(k, dtype=int)
    renumber[order] = np.arange(k)
    return renumber[labels]
