"""Benchmark CLI: leave-last-out, full-ranking comparison of models on one interactions file.

    python -m mlcore.bench --interactions FILE [--model transformer,cnn,popularity,itemknn]
                           [--max-minutes M] [--json OUT]

FILE is CSV (optionally .gz) with header `user_id,item_id,timestamp` and an
optional `event_type` column. Per user the last event is the test item, the
second-to-last the validation item, the rest train; users with fewer than 3
events are not evaluated. Metrics rank every item, the user's earlier items
excluded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from mlcore.convert import interactions_read
from mlcore.data import events_clean, require_enough, sequences_build, split_leave_last_out
from mlcore.pipeline import KNOWN_MODELS, ProgressEvent, TrainConfig, models_train, peak_rss_mb

COLUMNS = (
    ("model", "{:<12}"),
    ("test_ndcg@10", "{:>9.4f}"),
    ("test_hr@10", "{:>8.4f}"),
    ("test_mrr", "{:>8.4f}"),
    ("test_coverage@10", "{:>9.4f}"),
    ("train_seconds", "{:>9.1f}"),
    ("seconds_per_epoch", "{:>8.1f}"),
    ("peak_rss_mb", "{:>9.0f}"),
)
HEADER = f"{'model':<12} {'NDCG@10':>9} {'HR@10':>8} {'MRR':>8} {'coverage':>9} {'train s':>9} {'s/epoch':>8} {'peakRSS':>9}"


class _Progress:
    """tqdm bar over epochs of the model being trained; other events as lines."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def __call__(self, event: ProgressEvent) -> None:
        if event.stage == "train" and event.epoch is not None:
            if self.bar is None:
                self.bar = tqdm(total=event.epochs, desc="epochs", file=sys.stderr, leave=False)
            self.bar.update(event.epoch - self.bar.n)
            self.bar.set_postfix(loss=f"{event.loss:.4f}", val_ndcg=f"{event.metric or 0:.4f}")
            return
        if self.bar is not None and event.stage != "tune":
            self.bar.close()
            self.bar = None
        if event.stage != "tune":
            tqdm.write(f"[{event.stage}] {event.message}", file=sys.stderr)


def bench_run(args: argparse.Namespace) -> dict[str, Any]:
    """Load, split, train and evaluate; returns the figures per model."""
    started = time.monotonic()
    models = tuple(m.strip() for m in args.model.split(",") if m.strip())
    unknown = [m for m in models if m not in KNOWN_MODELS]
    if unknown:
        raise SystemExit(f"--model: unknown {', '.join(unknown)}; choose from {', '.join(KNOWN_MODELS)}")
    config = TrainConfig(
        models=models,
        primary="transformer" if "transformer" in models else models[0],
        max_minutes=args.max_minutes,
        train_minutes=args.train_minutes,
        epochs=args.epochs,
        dim=args.dim,
        max_len=args.max_len,
        dropout=args.dropout,
        lr=args.lr,
        batch_size=args.batch_size,
        negatives=args.negatives,
        popular_negatives=args.popular_negatives,
        blocks=args.blocks,
        heads=args.heads,
        patience=args.patience,
        seed=args.seed,
        exclude_seen=args.exclude_seen,
        ema_epochs=args.ema_epochs,
        # The protocol is pure leave-last-out on the file as given: no repeat or robot filtering.
        repeat_window_seconds=0.0,
        robot_events_per_minute=0.0,
    )
    deadline = started + config.max_minutes * 60.0
    events = interactions_read(args.interactions)
    df, _ = events_clean(events, repeat_window_seconds=0.0, robot_events_per_minute=0.0)
    data = sequences_build(df)
    split = split_leave_last_out(data)
    require_enough(data, split)
    tqdm.write(
        f"{args.interactions}: {data.n_users} users, {data.n_items} items, {len(data.items)} events",
        file=sys.stderr,
    )
    progress = _Progress()
    rss: dict[str, float] = {}

    def track(event: ProgressEvent) -> None:
        progress(event)
        if event.stage == "evaluated":
            rss[event.message.split(":")[0]] = peak_rss_mb()

    # The budget started before loading, so loading counts against --max-minutes too.
    _, metrics = models_train(split, config, deadline=deadline, progress=track)
    for name, m in metrics.items():
        m["peak_rss_mb"] = rss.get(name, peak_rss_mb())
    return {
        "interactions": str(args.interactions),
        "n_users": data.n_users,
        "n_items": data.n_items,
        "n_events": int(len(data.items)),
        "wall_seconds": time.monotonic() - started,
        "peak_rss_mb": peak_rss_mb(),
        "config": {k: v for k, v in vars(args).items() if k not in {"json"}},
        "models": metrics,
    }


def table_format(result: dict[str, Any]) -> str:
    lines = [HEADER]
    for name, m in result["models"].items():
        cells = []
        for key, fmt in COLUMNS:
            value = name if key == "model" else m.get(key, float("nan"))
            cells.append(fmt.format(value))
        lines.append(" ".join(cells))
    return "\n".join(lines)


def parser_build() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mlcore.bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--interactions", required=True, type=Path, help="CSV(.gz): user_id,item_id,timestamp[,event_type]"
    )
    p.add_argument(
        "--model", default="popularity,itemknn,transformer", help="comma-separated: " + ",".join(KNOWN_MODELS)
    )
    p.add_argument("--max-minutes", type=float, default=10.0, help="wall-clock budget for the whole run")
    p.add_argument(
        "--train-minutes",
        type=float,
        default=None,
        help="cap on each neural model's training time (default: none)",
    )
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--max-len", type=int, default=None, help="default: 30, or 50 from a mean history of 20")
    p.add_argument("--dropout", type=float, default=None, help="default: 0.5 for sparse data, else 0.2")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=None, help="default: 256, smaller for few users")
    p.add_argument("--negatives", type=int, default=2048, help="uniform sampled-softmax negatives")
    p.add_argument("--popular-negatives", type=int, default=512, help="extra popularity-drawn negatives")
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--heads", type=int, default=1)
    p.add_argument("--patience", type=int, default=None, help="default: 5, or 20 below 5000 validated users")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--exclude-seen",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="full softmax: earlier items of the window are no candidates, as this protocol never "
        "ranks them (default: on here; off in platform training)",
    )
    p.add_argument(
        "--ema-epochs",
        type=float,
        default=2.0,
        help="weight-averaging horizon in epochs; 0 = off (default: 2)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser_build().parse_args(argv)
    result = bench_run(args)
    print(table_format(result))
    print(f"wall {result['wall_seconds']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
