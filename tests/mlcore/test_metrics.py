import math

import numpy as np
import pytest

from mlcore.metrics import coverage, evaluate_full, hr_at_k, mrr, ndcg_at_k, recall_at_k, target_ranks


def test_target_ranks_counts_greater_and_half_the_ties():
    scores = np.array([[0.9, 0.5, 0.7, 0.1], [0.2, 0.2, 0.2, 0.9], [0.3, -np.inf, 0.1, 0.2]])
    # row 0: target 2 (0.7) has one greater (0.9) → rank 1
    # row 1: target 0 (0.2) has one greater (0.9) and two ties → 1 + 2/2 = 2
    # row 2: target 1 is excluded (-inf) → ranked last (4)
    assert target_ranks(scores, np.array([2, 0, 1])).tolist() == [1.0, 2.0, 4.0]


def test_ndcg_hr_mrr_on_hand_computed_ranks():
    ranks = np.array([0, 1, 3, 10])
    # NDCG@10: 1/log2(2)=1, 1/log2(3)=0.6309, 1/log2(5)=0.4307, rank 10 is outside → 0
    assert ndcg_at_k(ranks, 10) == pytest.approx([1.0, 1 / math.log2(3), 1 / math.log2(5), 0.0])
    assert hr_at_k(ranks, 10).tolist() == [1.0, 1.0, 1.0, 0.0]
    assert hr_at_k(ranks, 2).tolist() == [1.0, 1.0, 0.0, 0.0]
    assert mrr(ranks) == pytest.approx([1.0, 0.5, 0.25, 1 / 11])


def test_recall_and_coverage():
    # user 0: 1 of 2 relevant in top-2; user 1: 1 of 1; user 2 has none and is skipped → (0.5 + 1) / 2
    assert recall_at_k([[1, 2, 3], [4, 5], [6]], [{2, 9}, {4}, set()], 2) == pytest.approx(0.75)
    assert coverage(np.array([[0, 1], [1, 2]]), 10) == pytest.approx(0.3)


def test_evaluate_full_excludes_history():
    # Item 0 scores highest but is in the user's history, so the target (item 1) ranks first.
    scores = np.array([[0.9, 0.8, 0.1, 0.0]], dtype=np.float32)
    out = evaluate_full(
        lambda pos: scores[pos], np.array([0]), [np.array([0])], np.array([1]), 4, k=2, sampled_negatives=0
    )
    assert out["ndcg@2"] == pytest.approx(1.0)
    assert out["mrr"] == pytest.approx(1.0)
    # top-2 after exclusion is {1, 2}: 2 of 4 items
    assert out["coverage@2"] == pytest.approx(0.5)


def test_evaluate_full_without_coverage_gives_the_same_ranks():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(20, 50)).astype(np.float32)
    args = (lambda pos: scores[pos], np.arange(20), [np.array([i]) for i in range(20)], np.arange(20, 40), 50)
    full = evaluate_full(*args, sampled_negatives=0, batch_size=7)
    fast = evaluate_full(*args, sampled_negatives=0, batch_size=7, with_coverage=False)
    assert "coverage@10" in full and "coverage@10" not in fast
    assert {k: v for k, v in full.items() if k != "coverage@10"} == fast
