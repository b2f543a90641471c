import numpy as np

from mlcore.data import events_clean, sequences_build, split_leave_last_out
from mlcore.evaluation import split_evaluate
from mlcore.models.base import Histories
from mlcore.models.baselines import EaseModel, ItemKNNModel, PopularityModel


def test_itemknn_score_is_recency_weighted_sum_of_neighbours():
    model = ItemKNNModel(5)
    # neighbours (0-based): 0→{1: 0.5, 2: 0.2}, 1→{0: 0.5}, 2→{}, 3→{4: 0.9}, 4→{3: 0.9}
    model.nbr_ptr = np.array([0, 2, 3, 3, 4, 5])
    model.nbr_cols = np.array([1, 2, 0, 4, 3])
    model.nbr_sims = np.array([0.5, 0.2, 0.5, 0.9, 0.9])
    model.decay = 0.5
    model._pop_tiebreak = np.zeros(5)
    # user 0 saw rows 1 then 4 (items 0 then 3): weights 0.5 (older) and 1 (newest)
    # → item 1: 0.5·0.5 = 0.25, item 2: 0.5·0.2 = 0.1, item 4: 1·0.9 = 0.9
    scores = model.score(Histories([np.array([1, 4]), np.array([], dtype=int), np.array([3])], [None] * 3))
    assert np.allclose(scores, [[0, 0.25, 0.1, 0, 0.9], [0] * 5, [0] * 5])


def test_baselines_rank_the_planted_successor(planted):
    data = sequences_build(events_clean(planted)[0])
    split = split_leave_last_out(data)
    results = {}
    for cls in (PopularityModel, ItemKNNModel, EaseModel):
        model = cls(data.n_items)
        model.fit(split, deadline=float("inf"))
        results[cls.name] = split_evaluate(model, split, which="test", sampled_negatives=0)["test_ndcg@10"]
    # the successor of the newest item co-occurs most with it, so kNN with recency weighting finds it
    assert results["itemknn"] > 0.5 > results["popularity"]
    assert results["ease"] > results["popularity"]


def test_itemknn_tuning_is_a_coordinate_search_that_honours_the_deadline(planted, monkeypatch):
    import mlcore.models.baselines as baselines

    data = sequences_build(events_clean(planted)[0])
    split = split_leave_last_out(data)
    seen = []
    real = baselines._tune_ndcg

    def spy(model, split):
        seen.append((len(model.nbr_cols), model.decay))
        return real(model, split)

    monkeypatch.setattr(baselines, "_tune_ndcg", spy)
    model = ItemKNNModel(data.n_items, neighbours=(1, 2, 5), decays=(1.0, 0.5))
    stats = model.fit(split, deadline=float("inf"))
    # 2 decays at the middle K, then the 2 other Ks at the best decay: 4 trials, not 6
    assert len(seen) == 4 and stats["neighbours"] in (1, 2, 5) and stats["decay"] in (1.0, 0.5)
    seen.clear()
    stats = ItemKNNModel(data.n_items).fit(split, deadline=0.0)  # already past: no trial, still usable
    assert seen == [] and stats["neighbours"] == 100
    assert split_evaluate(model, split, which="test", sampled_negatives=0)["test_ndcg@10"] > 0.5
