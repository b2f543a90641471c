"""Neural sequence models in TensorFlow/Keras 3: SASRec-style transformer and Caser CNN.

Both map a user's recent sequence to a vector in the item-embedding space
(score = user · item), and train with a many-negatives loss: full softmax for
small catalogs, otherwise sampled softmax against negatives shared by the batch
(uniform, so the logQ correction is a constant and drops out), with accidental
hits masked. Every position of a training sequence is a target (transformer).
With full softmax the items earlier in the window are no candidates for a target
(`exclude_seen`), as the evaluation never ranks a user's earlier items. The weights
are averaged over the last epochs (EMA, `ema_epochs`); validation, early stopping and
the exported model use the average.
Item embeddings start from the eigenvectors of the training split's normalised
item–item co-occurrence matrix (`cooccurrence_embeddings`), which makes the
untrained transformer already an item-to-item recommender and cuts the epochs
needed on CPU several-fold.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

from mlcore.data import Split  # noqa: E402
from mlcore.models.base import Histories, ProgressFn, Recommender  # noqa: E402

LN_EPS = 1e-6

# Small graphs: one inter-op thread avoids scheduling overhead on a few shared cores.
# RuntimeError: the caller already initialised TensorFlow; its settings stay.
with contextlib.suppress(RuntimeError):
    tf.config.threading.set_inter_op_parallelism_threads(
        int(os.environ.get("MLCORE_TF_INTER_OP_THREADS", "1"))
    )


@dataclass
class NeuralConfig:
    """Hyper-parameters of the neural models (the pipeline fills them from TrainConfig)."""

    dim: int = 64
    max_len: int = 30
    blocks: int = 2
    heads: int = 1
    dropout: float = 0.3
    lr: float = 3e-3
    batch_size: int = 256
    epochs: int = 200
    negatives: int = 2048
    #: Extra sampled-softmax negatives drawn by training popularity (logQ-corrected); 0 = uniform only.
    popular_negatives: int = 0
    full_softmax_max_items: int = 4096
    patience: int = 5
    eval_every: int = 1
    eval_users: int = 5_000
    seed: int = 0
    caser_window: int = 5
    caser_h_filters: int = 16
    caser_v_filters: int = 4
    weight_decay: float = 0.0
    #: "cooc": item embeddings start from the training split's co-occurrence eigenvectors
    #: (scaled to RMS `item_init_scale`); "random": N(0, 0.02). Ignored on warm start.
    item_init: str = "cooc"
    item_init_scale: float = 0.5
    #: Full softmax only: items earlier in the training window are not candidates for the next
    #: event (the target itself stays one), as the evaluation excludes a user's earlier items.
    exclude_seen: bool = False
    #: Label smoothing of the full-softmax target (0 = none).
    label_smoothing: float = 0.0
    #: Exponential moving average of the weights, horizon in epochs (0 = off): validation,
    #: early stopping and the final model use the averaged weights.
    ema_epochs: float = 0.0

    def __post_init__(self) -> None:
        if not self.ema_epochs >= 0:
            raise ValueError(f"ema_epochs must be >= 0 (0 = no weight averaging), got {self.ema_epochs}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")


def cooccurrence_embeddings(split: Split, dim: int, *, window: int = 3, seed: int = 0) -> np.ndarray:
    """Item vectors (n_items + 1, dim) from a truncated eigendecomposition of the training split's
    normalised item–item co-occurrence matrix (row 0 = padding, zeros); rows have unit RMS.

    Pairs of training events of one user at most `window` apart count 1/distance, both
    ways; the matrix is D^-1/2 C D^-1/2. Only training events are read (validation and test
    targets never are). Randomised subspace iteration on TensorFlow sparse matmuls.
    """
    data = split.data
    n = data.n_items + 1
    pos = np.arange(len(data.items))
    user = np.repeat(np.arange(data.n_users), np.diff(data.offsets))
    in_train = pos < split.train_end[user]
    rows, cols, vals = [], [], []
    for k in range(1, window + 1):
        a = pos[:-k]
        ok = in_train[a + k] & (user[a] == user[a + k])
        a = a[ok]
        rows += [data.items[a], data.items[a + k]]
        cols += [data.items[a + k], data.items[a]]
        vals += [np.full(len(a), 1.0 / k, dtype=np.float32)] * 2
    out = np.zeros((n, dim), dtype=np.float32)
    if not rows or sum(len(r) for r in rows) == 0:
        return out
    r = np.concatenate(rows).astype(np.int64)
    c = np.concatenate(cols).astype(np.int64)
    v = np.concatenate(vals).astype(np.float32)
    key, inv = np.unique(r * n + c, return_inverse=True)
    v = np.bincount(inv, weights=v).astype(np.float32)
    r, c = key // n, key % n
    deg = np.bincount(r, weights=v, minlength=n).astype(np.float32)
    inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0).astype(np.float32)
    v = v * inv_sqrt[r] * inv_sqrt[c]
    m = tf.sparse.SparseTensor(np.stack([r, c], axis=1), v, (n, n))
    k = min(dim + 16, n - 1)
    y = tf.constant(np.random.default_rng(seed).normal(size=(n, k)).astype(np.float32))
    for _ in range(4):
        q, _ = tf.linalg.qr(tf.sparse.sparse_dense_matmul(m, y))
        y = q
    small = tf.matmul(y, tf.sparse.sparse_dense_matmul(m, y), transpose_a=True)
    evals, evecs = np.linalg.eigh(0.5 * (small.numpy() + small.numpy().T))
    top = np.argsort(-evals)[: min(dim, k)]
    vecs = (y.numpy() @ evecs[:, top]) * np.sqrt(np.maximum(evals[top], 0.0))[None]
    out[:, : vecs.shape[1]] = vecs
    out[0] = 0.0
    rms = float(np.sqrt(np.mean(out[1:][deg[1:] > 0] ** 2))) if (deg[1:] > 0).any() else 0.0
    return out / rms if rms > 0 else out


def seen_before(items: tf.Tensor, mask: tf.Tensor, n_items: int) -> tf.Tensor:
    """(M, n_items) bool: for each position where `mask` (B, T) is true, in row-major order (as
    `tf.boolean_mask` gathers them), the items at that or an earlier position of `items` (B, L).

    Target positions are aligned to the end of the input (T = L for the transformer; Caser's
    single target, T = 1, follows its whole window). Each item's first position per row
    (padding row 0 dropped, absent = L) is compared with the position: (B, n_items) integers
    instead of a (B, L, n_items) cumulative one-hot.
    """
    b_n, length = tf.shape(items)[0], tf.shape(items)[1]
    shift = length - tf.shape(mask)[1]
    grid = tf.stack([tf.repeat(tf.range(b_n), length), tf.reshape(items, [-1])], axis=1)
    first = tf.tensor_scatter_nd_min(
        tf.fill([b_n, n_items + 1], length), grid, tf.tile(tf.range(length), [b_n])
    )[:, 1:]
    where = tf.cast(tf.where(mask), tf.int32)  # (M, 2): row, position
    return tf.gather(first, where[:, 0]) <= where[:, 1:2] + shift


def strategy_choose() -> tf.distribute.Strategy:
    """Mirrored across GPUs when there are several, else the default (one device)."""
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


# --------------------------------------------------------------------------- models
class SASRecModel(keras.Model):
    """Causal self-attention over left-padded sequences; positions are aligned to the sequence end."""

    def __init__(self, n_items: int, n_types: int, cfg: NeuralConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cfg = cfg
        d = cfg.dim
        init = keras.initializers.TruncatedNormal(stddev=0.02, seed=cfg.seed)
        self.item_emb = layers.Embedding(n_items + 1, d, embeddings_initializer=init, name="item_emb")
        self.pos_emb = layers.Embedding(cfg.max_len, d, embeddings_initializer=init, name="pos_emb")
        self.type_emb = layers.Embedding(n_types + 1, d, embeddings_initializer="zeros", name="type_emb")
        self.emb_scale = math.sqrt(d)
        self.drop = layers.Dropout(cfg.dropout, seed=cfg.seed)
        self.block_layers = []
        for i in range(cfg.blocks):
            blk = {
                "ln1": layers.LayerNormalization(epsilon=LN_EPS, name=f"b{i}_ln1"),
                "q": layers.Dense(d, name=f"b{i}_q"),
                "k": layers.Dense(d, name=f"b{i}_k"),
                "v": layers.Dense(d, name=f"b{i}_v"),
                "o": layers.Dense(d, name=f"b{i}_o"),
                "ln2": layers.LayerNormalization(epsilon=LN_EPS, name=f"b{i}_ln2"),
                "f1": layers.Dense(d, activation="relu", name=f"b{i}_f1"),
                "f2": layers.Dense(d, name=f"b{i}_f2"),
                "drop_att": layers.Dropout(cfg.dropout, seed=cfg.seed + 1 + i),
                "drop_ffn": layers.Dropout(cfg.dropout, seed=cfg.seed + 101 + i),
            }
            self.block_layers.append(blk)
        self.lnf = layers.LayerNormalization(epsilon=LN_EPS, name="lnf")

    def call(self, inputs: tuple[tf.Tensor, tf.Tensor], training: bool = False) -> tf.Tensor:
        items, types = inputs
        length = tf.shape(items)[1]
        positions = tf.range(self.cfg.max_len - length, self.cfg.max_len)
        x = self.item_emb(items) * self.emb_scale + self.pos_emb(positions)[None] + self.type_emb(types)
        x = self.drop(x, training=training)
        valid = items > 0
        causal = tf.linalg.band_part(tf.ones((length, length), dtype=tf.bool), -1, 0)
        # Each position may also attend to itself, so padding rows stay finite and never see the future.
        allowed = tf.logical_or(
            tf.logical_and(causal[None], valid[:, None, :]), tf.eye(length, dtype=tf.bool)[None]
        )
        bias = tf.where(allowed, 0.0, -1e9)[:, None]  # (B, 1, Lq, Lk)
        h_count, d = self.cfg.heads, self.cfg.dim
        dh = d // h_count
        b = tf.shape(items)[0]

        def heads(t: tf.Tensor) -> tf.Tensor:
            return tf.transpose(tf.reshape(t, (b, length, h_count, dh)), (0, 2, 1, 3))

        for blk in self.block_layers:
            h = blk["ln1"](x)
            q, k, v = heads(blk["q"](h)), heads(blk["k"](h)), heads(blk["v"](h))
            att = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) / math.sqrt(dh) + bias, axis=-1)
            out = tf.reshape(tf.transpose(tf.matmul(att, v), (0, 2, 1, 3)), (b, length, d))
            x = x + blk["drop_att"](blk["o"](out), training=training)
            h = blk["ln2"](x)
            x = x + blk["drop_ffn"](blk["f2"](blk["f1"](h)), training=training)
        return self.lnf(x)

    def item_table(self) -> tf.Variable:
        return self.item_emb.embeddings

    # Export/import of the flat weight dict read by mlcore.inference.SequenceEncoder.
    def _named_variables(self) -> dict[str, tf.Variable]:
        named = {
            "item_emb": self.item_emb.embeddings,
            "pos_emb": self.pos_emb.embeddings,
            "type_emb": self.type_emb.embeddings,
            "lnf_gamma": self.lnf.gamma,
            "lnf_beta": self.lnf.beta,
        }
        for i, blk in enumerate(self.block_layers):
            p = f"block{i}_"
            named |= {p + "ln1_gamma": blk["ln1"].gamma, p + "ln1_beta": blk["ln1"].beta}
            named |= {p + "ln2_gamma": blk["ln2"].gamma, p + "ln2_beta": blk["ln2"].beta}
            for short, key in (("q", "q"), ("k", "k"), ("v", "v"), ("o", "o"), ("1", "f1"), ("2", "f2")):
                named[p + f"w{short}"] = blk[key].kernel
                named[p + f"b{short}"] = blk[key].bias
        return named

    def export_weights(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v.numpy(), dtype=np.float32) for k, v in self._named_variables().items()}

    def encoder_config(self, event_types: list[str], default_event_type: str | None) -> dict[str, Any]:
        return {
            "kind": "sasrec",
            "dim": self.cfg.dim,
            "heads": self.cfg.heads,
            "blocks": self.cfg.blocks,
            "max_len": self.cfg.max_len,
            "emb_scale": self.emb_scale,
            "ln_eps": LN_EPS,
            "default_event_type": default_event_type,
            "event_types": event_types,
        }


class CaserModel(keras.Model):
    """Caser (Tang & Wang 2018): horizontal and vertical convolutions over the last L item embeddings."""

    def __init__(self, n_items: int, n_types: int, cfg: NeuralConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cfg = cfg
        d, window = cfg.dim, cfg.caser_window
        init = keras.initializers.TruncatedNormal(stddev=0.02, seed=cfg.seed)
        self.item_emb = layers.Embedding(n_items + 1, d, embeddings_initializer=init, name="item_emb")
        self.type_emb = layers.Embedding(n_types + 1, d, embeddings_initializer="zeros", name="type_emb")
        self.h_convs = [
            layers.Conv2D(cfg.caser_h_filters, (h, d), activation="relu", name=f"conv_h{h}")
            for h in range(1, window + 1)
        ]
        self.v_conv = layers.Conv2D(cfg.caser_v_filters, (window, 1), name="conv_v")
        self.drop = layers.Dropout(cfg.dropout, seed=cfg.seed)
        self.fc = layers.Dense(d, activation="relu", name="fc")
        self.out = layers.Dense(d, name="out")

    def call(self, inputs: tuple[tf.Tensor, tf.Tensor], training: bool = False) -> tf.Tensor:
        items, types = inputs
        items, types = items[:, -self.cfg.caser_window :], types[:, -self.cfg.caser_window :]
        x = self.item_emb(items) + self.type_emb(types)
        x = x * tf.cast(items > 0, x.dtype)[..., None]
        img = x[..., None]  # (B, L, d, 1)
        pooled = [tf.reduce_max(conv(img)[:, :, 0, :], axis=1) for conv in self.h_convs]
        vert = tf.reshape(self.v_conv(img), (tf.shape(items)[0], -1))
        z = self.fc(self.drop(tf.concat(pooled + [vert], axis=1), training=training))
        # Returned as a length-1 sequence so both models share the loss and scoring code.
        return self.out(z)[:, None, :]

    def item_table(self) -> tf.Variable:
        return self.item_emb.embeddings

    def export_weights(self) -> dict[str, np.ndarray]:
        """Flat weights for `mlcore.inference.SequenceEncoder` (Conv2D kernels as Keras stores them)."""
        named = {"item_emb": self.item_emb.embeddings, "type_emb": self.type_emb.embeddings}
        for h, conv in enumerate(self.h_convs, start=1):
            named |= {f"conv_h{h}_w": conv.kernel, f"conv_h{h}_b": conv.bias}
        named |= {"conv_v_w": self.v_conv.kernel, "conv_v_b": self.v_conv.bias}
        named |= {
            "fc_w": self.fc.kernel,
            "fc_b": self.fc.bias,
            "out_w": self.out.kernel,
            "out_b": self.out.bias,
        }
        return {k: np.asarray(v.numpy(), dtype=np.float32) for k, v in named.items()}

    def encoder_config(self, event_types: list[str], default_event_type: str | None) -> dict[str, Any]:
        return {
            "kind": "caser",
            "dim": self.cfg.dim,
            "max_len": self.cfg.caser_window,
            "default_event_type": default_event_type,
            "event_types": event_types,
        }


# --------------------------------------------------------------------------- data
def pad_left(seqs: list[np.ndarray], length: int) -> np.ndarray:
    """Stack sequences right-aligned into (n, length), keeping each one's last `length` entries."""
    out = np.zeros((len(seqs), length), dtype=np.int32)
    for row, s in enumerate(seqs):
        s = s[-length:]
        if len(s):
            out[row, length - len(s) :] = s
    return out


