"""The Keras models: causal masking, NumPy equivalence, a planted pattern, warm start."""

import numpy as np
import pandas as pd
import pytest

from mlcore.data import events_clean, sequences_build, split_leave_last_out
from mlcore.inference import SequenceEncoder
from mlcore.models.base import Histories
from mlcore.models.neural import NeuralConfig, NeuralRecommender, SASRecModel, pad_left

tf = pytest.importorskip("tensorflow")


def _random_model(n_items=20, n_types=2, **kw):
    cfg = NeuralConfig(dim=16, max_len=8, heads=2, blocks=2, dropout=0.0, **kw)
    model = SASRecModel(n_items, n_types, cfg)
    model((np.ones((1, 8), dtype=np.int32), np.ones((1, 8), dtype=np.int32)))
    rng = np.random.default_rng(1)
    # Large random weights so a mismatch anywhere in the forward pass shows up.
    for var in model.weights:
        var.assign(rng.normal(0, 0.3, size=var.shape).astype(np.float32))
    return model


def test_shapes_and_no_future_leakage():
    model = _random_model()
    items = np.array([[0, 0, 3, 5, 7, 2, 9, 4]], dtype=np.int32)
    types = np.array([[0, 0, 1, 2, 1, 1, 2, 1]], dtype=np.int32)
    out = model((items, types)).numpy()
    assert out.shape == (1, 8, 16)
    changed = items.copy()
    changed[0, 6] = 11  # change a later item
    out2 = model((changed, types)).numpy()
    assert np.allclose(out[0, :6], out2[0, :6], atol=1e-6)  # earlier positions (padding too) untouched
    assert not np.allclose(out[0, 6:], out2[0, 6:])
    # padding content never matters either (padding is masked out as keys)
    padded = items.copy()
    padded[0, :2] = [0, 0]
    assert np.allclose(model((padded, types)).numpy()[0, 2:], out[0, 2:], atol=1e-6)


def test_numpy_encoder_equals_keras():
    model = _random_model()
    item_ids = [f"i{i}" for i in range(20)]
    encoder = SequenceEncoder(
        model.export_weights(), model.encoder_config(["buy", "view"], "view"), item_ids, ["buy", "view"]
    )
    seqs = [["i2", "i4", "i6"], ["i0"], ["i1", "i3", "i5", "i7", "i9", "i11", "i13", "i15", "i17", "i19"]]
    types = [["view", "buy", "view"], ["buy"], ["view"] * 10]
    rows = [np.array([item_ids.index(i) + 1 for i in s]) for s in seqs]
    trows = [np.array([1 if t == "buy" else 2 for t in ts]) for ts in types]
    keras_out = model((pad_left(rows, 8), pad_left(trows, 8))).numpy()[:, -1]
    numpy_out = np.stack([encoder.embed(s, t) for s, t in zip(seqs, types, strict=True)])
    assert np.abs(keras_out - numpy_out).max() < 1e-5
    batch, found = encoder.embed_batch(seqs, types)
    assert found.all() and np.abs(batch - keras_out).max() < 1e-5
    # unknown ids are skipped; nothing known → None; default type is "view"
    assert np.allclose(
        encoder.embed(["zz", "i2", "i4", "i6"], ["buy", "view", "buy", "view"]), numpy_out[0], atol=1e-6
    )
    assert encoder.embed(["zz"]) is None
    assert np.allclose(
        encoder.embed(["i1"] + seqs[2][1:]), encoder.embed(["i1"] + seqs[2][1:], ["view"] * 10)
    )


def _planted_split():
    from tests.mlcore.conftest import planted_events

    data = sequences_build(events_clean(planted_events())[0])
    return data, split_leave_last_out(data)


@pytest.fixture(scope="module")
def planted_model():
    data, split = _planted_split()
    cfg = NeuralConfig(
        dim=32, max_len=12, dropout=0.1, batch_size=32, epochs=12, lr=1e-2, patience=12, eval_every=4
    )
    model = NeuralRecommender(data.n_items, n_types=len(data.event_types), cfg=cfg)
    model.fit(split, deadline=float("inf"))
    return data, split, model


