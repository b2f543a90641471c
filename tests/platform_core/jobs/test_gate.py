"""The quality gate, worked out by hand."""

from __future__ import annotations

from platform_core.jobs.services import gate_decide

METRICS = {"transformer": {"val_ndcg@10": 0.30}, "popularity": {"val_ndcg@10": 0.20}}


def test_first_version_passes_when_it_beats_popularity():
    passed, reason = gate_decide(
        metrics=METRICS, primary="transformer", metric="val_ndcg@10", margin=0.0, active_value=None
    )
    assert passed
    assert "transformer val_ndcg@10=0.3000" in reason and "popularity 0.2000" in reason


def test_margin_is_absolute():
    # 0.30 > 0.20 + 0.05 passes; 0.30 > 0.20 + 0.10 does not (0.30 is not strictly greater).
    assert gate_decide(
        metrics=METRICS, primary="transformer", metric="val_ndcg@10", margin=0.05, active_value=None
    )[0]
    passed, reason = gate_decide(
        metrics=METRICS, primary="transformer", metric="val_ndcg@10", margin=0.10, active_value=None
    )
    assert not passed
    assert "does not beat popularity 0.2000 + margin 0.1" in reason


def test_a_worse_model_than_the_active_one_fails():
    passed, reason = gate_decide(
        metrics=METRICS, primary="transformer", metric="val_ndcg@10", margin=0.0, active_value=0.31
    )
    assert not passed
    assert "does not beat the active version's 0.3100" in reason


def test_an_equal_model_fails_a_better_one_passes():
    assert not gate_decide(
        metrics=METRICS, primary="transformer", metric="val_ndcg@10", margin=0.0, active_value=0.30
    )[0]
    assert gate_decide(
        metrics=METRICS, primary="transformer", metric="val_ndcg@10", margin=0.0, active_value=0.29
    )[0]


def test_a_missing_metric_fails_with_reason():
    passed, reason = gate_decide(
        metrics=METRICS, primary="transformer", metric="val_recall@10", margin=0.0, active_value=None
    )
    assert not passed
    assert "reported no 'val_recall@10'" in reason