def _bucket(n: int, max_len: int) -> int:
    for b in (8, 16, 32, 64, 128, 256):
        if n <= b:
            return min(b, max_len)
    return max_len


class NeuralRecommender(Recommender):
    """Trains a SASRec or Caser Keras model with early stopping on validation NDCG@10."""

    def __init__(
        self,
        n_items: int,
        *,
        kind: str = "transformer",
        n_types: int = 1,
        cfg: NeuralConfig | None = None,
        warm_start: dict[str, np.ndarray] | None = None,
    ) -> None:
        super().__init__(n_items)
        self.name = kind
        self.cfg = cfg or NeuralConfig()
        self.n_types = n_types
        keras.utils.set_random_seed(self.cfg.seed)
        self.strategy = strategy_choose()
        with self.strategy.scope():
            model_cls = SASRecModel if kind == "transformer" else CaserModel
            self.model = model_cls(n_items, n_types, self.cfg)
            dummy = np.zeros((1, self.cfg.max_len), dtype=np.int32)
            dummy[0, -1] = 1
            self.model((dummy, dummy))
            self.warm_started = bool(warm_start)
            if warm_start:
                self._load_named(warm_start)
            if self.cfg.weight_decay > 0:
                self.optimizer = keras.optimizers.AdamW(
                    learning_rate=self.cfg.lr, weight_decay=self.cfg.weight_decay
                )
            else:
                self.optimizer = keras.optimizers.Adam(learning_rate=self.cfg.lr)
            # Its slot variables now, inside the strategy's scope (the first step would create them
            # outside it, which a MirroredStrategy refuses).
            self.optimizer.build(self.model.trainable_variables)
            self._ema = [
                tf.Variable(v.numpy(), trainable=False, name=f"ema_{i}")
                for i, v in enumerate(self.model.trainable_variables)
            ]
            self._ema_decay = tf.Variable(0.0, trainable=False, dtype=tf.float32, name="ema_decay")
        self.full_softmax = n_items <= self.cfg.full_softmax_max_items
        self._train_step = tf.function(
            self._step,
            input_signature=[
                tf.TensorSpec((None, None), tf.int32),
                tf.TensorSpec((None, None), tf.int32),
                tf.TensorSpec((None, None), tf.int32),
                tf.TensorSpec((None, None), tf.float32),
            ],
        )
        self._embed_fn = tf.function(
            lambda items, types: self.model((items, types), training=False)[:, -1],
            input_signature=[tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None, None), tf.int32)],
        )
        self.history: list[dict[str, float]] = []

    def _load_named(self, weights: dict[str, np.ndarray]) -> None:
        named = self.model._named_variables() if isinstance(self.model, SASRecModel) else {}
        for key, var in named.items():
            if key in weights and tuple(weights[key].shape) == tuple(var.shape):
                var.assign(weights[key])

    # -- training ----------------------------------------------------------
    def items_init(self, split: Split) -> None:
        """Start item embeddings from co-occurrence in the training split (cfg.item_init == "cooc")."""
        if self.cfg.item_init != "cooc" or self.warm_started:
            return
        vecs = cooccurrence_embeddings(split, self.cfg.dim, seed=self.cfg.seed) * self.cfg.item_init_scale
        self.model.item_table().assign(vecs)

    def _negatives_prepare(self, split: Split) -> None:
        """Sampling log-probabilities of the popularity negatives and every item's log expected count."""
        data, cfg = split.data, self.cfg
        pos = np.arange(len(data.items))
        user = np.repeat(np.arange(data.n_users), np.diff(data.offsets))
        counts = np.bincount(data.items[pos < split.train_end[user]] - 1, minlength=self.n_items) + 1.0
        p = counts / counts.sum()
        expected = cfg.negatives / self.n_items + cfg.popular_negatives * p
        self._log_pop = tf.constant(np.log(p), tf.float32)
        self._log_count = tf.constant(np.concatenate([[0.0], np.log(expected)]), tf.float32)

    def _step(self, items: tf.Tensor, types: tf.Tensor, targets: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            hidden = self.model((items, types), training=True)
            mask = targets > 0
            h = tf.boolean_mask(hidden, mask)
            t = tf.boolean_mask(targets, mask)
            w = tf.boolean_mask(weights, mask)
            table = self.model.item_table()
            if self.full_softmax:
                logits = tf.matmul(h, table[1:], transpose_b=True)
                target_hot = tf.one_hot(t - 1, self.n_items)
                allowed = None
                if self.cfg.exclude_seen:
                    seen = tf.logical_and(seen_before(items, mask, self.n_items), target_hot < 0.5)
                    allowed = tf.logical_not(seen)
                    logits = tf.where(seen, -1e9, logits)
                eps = self.cfg.label_smoothing
                if eps > 0:
                    spread = tf.ones_like(logits) if allowed is None else tf.cast(allowed, tf.float32)
                    spread /= tf.reduce_sum(spread, axis=-1, keepdims=True)
                    labels = (1.0 - eps) * target_hot + eps * spread
                    ce = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
                else:
                    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=t - 1, logits=logits)
            else:
                negs = tf.random.uniform((self.cfg.negatives,), 1, self.n_items + 1, dtype=tf.int32)
                pos_logit = tf.reduce_sum(h * tf.gather(table, t), axis=-1, keepdims=True)
                if self.cfg.popular_negatives:
                    # Mixed negatives: popularity-drawn items are the hard ones under full ranking;
                    # logQ correction (minus the log expected count) keeps the softmax unbiased.
                    drawn = tf.random.categorical(self._log_pop[None], self.cfg.popular_negatives)[0]
                    negs = tf.concat([negs, tf.cast(drawn, tf.int32) + 1], axis=0)
                    pos_logit -= tf.gather(self._log_count, t)[:, None]
                neg_logits = tf.matmul(h, tf.gather(table, negs), transpose_b=True)
                if self.cfg.popular_negatives:
                    neg_logits -= tf.gather(self._log_count, negs)[None]
                neg_logits = tf.where(negs[None, :] == t[:, None], -1e9, neg_logits)
                logits = tf.concat([pos_logit, neg_logits], axis=1)
                ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.zeros_like(t), logits=logits)
            loss = tf.reduce_sum(ce * w) / tf.maximum(tf.reduce_sum(w), 1e-6)
        variables = self.model.trainable_variables
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables, strict=True))
        if self.cfg.ema_epochs > 0:
            # Warm-up as tf.train.ExponentialMovingAverage(num_updates): early weights fade fast.
            n = tf.cast(self.optimizer.iterations, tf.float32)
            d = tf.minimum(self._ema_decay, (1.0 + n) / (10.0 + n))
            for e, v in zip(self._ema, variables, strict=True):
                e.assign(d * e + (1.0 - d) * v)
        return loss

    def _epoch_examples(self, split: Split, rng: np.random.Generator) -> list[tuple[np.ndarray, ...]]:
        """(input items, input types, targets, target weights) per user (transformer) or window (Caser)."""
        data, cfg = split.data, self.cfg
        out = []
        for u in range(data.n_users):
            s, e = int(data.offsets[u]), int(split.train_end[u])
            if e - s < 2:
                continue
            if self.name == "transformer":
                # The latest window, then earlier ones back to the first event (their ends shifted
                # at random each epoch), so a long history is learned whole in every epoch.
                ends = [e]
                end = e - int(rng.integers(1, cfg.max_len + 1)) if e - s > cfg.max_len + 1 else s
                while end - s >= 2:
                    ends.append(end)
                    end -= cfg.max_len
                for end in ends:
                    start = max(s, end - cfg.max_len - 1)
                    out.append(
                        (
                            data.items[start : end - 1],
                            data.types[start : end - 1],
                            data.items[start + 1 : end],
                            data.weights[start + 1 : end],
                        )
                    )
            else:
                for t in range(s + 1, e):
                    w0 = max(s, t - cfg.caser_window)
                    out.append(
                        (data.items[w0:t], data.types[w0:t], data.items[t : t + 1], data.weights[t : t + 1])
                    )
        return out

    def _batches(self, examples: list[tuple[np.ndarray, ...]], rng: np.random.Generator):
        """Batches of similar length (less padding), in random order."""
        cfg = self.cfg
        lengths = np.array([len(x[0]) for x in examples])
        buckets = np.array([_bucket(n, cfg.max_len) for n in lengths])
        order = np.lexsort((rng.random(len(examples)), buckets))
        chunks = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
        rng.shuffle(chunks)
        for chunk in chunks:
            width = int(buckets[chunk].max()) if self.name == "transformer" else cfg.caser_window
            tw = width if self.name == "transformer" else 1
            yield (
                pad_left([examples[i][0] for i in chunk], width),
                pad_left([examples[i][1] for i in chunk], width),
                pad_left([examples[i][2] for i in chunk], tw),
                pad_left([examples[i][3].astype(np.float32) for i in chunk], tw).astype(np.float32),
            )

    def fit(self, split: Split, *, deadline: float, progress: ProgressFn | None = None) -> dict[str, Any]:
        from mlcore.evaluation import split_evaluate

        cfg = self.cfg
        rng = np.random.default_rng(cfg.seed)
        self.items_init(split)
        self._negatives_prepare(split)
        use_ema = cfg.ema_epochs > 0
        if use_ema:
            for e, v in zip(self._ema, self.model.trainable_variables, strict=True):
                e.assign(v.numpy())
        best_metric, best_weights, best_epoch, bad = -1.0, None, 0, 0
        epoch_seconds: list[float] = []
        started = time.monotonic()
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.monotonic()
            examples = self._epoch_examples(split, rng)
            if not examples:
                break
            if use_ema:
                steps = math.ceil(len(examples) / cfg.batch_size)
                self._ema_decay.assign(1.0 - 1.0 / max(cfg.ema_epochs * steps, 1.0))
            losses = []
            # Batches are built in plain Python (a small share of a step): a tf.data generator
            # dataset per epoch kept every epoch's examples alive, so memory grew with the epochs.
            for items, types, targets, weights in self._batches(examples, rng):
                losses.append(float(self._train_step(items, types, targets, weights)))
                if time.monotonic() > deadline:
                    break
            loss = float(np.mean(losses)) if losses else float("nan")
            metric = None
            if epoch % cfg.eval_every == 0 or time.monotonic() > deadline:
                # With weight averaging, the averaged weights are validated (and kept when best).
                current = self._ema_swap() if use_ema else None
                metric = split_evaluate(
                    self,
                    split,
                    which="val",
                    max_users=cfg.eval_users,
                    sampled_negatives=0,
                    with_coverage=False,
                )["val_ndcg@10"]
                if metric > best_metric:
                    best_metric, best_epoch, bad = metric, epoch, 0
                    best_weights = [v.numpy() for v in self.model.weights]
                else:
                    bad += 1
                if current is not None:
                    for var, value in zip(self.model.trainable_variables, current, strict=True):
                        var.assign(value)
            epoch_seconds.append(time.monotonic() - t0)
            self.history.append({"epoch": epoch, "loss": loss, "val_ndcg@10": metric or float("nan")})
            remaining = deadline - time.monotonic()
            if progress:
                eta = min(remaining, float(np.mean(epoch_seconds)) * (cfg.epochs - epoch))
                progress(
                    stage="train",
                    epoch=epoch,
                    epochs=cfg.epochs,
                    loss=loss,
                    metric=metric,
                    eta_seconds=max(eta, 0.0),
                    message=f"{self.name} epoch {epoch} loss {loss:.4f} val_ndcg@10 {metric if metric is not None else float('nan'):.4f}",
                )
            if bad >= cfg.patience:
                break
            # Stop when another epoch would not fit in the wall-clock budget.
            if remaining < float(np.mean(epoch_seconds[-3:])):
                break
        if best_weights is not None:
            for var, value in zip(self.model.weights, best_weights, strict=True):
                var.assign(value)
        return {
            "epochs_run": len(self.history),
            "best_epoch": best_epoch,
            "best_val_ndcg@10": best_metric,
            "seconds_per_epoch": float(np.mean(epoch_seconds)) if epoch_seconds else 0.0,
            "fit_seconds": time.monotonic() - started,
        }

    def _ema_swap(self) -> list[np.ndarray]:
        """Load the averaged weights into the model; returns the training weights they replace."""
        current = [v.numpy() for v in self.model.trainable_variables]
        for var, avg in zip(self.model.trainable_variables, self._ema, strict=True):
            var.assign(avg.numpy())
        return current

    # -- inference ---------------------------------------------------------
    def embed_users(self, batch: Histories) -> np.ndarray:
        width = self.cfg.max_len if self.name == "transformer" else self.cfg.caser_window
        longest = max((len(s) for s in batch.items), default=1)
        if self.name == "transformer":
            width = _bucket(max(longest, 1), self.cfg.max_len)
        items = pad_left(list(batch.items), width)
        types = pad_left(list(batch.types), width)
        out = []
        for start in range(0, len(items), 1024):
            out.append(self._embed_fn(items[start : start + 1024], types[start : start + 1024]).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.cfg.dim), dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        return np.asarray(self.model.item_table().numpy()[1:], dtype=np.float32)

    def score(self, batch: Histories) -> np.ndarray:
        return self.embed_users(batch) @ self.item_vectors().T

    def export_weights(self) -> dict[str, np.ndarray] | None:
        return self.model.export_weights()

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.cfg)