def test_planted_pattern_is_learned(planted_model):
    data, split, model = planted_model
    hits = 0
    for a in range(30):
        row = data.item_index[f"i{a}"]
        scores = model.score(Histories([np.array([row])], [np.array([2])]))[0]
        hits += data.item_ids[int(np.argmax(scores))] == f"i{(a + 1) % 30}"
    assert hits >= 27  # B follows A for (nearly) every A


def test_warm_start_keeps_shared_item_vectors(planted_model, tmp_path):
    from mlcore.artifacts import artifact_save
    from mlcore.models.neural import warm_start_weights

    data, _, model = planted_model
    artifact_save(
        tmp_path / "v1",
        algorithm="transformer",
        config={},
        metrics={},
        item_ids=data.item_ids,
        item_vectors=model.item_vectors(),
        item_popularity=np.ones(data.n_items),
        event_types=data.event_types,
        encoder_weights=model.export_weights(),
        encoder_config=model.model.encoder_config(data.event_types, "view"),
    )
    new_items = ["new-item"] + data.item_ids[::-1]
    weights = warm_start_weights(tmp_path / "v1", new_items, data.event_types, dim=32)
    assert weights["item_emb"].shape == (len(new_items) + 1, 32)
    old = model.export_weights()["item_emb"]
    assert np.allclose(weights["item_emb"][2], old[data.n_items])  # last old item is now second
    warm = NeuralRecommender(len(new_items), n_types=len(data.event_types), cfg=model.cfg, warm_start=weights)
    assert np.allclose(warm.item_vectors()[1:], old[1:][::-1])


def test_cooccurrence_init_reads_only_training_events():
    from mlcore.models.neural import cooccurrence_embeddings

    # u0..u2 share a, b, c in training; "x" and "y" appear only as validation/test targets.
    rows = [(f"u{u}", item, t) for u in range(3) for t, item in enumerate(["a", "b", "c", "x", "y"])]
    rows += [("u3", "a", 0), ("u3", "c", 1), ("u3", "b", 2)]
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    data = sequences_build(events_clean(events)[0])
    split = split_leave_last_out(data)
    vecs = cooccurrence_embeddings(split, 4)
    assert vecs.shape == (data.n_items + 1, 4) and np.isfinite(vecs).all()
    assert not vecs[0].any()
    for item in ("x", "y"):  # held-out targets get no information
        assert not vecs[data.item_index[item]].any()
    assert all(vecs[data.item_index[i]].any() for i in ("a", "b", "c"))


def test_mixed_negatives_learn_the_planted_pattern_with_logq_correction():
    data, split = _planted_split()
    # full_softmax_max_items=0 forces the sampled path: 8 uniform + 8 popularity-drawn negatives
    cfg = NeuralConfig(
        dim=32, max_len=12, dropout=0.1, batch_size=32, epochs=12, lr=1e-2, patience=12, eval_every=4
    )
    cfg.full_softmax_max_items, cfg.negatives, cfg.popular_negatives = 0, 8, 8
    model = NeuralRecommender(data.n_items, n_types=len(data.event_types), cfg=cfg)
    model.fit(split, deadline=float("inf"))
    # log expected count of item i among the negatives: log(8 / n + 8 · p_i), p from training (+1 smoothed)
    counts = (
        np.bincount(
            data.items[
                np.concatenate(
                    [np.arange(s, e) for s, e in zip(data.offsets[:-1], split.train_end, strict=True)]
                )
            ]
            - 1,
            minlength=data.n_items,
        )
        + 1.0
    )
    expected = np.log(8 / data.n_items + 8 * counts / counts.sum())
    assert np.allclose(model._log_count.numpy()[1:], expected, atol=1e-5)
    hits = 0
    for a in range(30):
        scores = model.score(Histories([np.array([data.item_index[f"i{a}"]])], [np.array([2])]))[0]
        hits += data.item_ids[int(np.argmax(scores))] == f"i{(a + 1) % 30}"
    assert hits >= 27


