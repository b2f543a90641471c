"""Baselines in the Recommender interface (NumPy only): windowed popularity, item-kNN, EASE.

Each tunes its few hyper-parameters on the validation targets, so the
comparison with the neural models is fair.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from mlcore.data import Split
from mlcore.models.base import Histories, ProgressFn, Recommender

#: Validation users the baselines tune on (the sample early stopping uses too). Fewer is noise:
#: on yelp (NDCG@10 ≈ 0.01) 2 000 users scored every grid point alike and picked a poor one.
TUNE_USERS = 5000


def _tune_ndcg(model: Recommender, split: Split) -> float:
    from mlcore.evaluation import split_evaluate

    users = int(model.params.get("tune_users", TUNE_USERS))
    return split_evaluate(
        model, split, which="val", max_users=users, sampled_negatives=0, with_coverage=False
    )["val_ndcg@10"]


def _train_rows(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """(user index, event position) of every training event."""
    data = split.data
    starts = data.offsets[:-1]
    lengths = split.train_end - starts
    users = np.repeat(np.arange(data.n_users), lengths)
    pos = (
        np.concatenate([np.arange(s, e) for s, e in zip(starts, split.train_end, strict=True)])
        if len(starts)
        else []
    )
    return users, np.asarray(pos, dtype=np.int64)


def _popularity(split: Split, window: float) -> np.ndarray:
    """Event counts per 0-based item over the most recent `window` share of training events."""
    data = split.data
    _, pos = _train_rows(split)
    if window < 1.0 and len(pos):
        cutoff = np.quantile(data.timestamps[pos], 1.0 - window)
        pos = pos[data.timestamps[pos] >= cutoff]
    return np.bincount(data.items[pos] - 1, minlength=data.n_items).astype(np.float32)


class PopularityModel(Recommender):
    """Most popular items in a recent window of training time (window tuned on validation)."""

    name = "popularity"

    def fit(self, split: Split, *, deadline: float, progress: ProgressFn | None = None) -> dict[str, Any]:
        best = (-1.0, 1.0)
        for window in self.params.get("windows", (1.0, 0.5, 0.2, 0.05)):
            self.counts = _popularity(split, window)
            best = max(best, (_tune_ndcg(self, split), window))
            if time.monotonic() > deadline:
                break
        self.window = best[1]
        self.counts = _popularity(split, self.window)
        return {"window": self.window}

    def score(self, batch: Histories) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(batch.items), self.n_items))


class ItemKNNModel(Recommender):
    """Item-based kNN: cosine similarity of items over users' training histories, top-K
    neighbours per item, and a user's history weighted by recency (``decay ** age``).

    Decay and neighbourhood size are tuned on a sample of validation users by
    coordinate search (decay at a middle K, then K at that decay); a tiny
    popularity term breaks ties among items no neighbour reaches.
    """

    name = "itemknn"

    def fit(self, split: Split, *, deadline: float, progress: ProgressFn | None = None) -> dict[str, Any]:
        self.popularity = _popularity(split, 1.0)
        self._pop_tiebreak = 1e-6 * self.popularity / max(float(self.popularity.max()), 1.0)
        self._sorted = self._sort_neighbours(*self._similarities(split))
        grid_k = tuple(self.params.get("neighbours", (20, 50, 100, 200)))
        grid_decay = tuple(self.params.get("decays", (1.0, 0.8, 0.6, 0.4)))
        tried: dict[tuple[int, float], float] = {}

        def trial(k: int, decay: float) -> None:
            if (k, decay) in tried or time.monotonic() > deadline:
                return
            self._keep_top(k)
            self.decay = decay
            tried[(k, decay)] = _tune_ndcg(self, split)
            if progress:
                progress(
                    stage="tune", message=f"itemknn k={k} decay={decay} val_ndcg@10={tried[(k, decay)]:.4f}"
                )

        k0 = grid_k[len(grid_k) // 2]
        for decay in grid_decay:
            trial(k0, decay)
        best_decay = max((v, d) for (k, d), v in tried.items())[1] if tried else grid_decay[0]
        for k in grid_k:
            trial(k, best_decay)
        _, (self.k, self.decay) = (
            max((v, key) for key, v in tried.items()) if tried else (0.0, (k0, best_decay))
        )
        self._keep_top(self.k)
        return {"neighbours": self.k, "decay": self.decay}

    def _similarities(self, split: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cosine similarity of every co-occurring item pair: rows, cols (0-based) and values."""
        data, n = split.data, split.data.n_items
        keys_acc: list[np.ndarray] = []
        chunk: list[np.ndarray] = []
        chunk_size = 0
        user_counts = np.zeros(n, dtype=np.float64)
        for u in range(data.n_users):
            items = np.unique(data.items[data.offsets[u] : split.train_end[u]].astype(np.int64) - 1)
            user_counts[items] += 1
            if len(items) < 2:
                continue
            a, b = np.meshgrid(items, items, indexing="ij")
            off = a != b
            chunk.append(a[off] * n + b[off])
            chunk_size += int(off.sum())
            if chunk_size > 5_000_000:
                keys_acc.append(np.concatenate(chunk))
                chunk, chunk_size = [], 0
        if chunk:
            keys_acc.append(np.concatenate(chunk))
        if not keys_acc:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0, dtype=np.float32)
        keys, counts = np.unique(np.concatenate(keys_acc), return_counts=True)
        rows, cols = keys // n, keys % n
        sims = counts / np.sqrt(user_counts[rows] * user_counts[cols])
        return rows, cols, sims.astype(np.float32)

    def _sort_neighbours(
        self, rows: np.ndarray, cols: np.ndarray, sims: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Pairs sorted by row, most similar first, with each pair's rank in its row (sorted once for all K)."""
        order = np.lexsort((-sims, rows))
        r, c, s = rows[order], cols[order], sims[order]
        counts = np.bincount(r, minlength=self.n_items)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return r, c, s, np.arange(len(r)) - starts[r]

    def _keep_top(self, k: int) -> None:
        """Keep each item's k most similar neighbours, stored CSR-style."""
        r, c, s, rank = self._sorted
        keep = rank < k
        self.nbr_cols, self.nbr_sims = c[keep], s[keep]
        kept = np.bincount(r[keep], minlength=self.n_items)
        self.nbr_ptr = np.concatenate([[0], np.cumsum(kept)])

    def score(self, batch: Histories) -> np.ndarray:
        b, n = len(batch.items), self.n_items
        lengths = np.array([len(items) for items in batch.items], dtype=np.int64)
        if not lengths.sum():
            return np.broadcast_to(self._pop_tiebreak, (b, n)).astype(np.float32)
        items0 = np.concatenate(batch.items).astype(np.int64) - 1
        rows = np.repeat(np.arange(b), lengths)
        # age 0 = the newest event of each user's history
        ages = np.repeat(np.cumsum(lengths), lengths) - 1 - np.arange(len(items0))
        weights = self.decay ** ages.astype(np.float64)
        # Expand every history item into its neighbour list without a Python loop.
        starts = self.nbr_ptr[items0]
        counts = self.nbr_ptr[items0 + 1] - starts
        total = int(counts.sum())
        offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
        flat = np.repeat(rows, counts) * n + self.nbr_cols[offsets]
        values = np.repeat(weights, counts) * self.nbr_sims[offsets]
        scores = np.bincount(flat, weights=values, minlength=b * n)
        return (scores.reshape(b, n) + self._pop_tiebreak).astype(np.float32)


class EaseModel(Recommender):
    """EASE (Steck 2019): closed-form item-item regression; only for small catalogs (dense n × n)."""

    name = "ease"
    max_items = 5000

    def fit(self, split: Split, *, deadline: float, progress: ProgressFn | None = None) -> dict[str, Any]:
        from mlcore.evaluation import split_evaluate

        if self.n_items > self.max_items:
            raise ValueError(
                f"EASE needs a dense {self.n_items}² matrix; use it up to {self.max_items} items"
            )
        users, pos = _train_rows(split)
        x = np.zeros((split.data.n_users, self.n_items), dtype=np.float64)
        x[users, split.data.items[pos] - 1] = 1.0
        gram = x.T @ x
        best = (-1.0, 0.0)
        for lam in self.params.get("lambdas", (50.0, 200.0, 500.0, 2000.0)):
            self._solve(gram, lam)
            ndcg = split_evaluate(self, split, which="val", max_users=5000, sampled_negatives=0)[
                "val_ndcg@10"
            ]
            best = max(best, (ndcg, lam))
        self.lam = best[1]
        self._solve(gram, self.lam)
        return {"lambda": self.lam}

    def _solve(self, gram: np.ndarray, lam: float) -> None:
        g = gram.copy()
        g[np.diag_indices_from(g)] += lam
        p = np.linalg.inv(g)
        b = -p / np.diag(p)
        b[np.diag_indices_from(b)] = 0.0
        self.b = b.astype(np.float32)

    def score(self, batch: Histories) -> np.ndarray:
        x = np.zeros((len(batch.items), self.n_items), dtype=np.float32)
        for row, items in enumerate(batch.items):
            x[row, items - 1] = 1.0
        return x @ self.b
