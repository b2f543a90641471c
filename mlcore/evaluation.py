"""Evaluate any Recommender on a split's validation or test targets (full ranking)."""

from __future__ import annotations

import numpy as np

from mlcore.data import Split
from mlcore.metrics import evaluate_full
from mlcore.models.base import Histories, Recommender, histories_of


def split_evaluate(
    model: Recommender,
    split: Split,
    *,
    which: str = "test",
    k: int = 10,
    max_users: int | None = None,
    sampled_negatives: int = 100,
    seed: int = 0,
    batch_size: int = 512,
    with_coverage: bool = True,
) -> dict[str, float]:
    """Metrics keyed ``{which}_ndcg@10`` etc.; the input is every event before the target.

    Args:
        max_users: evaluate a fixed random subset (for fast early stopping); None = all.
    """
    target_pos = split.val_pos if which == "val" else split.test_pos
    users = np.flatnonzero(target_pos >= 0)
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, size=max_users, replace=False))
    # Similar lengths side by side: sequence models pad each batch only to its longest history.
    lengths = target_pos[users] - split.data.offsets[users]
    users = users[np.argsort(lengths, kind="stable")]
    hist = histories_of(split, users, until=target_pos)
    targets = split.data.items[target_pos[users]].astype(np.int64) - 1
    excluded = [np.unique(h.astype(np.int64) - 1) for h in hist.items]

    def score_fn(pos: np.ndarray) -> np.ndarray:
        return model.score(Histories([hist.items[p] for p in pos], [hist.types[p] for p in pos]))

    return evaluate_full(
        score_fn,
        users,
        excluded,
        targets,
        model.n_items,
        k=k,
        batch_size=batch_size,
        sampled_negatives=sampled_negatives,
        seed=seed,
        prefix=f"{which}_",
        with_coverage=with_coverage,
    )