def test_caser_numpy_encoder_equals_keras():
    from mlcore.models.neural import CaserModel

    cfg = NeuralConfig(dim=12, max_len=8, dropout=0.0)
    model = CaserModel(20, 2, cfg)
    model((np.ones((1, 5), dtype=np.int32), np.ones((1, 5), dtype=np.int32)))
    rng = np.random.default_rng(2)
    for var in model.weights:  # large random weights: a wrong axis or flatten order shows up
        var.assign(rng.normal(0, 0.3, size=var.shape).astype(np.float32))
    item_ids = [f"i{i}" for i in range(20)]
    config = model.encoder_config(["buy", "view"], "view")
    encoder = SequenceEncoder(model.export_weights(), config, item_ids, ["buy", "view"])
    seqs = [["i2", "i4", "i6"], ["i0"], [f"i{i}" for i in range(1, 20, 2)]]
    types = [["view", "buy", "view"], ["buy"], ["view", "buy"] * 5]
    rows = [np.array([item_ids.index(i) + 1 for i in s]) for s in seqs]
    trows = [np.array([1 if t == "buy" else 2 for t in ts]) for ts in types]
    keras_out = model((pad_left(rows, 5), pad_left(trows, 5))).numpy()[:, -1]
    numpy_out = np.stack([encoder.embed(s, t) for s, t in zip(seqs, types, strict=True)])
    assert np.abs(keras_out).max() > 0.1 and np.abs(keras_out - numpy_out).max() < 1e-5
    batch, found = encoder.embed_batch(seqs, types)
    assert found.all() and np.abs(batch - keras_out).max() < 1e-5
    assert encoder.embed(["zz"]) is None


def test_caser_artifact_serves_through_the_numpy_encoder(tmp_path):
    from mlcore.artifacts import artifact_load
    from mlcore.pipeline import TrainConfig, train_pipeline
    from tests.mlcore.conftest import planted_events

    events = planted_events(n_users=60)
    config = TrainConfig(
        models=("cnn", "popularity"), primary="cnn", epochs=2, dim=8, batch_size=32, eval_users=60
    )
    result = train_pipeline(events, config=config, out_dir=tmp_path / "v1")
    art = artifact_load(result.artifact_dir)
    assert art.encoder is not None and art.encoder.kind == "caser"
    user = result.user_ids[3]
    rows = events[events.user_id == user].sort_values("timestamp")
    vec = art.encoder.embed(rows.item_id.tolist(), rows.event_type.tolist())
    assert np.abs(vec - result.user_embeddings[3]).max() < 1e-5


def test_seen_before_matches_a_loop():
    from mlcore.models.neural import seen_before

    rng = np.random.default_rng(3)
    items = rng.integers(1, 7, size=(4, 6)).astype(np.int32)
    items[0, :3] = 0  # left padding
    items[2, :1] = 0
    mask = items > 0
    mask[1, 2] = False  # a position without a target
    got = seen_before(tf.constant(items), tf.constant(mask), 6).numpy()
    want = [
        [item in set(items[b, : t + 1]) - {0} for item in range(1, 7)]
        for b in range(4)
        for t in range(6)
        if mask[b, t]
    ]
    assert got.shape == (int(mask.sum()), 6) and np.array_equal(got, np.array(want))
    # one target after the whole window (Caser): every item of the row counts as seen
    last = seen_before(tf.constant(items), tf.constant(np.ones((4, 1), dtype=bool)), 6).numpy()
    assert np.array_equal(last, [[item in set(row) for item in range(1, 7)] for row in items])


def test_exclude_seen_drops_earlier_items_from_the_full_softmax():
    from tests.mlcore.conftest import planted_events

    data = sequences_build(events_clean(planted_events(n_users=40))[0])
    cfg = NeuralConfig(dim=8, max_len=6, dropout=0.0, batch_size=16, exclude_seen=True)
    model = NeuralRecommender(data.n_items, n_types=len(data.event_types), cfg=cfg)
    model.optimizer.learning_rate.assign(0.0)  # the step below changes no weight
    items = np.array([[0, 3, 5, 3, 7]], dtype=np.int32)
    types = np.where(items > 0, 1, 0).astype(np.int32)
    targets = np.array([[0, 5, 3, 9, 5]], dtype=np.int32)  # 3 and 5 repeat an earlier item
    weights = (targets > 0).astype(np.float32)
    loss = float(model._train_step(items, types, targets, weights))
    hidden = model.model((items, types)).numpy()[0]
    table = model.model.item_table().numpy()
    want = []
    for pos in range(1, 5):
        logits = hidden[pos] @ table[1:].T
        seen = {int(i) for i in items[0, : pos + 1]} - {0, int(targets[0, pos])}
        keep = [i for i in range(data.n_items) if i + 1 not in seen]
        target_logit = logits[targets[0, pos] - 1]
        want.append(np.log(np.exp(logits[keep] - target_logit).sum()))
    assert abs(loss - float(np.mean(want))) < 1e-4
    # without the option every item stays in the softmax: a larger loss on the same step
    plain_cfg = NeuralConfig(**{**cfg.__dict__, "exclude_seen": False})
    plain = NeuralRecommender(data.n_items, n_types=len(data.event_types), cfg=plain_cfg)
    plain.model.set_weights(model.model.get_weights())
    plain.optimizer.learning_rate.assign(0.0)
    assert float(plain._train_step(items, types, targets, weights)) > loss


