"""Training pipeline: clean ▸ sequences ▸ split ▸ train models ▸ evaluate ▸ artifact + user embeddings.

This is the entry point `platform_core.jobs` calls (inside a Celery task body).
It imports TensorFlow lazily, only when a neural model is trained.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlcore.artifacts import artifact_save
from mlcore.data import (
    CleanReport,
    SequenceData,
    Split,
    events_clean,
    require_enough,
    sequences_build,
    split_leave_last_out,
)
from mlcore.errors import NotEnoughData
from mlcore.models.base import Histories, Recommender

NEURAL = ("transformer", "cnn")
#: Most of the run's budget one baseline may spend tuning when a neural model is still to train.
BASELINE_SHARE = 0.1
KNOWN_MODELS = ("transformer", "cnn", "popularity", "itemknn", "ease")


@dataclass
class TrainConfig:
    """What to train and how; defaults suit a few hundred users up to ~300k events.

    `dropout=None` picks 0.5 for sparse data (mean history under 20 events) and 0.2 otherwise;
    `max_len=None` picks 30 for sparse data and 50 from a mean history of 20 events;
    `batch_size=None` picks 256, halved (down to 32) while an epoch would have fewer than 10 batches;
    `patience=None` picks 5 epochs, or 20 when fewer than 5 000 users are validated (noisier figures).
    `exclude_seen` (full softmax only) and `ema_epochs` (weight averaging) are described in
    `mlcore.models.neural.NeuralConfig`.
    """

    models: tuple[str, ...] = ("transformer", "itemknn", "popularity")
    primary: str = "transformer"
    max_minutes: float = 30.0
    #: Cap on each neural model's own training time (None: whatever the run's budget leaves).
    train_minutes: float | None = None
    epochs: int = 200
    dim: int = 64
    max_len: int | None = None
    blocks: int = 2
    heads: int = 1
    dropout: float | None = None
    lr: float = 3e-3
    batch_size: int | None = None
    negatives: int = 2048
    #: Extra negatives drawn by training popularity, logQ-corrected (sampled softmax only).
    popular_negatives: int = 512
    full_softmax_max_items: int = 4096
    patience: int | None = None
    eval_users: int = 5_000
    seed: int = 0
    min_events: int = 3
    repeat_window_seconds: float = 2.0
    robot_events_per_minute: float = 60.0
    robot_min_events: int = 500
    kcore: int = 0
    index_kind: str = "auto"
    #: Transformer item-embedding start: "cooc" (co-occurrence eigenvectors of the training split) or "random".
    item_init: str = "cooc"
    #: Full softmax: a position's earlier window items are no candidates for its target, as in the
    #: benchmark protocol, which never ranks a user's earlier items (`python -m mlcore.bench` turns it
    #: on). Off here: serving ranks every item and leaves consumed items to the domain's rules, and a
    #: model that never learned to rank seen items low scores them arbitrarily high.
    exclude_seen: bool = False
    #: Weight averaging (EMA) horizon in epochs; validation, early stopping and the artifact use the average.
    ema_epochs: float = 2.0


@dataclass
class ProgressEvent:
    """One progress report for the job runner."""

    stage: str
    epoch: int | None = None
    epochs: int | None = None
    loss: float | None = None
    metric: float | None = None
    eta_seconds: float | None = None
    message: str = ""


@dataclass
class TrainResult:
    """What a training run produced. `metrics[model]` holds ``val_*`` and ``test_*`` keys."""

    primary: str
    metrics: dict[str, dict[str, float]]
    artifact_dir: Path
    user_ids: list[str]
    user_embeddings: np.ndarray
    n_users: int
    n_items: int
    n_events: int
    clean_report: dict[str, int] = field(default_factory=dict)
    peak_rss_mb: float = 0.0


ProgressCallback = Callable[[ProgressEvent], None]


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _neural_config(config: TrainConfig, data: SequenceData, split: Split) -> Any:
    from mlcore.models.neural import NeuralConfig

    mean_len = float(np.mean(data.lengths())) if data.n_users else 0.0
    batch_size = config.batch_size or 256
    if config.batch_size is None:
        # Few users (long histories): smaller batches, so an epoch still takes several steps.
        while batch_size > 32 and data.n_users / batch_size < 10:
            batch_size //= 2
    validated = min(int((split.val_pos >= 0).sum()), config.eval_users)
    return NeuralConfig(
        dim=config.dim,
        # 50 also for very long histories: measured on ml-100k (mean 106 events), 200 reached no
        # better validation NDCG in the same time and took twice as long per epoch.
        max_len=config.max_len or (50 if mean_len >= 20 else 30),
        blocks=config.blocks,
        heads=config.heads,
        dropout=config.dropout if config.dropout is not None else (0.5 if mean_len < 20 else 0.2),
        lr=config.lr,
        batch_size=batch_size,
        epochs=config.epochs,
        negatives=config.negatives,
        popular_negatives=config.popular_negatives,
        full_softmax_max_items=config.full_softmax_max_items,
        patience=config.patience or (5 if validated >= 5000 else 20),
        eval_users=config.eval_users,
        seed=config.seed,
        item_init=config.item_init,
        exclude_seen=config.exclude_seen,
        ema_epochs=config.ema_epochs,
    )


def model_build(
    name: str,
    data: SequenceData,
    split: Split,
    config: TrainConfig,
    *,
    warm_weights: dict[str, np.ndarray] | None = None,
) -> Recommender:
    """Instantiate one model by name."""
    if name in NEURAL:
        from mlcore.models.neural import NeuralRecommender

        return NeuralRecommender(
            data.n_items,
            kind=name,
            n_types=len(data.event_types),
            cfg=_neural_config(config, data, split),
            warm_start=warm_weights if name == "transformer" else None,
        )
    from mlcore.models.baselines import EaseModel, ItemKNNModel, PopularityModel

    classes = {"popularity": PopularityModel, "itemknn": ItemKNNModel, "ease": EaseModel}
    if name not in classes:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(KNOWN_MODELS)}")
    return classes[name](data.n_items)


def _emit(progress: ProgressCallback | None) -> Callable[..., None]:
    def emit(**kwargs: Any) -> None:
        if progress is not None:
            progress(ProgressEvent(**kwargs))

    return emit


def models_train(
    split: Split,
    config: TrainConfig,
    *,
    deadline: float,
    progress: ProgressCallback | None = None,
    warm_start: str | Path | None = None,
) -> tuple[dict[str, Recommender], dict[str, dict[str, float]]]:
    """Train and evaluate every model in `config.models`; baselines first, neural models share the rest."""
    from mlcore.evaluation import split_evaluate

    data = split.data
    emit = _emit(progress)
    order = [m for m in config.models if m not in NEURAL] + [m for m in config.models if m in NEURAL]
    if config.primary in order and config.primary in NEURAL:
        order.remove(config.primary)
        order.append(config.primary)  # the primary model is trained last, with whatever time is left
    fitted: dict[str, Recommender] = {}
    metrics: dict[str, dict[str, float]] = {}
    for i, name in enumerate(order):
        if name == "ease" and data.n_items > 5000:
            emit(
                stage="skip",
                message=f"ease skipped: {data.n_items} items is too many for a dense item-item matrix",
            )
            continue
        emit(stage="train", message=f"training {name}")
        warm = None
        if warm_start is not None and name == "transformer":
            from mlcore.models.neural import warm_start_weights

            warm = warm_start_weights(
                warm_start, data.item_ids, data.event_types, dim=config.dim, seed=config.seed
            )
        t0 = time.monotonic()
        model = model_build(name, data, split, config, warm_weights=warm)
        # Neural models left to train share the remaining time, keeping a reserve for evaluation.
        neural_left = sum(1 for m in order[i:] if m in NEURAL)
        remaining = deadline - time.monotonic()
        reserve = min(60.0, 0.1 * max(remaining, 0.0))
        share = (remaining - reserve) * (0.67 if name != config.primary and neural_left > 1 else 1.0)
        if name in NEURAL and config.train_minutes is not None:
            share = min(share, config.train_minutes * 60.0)
        if name not in NEURAL:
            # A baseline's tuning stops early rather than eat the neural model's time.
            share = max(remaining - reserve, 1.0)
            if neural_left:
                share = min(share, BASELINE_SHARE * config.max_minutes * 60.0)
        model_deadline = time.monotonic() + share
        stats = model.fit(split, deadline=model_deadline, progress=emit)
        train_seconds = time.monotonic() - t0
        emit(stage="evaluate", message=f"evaluating {name}")
        # Validation on the same fixed sample early stopping uses; the test set is always complete.
        m = split_evaluate(model, split, which="val", max_users=config.eval_users, seed=config.seed)
        m |= split_evaluate(model, split, which="test", seed=config.seed)
        m["train_seconds"] = train_seconds
        m.update({k: float(v) for k, v in stats.items() if isinstance(v, int | float)})
        metrics[name] = m
        fitted[name] = model
        emit(
            stage="evaluated",
            metric=m["test_ndcg@10"],
            message=f"{name}: val_ndcg@10 {m['val_ndcg@10']:.4f} test_ndcg@10 {m['test_ndcg@10']:.4f}",
        )
    return fitted, metrics


def _full_histories(data: SequenceData) -> Histories:
    items = [data.items[data.offsets[u] : data.offsets[u + 1]] for u in range(data.n_users)]
    types = [data.types[data.offsets[u] : data.offsets[u + 1]] for u in range(data.n_users)]
    return Histories(items, types)


def train_pipeline(
    events: pd.DataFrame,
    *,
    config: TrainConfig | None = None,
    out_dir: str | Path,
    progress: ProgressCallback | None = None,
    warm_start: str | Path | None = None,
) -> TrainResult:
    """Clean, split, train the configured models, evaluate, write the primary model's artifact.

    Raises:
        NotEnoughData: fewer than 10 users with 3+ events, or fewer than 5 items.
    """
    config = config or TrainConfig()
    if config.primary not in config.models:
        raise ValueError(f"primary model {config.primary!r} must be one of models {config.models}")
    deadline = time.monotonic() + config.max_minutes * 60.0
    emit = _emit(progress)
    emit(stage="prepare", message=f"cleaning {len(events)} events")
    if len(events) == 0:
        raise NotEnoughData("need events from at least 10 users with 3 or more events each; got none")
    df, report = events_clean(
        events,
        repeat_window_seconds=config.repeat_window_seconds,
        robot_events_per_minute=config.robot_events_per_minute,
        robot_min_events=config.robot_min_events,
        kcore=config.kcore,
    )
    data = sequences_build(df)
    split = split_leave_last_out(data, min_events=config.min_events)
    require_enough(data, split)
    emit(stage="prepare", message=f"{data.n_users} users, {data.n_items} items, {len(data.items)} events")
    fitted, metrics = models_train(split, config, deadline=deadline, progress=progress, warm_start=warm_start)
    primary = fitted[config.primary]

    emit(stage="export", message="writing artifact and user embeddings")
    full = _full_histories(data)
    popularity = np.bincount(data.items - 1, minlength=data.n_items).astype(np.float32)
    item_vectors = primary.item_vectors()
    user_vectors = primary.embed_users(full) if item_vectors is not None else None
    if item_vectors is None:
        # Non-embedding primaries serve by popularity through the same index interface.
        item_vectors = (popularity / max(float(popularity.max()), 1.0))[:, None]
        user_vectors = np.ones((data.n_users, 1), dtype=np.float32)
    encoder_weights = getattr(primary, "export_weights", lambda: None)()
    encoder_config = None
    if encoder_weights is not None:
        default_type = (
            data.event_types[int(np.bincount(data.types).argmax()) - 1] if data.event_types else None
        )
        encoder_config = primary.model.encoder_config(data.event_types, default_type)
    run_config = asdict(config) | {"neural": getattr(primary, "config_dict", dict)()}
    artifact_dir = artifact_save(
        out_dir,
        algorithm=config.primary,
        config=run_config,
        metrics={"primary": config.primary, "models": metrics, "clean": asdict(report)},
        item_ids=data.item_ids,
        item_vectors=item_vectors,
        item_popularity=popularity,
        event_types=data.event_types,
        encoder_weights=encoder_weights,
        encoder_config=encoder_config,
        index_kind=config.index_kind,
        seed=config.seed,
    )
    emit(stage="done", message=f"artifact written to {artifact_dir}")
    return TrainResult(
        primary=config.primary,
        metrics=metrics,
        artifact_dir=Path(artifact_dir),
        user_ids=data.user_ids,
        user_embeddings=np.asarray(user_vectors, dtype=np.float32),
        n_users=data.n_users,
        n_items=data.n_items,
        n_events=int(len(data.items)),
        clean_report=asdict(report),
        peak_rss_mb=peak_rss_mb(),
    )


__all__ = [
    "CleanReport",
    "NotEnoughData",
    "ProgressEvent",
    "TrainConfig",
    "TrainResult",
    "models_train",
    "train_pipeline",
]
