"""train_pipeline end to end on tiny planted data, and the bench/convert CLIs."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlcore.artifacts import artifact_load
from mlcore.errors import NotEnoughData
from mlcore.pipeline import TrainConfig, train_pipeline
from tests.mlcore.conftest import planted_events

ROOT = Path(__file__).resolve().parents[2]
FAST = dict(epochs=4, dim=16, max_len=12, batch_size=64, lr=5e-3, eval_users=100, max_minutes=2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    events = planted_events(n_users=120)
    events["timestamp"] = pd.to_datetime(events["timestamp"], unit="s", utc=True)
    seen = []
    out = tmp_path_factory.mktemp("art") / "v1"
    result = train_pipeline(events, config=TrainConfig(**FAST), out_dir=out, progress=seen.append)
    return events, result, seen


def test_result_metrics_embeddings_and_progress(trained):
    _, result, seen = trained
    assert result.primary == "transformer" and set(result.metrics) == {"transformer", "itemknn", "popularity"}
    for metrics in result.metrics.values():
        for key in (
            "val_ndcg@10",
            "test_ndcg@10",
            "test_hr@10",
            "test_mrr",
            "test_recall@10",
            "test_coverage@10",
        ):
            assert 0.0 <= metrics[key] <= 1.0
        assert metrics["train_seconds"] > 0
    assert (result.n_users, result.n_items) == (120, 30)
    assert result.user_embeddings.shape == (120, 16) and len(result.user_ids) == 120
    assert any(e.stage == "train" and e.epoch == 1 and e.loss is not None for e in seen)
    assert seen[-1].stage == "done"


def test_artifact_encoder_reproduces_user_embeddings(trained):
    events, result, _ = trained
    art = artifact_load(result.artifact_dir)
    assert art.algorithm == "transformer" and art.item_vectors.shape == (30, 16)
    assert "transformer" in art.metrics["models"] and art.event_types == ["buy", "view"]
    assert not (result.artifact_dir / "user_embeddings.npy").exists()  # no per-user data in artifacts
    user = result.user_ids[7]
    rows = events[events.user_id == user].sort_values("timestamp")
    vec = art.encoder.embed(rows.item_id.tolist(), rows.event_type.tolist())
    assert np.abs(vec - result.user_embeddings[7]).max() < 1e-5
    idx, scores = art.index.search(vec, 5, exclude=[art.item_index[i] for i in rows.item_id])
    assert len(idx) == 5 and np.all(np.diff(scores) <= 0)


def test_warm_start_fine_tunes_from_earlier_artifact(trained, tmp_path):
    events, result, _ = trained
    more = planted_events(n_users=150, n_items=32, seed=1)  # two new items, new users
    res2 = train_pipeline(
        more,
        config=TrainConfig(**FAST | {"epochs": 1}),
        out_dir=tmp_path / "v2",
        warm_start=result.artifact_dir,
    )
    old, new = artifact_load(result.artifact_dir), artifact_load(res2.artifact_dir)
    assert new.item_vectors.shape == (32, 16)
    # one epoch of fine-tuning moves shared vectors only a little from where they started
    shared = [i for i in old.item_ids if i in new.item_index]
    a = np.stack([old.item_vectors[old.item_index[i]] for i in shared])
    b = np.stack([new.item_vectors[new.item_index[i]] for i in shared])
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.mean() > 0.8


def test_not_enough_data(tmp_path):
    events = planted_events(n_users=5)
    with pytest.raises(NotEnoughData, match="at least 10 users"):
        train_pipeline(events, config=TrainConfig(**FAST), out_dir=tmp_path / "x")


def test_bench_and_convert_cli(tmp_path):
    seq_file = tmp_path / "seqs.txt"
    rng = np.random.default_rng(0)
    lines = []
    for u in range(80):
        start = int(rng.integers(0, 20))
        lines.append(" ".join([str(u)] + [str((start + t) % 20) for t in range(int(rng.integers(4, 9)))]))
    seq_file.write_text("\n".join(lines) + "\n")
    csv = tmp_path / "events.csv.gz"
    run = [sys.executable, "-m", "mlcore.convert", "--format", "sequences", str(seq_file), str(csv)]
    assert subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=60).returncode == 0
    out_json = tmp_path / "out.json"
    cmd = [
        sys.executable,
        "-m",
        "mlcore.bench",
        "--interactions",
        str(csv),
        "--model",
        "popularity,itemknn,transformer",
    ]
    cmd += ["--max-minutes", "1", "--epochs", "2", "--dim", "16", "--json", str(out_json)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split()[0] for line in proc.stdout.splitlines()[1:4]]
    assert rows == ["popularity", "itemknn", "transformer"]
    figures = json.loads(out_json.read_text())
    assert figures["n_users"] == 80 and figures["n_items"] == 20
    assert figures["models"]["itemknn"]["test_ndcg@10"] > figures["models"]["popularity"]["test_ndcg@10"]
    assert figures["models"]["transformer"]["peak_rss_mb"] > 0


def test_loaded_encoder_shares_the_memory_mapped_item_vectors(trained):
    _, result, _ = trained
    art = artifact_load(result.artifact_dir)
    assert art.encoder.item_table is art.item_vectors and art.encoder.item_index is art.item_index


def test_neural_defaults_follow_data_statistics():
    from mlcore.data import events_clean, sequences_build, split_leave_last_out
    from mlcore.pipeline import _neural_config

    def config_for(n_users, length):
        rows = [(f"u{u}", f"i{(u + t) % 40}", t) for u in range(n_users) for t in range(length)]
        events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
        data = sequences_build(events_clean(events)[0])
        return _neural_config(TrainConfig(), data, split_leave_last_out(data))

    few_long = config_for(120, 110)  # ml-100k-like: few users, long histories
    assert (few_long.batch_size, few_long.max_len, few_long.dropout, few_long.patience) == (32, 50, 0.2, 20)
    many_short = config_for(6000, 5)  # 6000 users: 256 is 23 batches an epoch; 5000 validated
    assert (many_short.batch_size, many_short.max_len, many_short.dropout, many_short.patience) == (
        256,
        30,
        0.5,
        5,
    )
    assert config_for(700, 5).batch_size == 64  # 700 / 64 ≥ 10 > 700 / 128
    assert many_short.popular_negatives == 512


def test_baseline_tuning_is_capped_while_a_neural_model_waits(monkeypatch):
    from mlcore.data import events_clean, sequences_build, split_leave_last_out
    from mlcore.models.baselines import ItemKNNModel, PopularityModel
    from mlcore.pipeline import BASELINE_SHARE, models_train

    given = {}

    def recording_fit(name):
        def fit(self, split, *, deadline, progress=None):
            given[name] = deadline - time.monotonic()
            self.counts = np.ones(self.n_items, dtype=np.float32)
            return {}

        return fit

    monkeypatch.setattr(PopularityModel, "fit", recording_fit("popularity"))
    monkeypatch.setattr(ItemKNNModel, "fit", recording_fit("itemknn"))
    monkeypatch.setattr(ItemKNNModel, "score", PopularityModel.score)
    data = sequences_build(events_clean(planted_events(n_users=60))[0])
    split = split_leave_last_out(data)
    budget = 10 * 60.0
    config = TrainConfig(
        models=("popularity", "itemknn", "cnn"), primary="cnn", epochs=1, dim=8, max_len=8, max_minutes=10
    )
    models_train(split, config, deadline=time.monotonic() + budget)
    assert (
        0 < given["popularity"] <= BASELINE_SHARE * budget and 0 < given["itemknn"] <= BASELINE_SHARE * budget
    )
    # without a neural model the baselines may use the whole budget (less the evaluation reserve)
    given.clear()
    config = TrainConfig(models=("popularity", "itemknn"), primary="itemknn", max_minutes=10)
    models_train(split, config, deadline=time.monotonic() + budget)
    assert given["itemknn"] > 0.5 * budget