def test_weight_average_follows_each_step_and_is_what_fit_keeps():
    data, split = _planted_split()
    cfg = NeuralConfig(
        dim=16, max_len=12, dropout=0.1, batch_size=32, epochs=3, lr=1e-2, eval_every=3, ema_epochs=2.0
    )
    model = NeuralRecommender(data.n_items, n_types=len(data.event_types), cfg=cfg)
    model._ema_decay.assign(0.5)
    start = [v.numpy() for v in model.model.trainable_variables]
    for e, v in zip(model._ema, start, strict=True):
        e.assign(v)
    items = np.array([[0, 1, 2, 3], [4, 5, 6, 7]], dtype=np.int32)
    types = (items > 0).astype(np.int32)
    targets = np.array([[0, 2, 3, 4], [5, 6, 7, 8]], dtype=np.int32)
    expected = start
    for n in (1, 2):
        model._train_step(items, types, targets, (targets > 0).astype(np.float32))
        d = min(0.5, (1 + n) / (10 + n))  # warm-up, as tf.train.ExponentialMovingAverage
        now = [v.numpy() for v in model.model.trainable_variables]
        expected = [d * e + (1 - d) * w for e, w in zip(expected, now, strict=True)]
    for e, want in zip(model._ema, expected, strict=True):
        assert np.allclose(e.numpy(), want, atol=1e-6)

    # fit validates (only epoch 3 here) and keeps the averaged weights
    fresh = NeuralRecommender(data.n_items, n_types=len(data.event_types), cfg=cfg)
    stats = fresh.fit(split, deadline=float("inf"))
    assert stats["epochs_run"] == 3 and stats["best_epoch"] == 3
    for var, avg in zip(fresh.model.trainable_variables, fresh._ema, strict=True):
        assert np.array_equal(var.numpy(), avg.numpy())
    assert fresh.optimizer.iterations.numpy() > 0


@pytest.mark.parametrize(
    "bad",
    [{"ema_epochs": -1.0}, {"label_smoothing": 1.0}, {"label_smoothing": -0.1}, {"weight_decay": -1e-4}],
)
def test_neural_config_rejects_invalid_values(bad):
    with pytest.raises(ValueError):
        NeuralConfig(**bad)


_MIRRORED = """
import sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import mlcore.models.neural as neural

# What strategy_choose returns on a machine with 2 GPUs, here over 2 logical CPU devices.
neural.strategy_choose = lambda: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
from mlcore.data import events_clean, sequences_build, split_leave_last_out
from mlcore.models.base import Histories
from tests.mlcore.conftest import planted_events

data = sequences_build(events_clean(planted_events())[0])
cfg = neural.NeuralConfig(dim=32, max_len=12, dropout=0.1, batch_size=32, epochs=12, lr=1e-2, patience=12,
                          eval_every=4, ema_epochs=2)
model = neural.NeuralRecommender(data.n_items, n_types=len(data.event_types), cfg=cfg)
assert model.strategy.num_replicas_in_sync == 2, model.strategy
model.fit(split_leave_last_out(data), deadline=float("inf"))
hits = sum(
    data.item_ids[int(np.argmax(model.score(Histories([np.array([data.item_index[f"i{a}"]])], [np.array([2])]))[0]))]
    == f"i{(a + 1) % 30}"
    for a in range(30)
)
print("hits", hits)
"""


def test_training_under_a_mirrored_strategy():
    """The several-GPU path (MirroredStrategy) trains and learns: run over 2 logical CPU devices.

    A subprocess, because logical devices must be configured before TensorFlow starts.
    """
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", _MIRRORED], cwd=root, capture_output=True, text=True, timeout=600,
        env={**__import__("os").environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.split("hits")[-1]) >= 27