def warm_start_weights(
    artifact_dir: str | Path, item_ids: list[str], event_types: list[str], *, dim: int, seed: int = 0
) -> dict[str, np.ndarray] | None:
    """Weights of an earlier artifact's encoder re-indexed to the new item and type vocabularies.

    Items present in both keep their vectors; new items get fresh small random
    rows; weights whose shapes changed are left to the new initialisation.
    """
    import json

    path = Path(artifact_dir)
    manifest = json.loads((path / "manifest.json").read_text())
    if not manifest.get("encoder") or int(manifest["dim"]) != dim:
        return None
    old_items = json.loads((path / "item_ids.json").read_text())
    old_types = list(manifest.get("event_types") or [])
    with np.load(path / "encoder.npz") as npz:
        weights = {k: npz[k] for k in npz.files}
    rng = np.random.default_rng(seed)
    old_item_row = {item: i + 1 for i, item in enumerate(old_items)}
    item_emb = rng.normal(0, 0.02, size=(len(item_ids) + 1, dim)).astype(np.float32)
    item_emb[0] = weights["item_emb"][0]
    for i, item in enumerate(item_ids):
        row = old_item_row.get(item)
        if row is not None:
            item_emb[i + 1] = weights["item_emb"][row]
    weights["item_emb"] = item_emb
    old_type_row = {t: i + 1 for i, t in enumerate(old_types)}
    type_emb = np.zeros((len(event_types) + 1, dim), dtype=np.float32)
    for i, t in enumerate(event_types):
        row = old_type_row.get(t)
        if row is not None:
            type_emb[i + 1] = weights["type_emb"][row]
    weights["type_emb"] = type_emb
    return weights
