"""Ranking metrics and full-ranking evaluation (NumPy).

Ranks are 0-based. Ties with the target count half (the expected rank under
random tie-breaking), so a model that gives many items the same score gains
nothing from the order of the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of each row's target among that row's finite scores (ties count half)."""
    rows = np.arange(len(targets))
    t = scores[rows, targets][:, None]
    greater = (scores > t).sum(axis=1)
    ties = (scores == t).sum(axis=1) - 1
    ranks = greater + ties / 2.0
    # An excluded (-inf) target can never be recommended: rank it last.
    return np.where(np.isfinite(t[:, 0]), ranks, scores.shape[1])


def ndcg_at_k(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG@k for one relevant item: 1/log2(rank + 2) inside the top k, else 0."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def hr_at_k(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-user hit rate@k."""
    return (np.asarray(ranks) < k).astype(np.float64)


def mrr(ranks: np.ndarray) -> np.ndarray:
    """Per-user reciprocal rank (no cut-off)."""
    return 1.0 / (np.asarray(ranks, dtype=np.float64) + 1.0)


def recall_at_k(recommended: Sequence[Sequence[int]], relevant: Sequence[set[int]], k: int) -> float:
    """Mean over users of |top-k ∩ relevant| / |relevant| (users with no relevant item skipped)."""
    values = [
        len(set(list(rec)[:k]) & rel) / len(rel)
        for rec, rel in zip(recommended, relevant, strict=True)
        if rel
    ]
    return float(np.mean(values)) if values else 0.0


def coverage(top_items: np.ndarray, n_items: int) -> float:
    """Share of the catalog that appears in at least one user's top-k list."""
    return float(len(np.unique(top_items)) / n_items) if n_items else 0.0


def top_k_flat(scores: np.ndarray, k: int) -> np.ndarray:
    """Item indices of every row's top k, flattened (ties at the k-th score broken by column order).

    A row's k-th best score among a strided sample of columns is a lower bound of
    its true k-th best, so only the few columns above it need sorting; this is
    much faster than argpartition over the whole row, which degrades with ties.
    """
    b, n = scores.shape
    if n <= 4096:
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return order.ravel()
    sample = scores[:, :: max(1, n // 1024)]
    m = sample.shape[1]
    threshold = np.partition(sample, m - k, axis=1)[:, m - k]
    rows, cols = np.nonzero(scores >= threshold[:, None])
    order = np.lexsort((cols, -scores[rows, cols], rows))
    rows, cols = rows[order], cols[order]
    first = np.searchsorted(rows, np.arange(b))
    rank = np.arange(len(rows)) - first[rows]
    return cols[rank < k]


ScoreFn = Callable[[np.ndarray], np.ndarray]


def evaluate_full(
    score_fn: ScoreFn,
    users: np.ndarray,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    n_items: int,
    *,
    k: int = 10,
    batch_size: int = 512,
    sampled_negatives: int = 100,
    seed: int = 0,
    prefix: str = "",
    with_coverage: bool = True,
) -> dict[str, float]:
    """Full-ranking metrics over all items with each user's earlier items excluded.

    Args:
        score_fn: maps an array of positions into `users` to scores (B, n_items) over 0-based items.
        histories: per evaluated user, the 0-based items seen before the target (excluded from ranking).
        targets: per evaluated user, the 0-based target item.
        sampled_negatives: also report metrics against this many sampled non-history items,
            labelled ``sampled{N}_*`` (only for comparison with papers that use them; 0 disables).
        with_coverage: False skips the top-k lists (coverage is then omitted), which early
            stopping does not need and which cost as much as the ranks.
    """
    rng = np.random.default_rng(seed)
    ranks_all, sampled_all, tops = [], [], []
    for start in range(0, len(users), batch_size):
        pos = np.arange(start, min(start + batch_size, len(users)))
        scores = np.array(score_fn(pos), dtype=np.float32, copy=True)
        for row, p in enumerate(pos):
            hist = histories[p]
            if len(hist):
                scores[row, hist] = -np.inf
        batch_targets = targets[pos]
        ranks_all.append(target_ranks(scores, batch_targets))
        if with_coverage:
            tops.append(top_k_flat(scores, min(k, n_items)))
        if sampled_negatives:
            sampled_all.append(_sampled_ranks(scores, batch_targets, sampled_negatives, rng))
    ranks = np.concatenate(ranks_all) if ranks_all else np.empty(0)
    out = {
        f"{prefix}ndcg@{k}": float(ndcg_at_k(ranks, k).mean()) if len(ranks) else 0.0,
        f"{prefix}hr@{k}": float(hr_at_k(ranks, k).mean()) if len(ranks) else 0.0,
        f"{prefix}recall@{k}": float(hr_at_k(ranks, k).mean()) if len(ranks) else 0.0,
        f"{prefix}mrr": float(mrr(ranks).mean()) if len(ranks) else 0.0,
        f"{prefix}users": float(len(ranks)),
    }
    if with_coverage:
        out[f"{prefix}coverage@{k}"] = coverage(np.concatenate(tops), n_items) if tops else 0.0
    if sampled_all:
        sranks = np.concatenate(sampled_all)
        out[f"{prefix}sampled{sampled_negatives}_ndcg@{k}"] = float(ndcg_at_k(sranks, k).mean())
        out[f"{prefix}sampled{sampled_negatives}_hr@{k}"] = float(hr_at_k(sranks, k).mean())
    return out


def _sampled_ranks(
    scores: np.ndarray, targets: np.ndarray, n_neg: int, rng: np.random.Generator
) -> np.ndarray:
    """Rank of the target among `n_neg` uniformly drawn non-history items (drawn with replacement)."""
    rows = np.arange(len(targets))[:, None]
    negs = rng.integers(0, scores.shape[1], size=(len(targets), n_neg))
    for _ in range(10):
        bad = ~np.isfinite(scores[rows, negs]) | (negs == targets[:, None])
        if not bad.any():
            break
        negs[bad] = rng.integers(0, scores.shape[1], size=int(bad.sum()))
    ts = scores[rows[:, 0], targets][:, None]
    ns = scores[rows, negs]
    ranks = (ns > ts).sum(axis=1) + (ns == ts).sum(axis=1) / 2.0
    return np.where(np.isfinite(ts[:, 0]), ranks, n_neg)
