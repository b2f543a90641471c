"""TF-free forward pass of the neural encoders (NumPy only): SASRec-style transformer and Caser.

The weights are exported by `mlcore.models.neural` (`SASRecModel.export_weights`,
`CaserModel.export_weights`) into a flat dict of arrays (saved as ``encoder.npz``);
this module computes exactly what the Keras model computes in inference mode, so
web processes can embed a fresh sequence without TensorFlow. The encoder config's
``kind`` ("sasrec", the default, or "caser") picks the forward pass.

Transformer layout (pre-LN, causal, left-padded, positions aligned to the end):
``x = E[item] * scale + P[max_len - L + t] + T[type]``; per block
``x += MHA(LN1(x))``, ``x += W2·relu(W1·LN2(x))``; then ``LN_f``; the user
vector is the last position. Caser: see `SequenceEncoder._caser_rows`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

_NEG = np.float32(-1e9)


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


class SequenceEncoder:
    """Embeds a user's recent item sequence (oldest first) into the item-vector space."""

    def __init__(
        self,
        weights: Mapping[str, np.ndarray],
        config: Mapping[str, Any],
        item_ids: Sequence[str],
        event_types: Sequence[str] = (),
        *,
        item_table: np.ndarray | None = None,
        item_index: Mapping[str, int] | None = None,
    ) -> None:
        """Args:
        item_table: the artifact's (memory-mapped) item vectors when they equal ``item_emb[1:]``,
            so the encoder holds no second copy of the catalog.
        item_index: external id → 0-based row, shared with the artifact instead of a second dict.
        """
        self.config = dict(config)
        self.w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items() if k != "item_emb"}
        self.kind = str(self.config.get("kind", "sasrec"))
        if self.kind not in ("sasrec", "caser"):
            raise ValueError(f"unknown encoder kind {self.kind!r}; expected 'sasrec' or 'caser'")
        self.dim = int(self.config["dim"])
        self.heads = int(self.config.get("heads", 1))
        self.blocks = int(self.config.get("blocks", 0))
        self.max_len = int(self.config["max_len"])
        self.scale = np.float32(self.config.get("emb_scale", 1.0))
        self.eps = float(self.config.get("ln_eps", 1e-6))
        item_emb = np.asarray(weights["item_emb"], dtype=np.float32)
        expected = len(item_ids) + 1
        if item_emb.shape != (expected, self.dim):
            raise ValueError(f"item_emb has shape {item_emb.shape}, expected ({expected}, {self.dim})")
        # Model row r (1-based, 0 = padding) is item_table[r - 1].
        self.pad_row = item_emb[0].copy()
        self.item_table = item_table if item_table is not None else item_emb[1:]
        self.item_index = (
            item_index if item_index is not None else {item: i for i, item in enumerate(item_ids)}
        )
        self.type_index = {t: i + 1 for i, t in enumerate(event_types)}
        default = self.config.get("default_event_type")
        self.default_type = self.type_index.get(default, 0) if default is not None else 0

    @classmethod
    def from_files(
        cls,
        npz_path: str | Path,
        config: Mapping[str, Any],
        item_ids: Sequence[str],
        event_types: Sequence[str],
        *,
        item_vectors: np.ndarray | None = None,
        item_index: Mapping[str, int] | None = None,
    ) -> SequenceEncoder:
        """Load the weights from an ``encoder.npz``; share `item_vectors` when they equal its item rows."""
        with np.load(npz_path) as data:
            weights = {k: data[k] for k in data.files}
        table = None
        if item_vectors is not None and np.array_equal(weights["item_emb"][1:], item_vectors):
            table = item_vectors
        return cls(weights, config, item_ids, event_types, item_table=table, item_index=item_index)

    # -- id handling -------------------------------------------------------
    def _encode(
        self, item_ids: Sequence[str], event_types: Sequence[str] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if event_types is not None and len(event_types) != len(item_ids):
            raise ValueError("event_types must have one entry per item id")
        items, types = [], []
        for pos, item in enumerate(item_ids):
            row = self.item_index.get(item)
            if row is None:
                continue  # unknown items carry no learned vector
            items.append(row + 1)
            types.append(
                self.type_index.get(event_types[pos], 0) if event_types is not None else self.default_type
            )
        items_arr = np.asarray(items[-self.max_len :], dtype=np.int64)
        types_arr = np.asarray(types[-self.max_len :], dtype=np.int64)
        return items_arr, types_arr

    # -- forward pass ------------------------------------------------------
    def _item_rows(self, items: np.ndarray) -> np.ndarray:
        return np.where((items > 0)[..., None], self.item_table[np.maximum(items - 1, 0)], self.pad_row)

    def forward_rows(self, items: np.ndarray, types: np.ndarray) -> np.ndarray:
        """Hidden states (B, L, d) for left-padded model rows (0 = padding), as Keras computes them.

        Caser has one output per sequence, returned as (B, 1, d).
        """
        if self.kind == "caser":
            return self._caser_rows(items, types)[:, None]
        w = self.w
        b, length = items.shape
        x = (
            self._item_rows(items) * self.scale
            + w["pos_emb"][self.max_len - length :][None]
            + w["type_emb"][types]
        )
        valid = items > 0
        causal = np.tril(np.ones((length, length), dtype=bool))
        allowed = (causal[None] & valid[:, None, :]) | np.eye(length, dtype=bool)[None]  # (B, Lq, Lk)
        bias = np.where(allowed, np.float32(0), _NEG)[:, None]  # (B, 1, Lq, Lk)
        dh = self.dim // self.heads
        for i in range(self.blocks):
            p = f"block{i}_"
            h = _layer_norm(x, w[p + "ln1_gamma"], w[p + "ln1_beta"], self.eps)
            q = (h @ w[p + "wq"] + w[p + "bq"]).reshape(b, length, self.heads, dh).transpose(0, 2, 1, 3)
            k = (h @ w[p + "wk"] + w[p + "bk"]).reshape(b, length, self.heads, dh).transpose(0, 2, 3, 1)
            v = (h @ w[p + "wv"] + w[p + "bv"]).reshape(b, length, self.heads, dh).transpose(0, 2, 1, 3)
            att = _softmax((q @ k) / np.float32(np.sqrt(dh)) + bias)
            out = (att @ v).transpose(0, 2, 1, 3).reshape(b, length, self.dim)
            x = x + out @ w[p + "wo"] + w[p + "bo"]
            h = _layer_norm(x, w[p + "ln2_gamma"], w[p + "ln2_beta"], self.eps)
            x = x + np.maximum(h @ w[p + "w1"] + w[p + "b1"], 0) @ w[p + "w2"] + w[p + "b2"]
        return _layer_norm(x, w["lnf_gamma"], w["lnf_beta"], self.eps)

    def _caser_rows(self, items: np.ndarray, types: np.ndarray) -> np.ndarray:
        """Caser: horizontal convolutions of heights 1..L (ReLU, max over positions) and a vertical
        one over the last L = max_len events (left-padded with zero rows), then two dense layers."""
        w, window = self.w, self.max_len
        if items.shape[1] < window:
            pad = window - items.shape[1]
            items, types = np.pad(items, ((0, 0), (pad, 0))), np.pad(types, ((0, 0), (pad, 0)))
        items, types = items[:, -window:], types[:, -window:]
        x = (self._item_rows(items) + w["type_emb"][types]) * (items > 0)[..., None]  # (B, L, d)
        pooled = []
        for h in range(1, window + 1):
            kernel = w[f"conv_h{h}_w"][:, :, 0, :]  # (h, d, F)
            # windows (B, L - h + 1, h, d) against the (h, d) kernel of each filter
            win = np.stack([x[:, i : i + window - h + 1] for i in range(h)], axis=2)
            conv = np.einsum("bphd,hdf->bpf", win, kernel) + w[f"conv_h{h}_b"]
            pooled.append(np.maximum(conv, 0).max(axis=1))
        vert = np.einsum("bld,lf->bdf", x, w["conv_v_w"][:, 0, 0, :]) + w["conv_v_b"]
        z = np.concatenate(pooled + [vert.reshape(len(x), -1)], axis=1)
        z = np.maximum(z @ w["fc_w"] + w["fc_b"], 0)
        return (z @ w["out_w"] + w["out_b"]).astype(np.float32)

    def embed(self, item_ids: Sequence[str], event_types: Sequence[str] | None = None) -> np.ndarray | None:
        """The user vector (d,) for a recent sequence, oldest first; None if no item is known."""
        items, types = self._encode(item_ids, event_types)
        if len(items) == 0:
            return None
        return self.forward_rows(items[None], types[None])[0, -1].astype(np.float32)

    def embed_batch(
        self,
        sequences: Sequence[Sequence[str]],
        event_types: Sequence[Sequence[str] | None] | None = None,
        *,
        batch_size: int = 256,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Embed many users: returns (vectors (n, d) float32, found (n,) bool); rows with no known item are 0."""
        n = len(sequences)
        out = np.zeros((n, self.dim), dtype=np.float32)
        found = np.zeros(n, dtype=bool)
        encoded = [
            self._encode(seq, event_types[i] if event_types is not None else None)
            for i, seq in enumerate(sequences)
        ]
        # Group by length so a batch has no padding and equals the one-by-one result exactly.
        order = sorted((i for i in range(n) if len(encoded[i][0])), key=lambda i: len(encoded[i][0]))
        start = 0
        while start < len(order):
            length = len(encoded[order[start]][0])
            stop = start
            while stop < len(order) and stop - start < batch_size and len(encoded[order[stop]][0]) == length:
                stop += 1
            rows = order[start:stop]
            items = np.stack([encoded[i][0] for i in rows])
            types = np.stack([encoded[i][1] for i in rows])
            out[rows] = self.forward_rows(items, types)[:, -1]
            found[rows] = True
            start = stop
        return out, found
