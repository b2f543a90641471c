"""Data preparation: cleaning, denoising, id maps, per-user sequences and splits (pandas + NumPy)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mlcore.errors import NotEnoughData

REQUIRED_COLUMNS = ("user_id", "item_id", "timestamp")
DEFAULT_EVENT_TYPE = "event"


@dataclass
class CleanReport:
    """How many rows each cleaning step removed."""

    rows_in: int = 0
    invalid: int = 0
    duplicates: int = 0
    repeats: int = 0
    robot_users: int = 0
    robot_rows: int = 0
    kcore_rows: int = 0
    rows_out: int = 0


def timestamps_to_seconds(ts: pd.Series) -> pd.Series:
    """Seconds since the epoch as float64, from tz-aware/naive datetimes or numbers (NaN where invalid)."""
    if pd.api.types.is_datetime64_any_dtype(ts):
        if getattr(ts.dt, "tz", None) is None:
            ts = ts.dt.tz_localize("UTC")
        valid = ts.notna()
        out = pd.Series(np.nan, index=ts.index, dtype="float64")
        epoch = pd.Timestamp(0, tz="UTC")
        out[valid] = (ts[valid] - epoch) / pd.Timedelta(seconds=1)
        return out
    return pd.to_numeric(ts, errors="coerce").astype("float64")


def events_clean(
    events: pd.DataFrame,
    *,
    repeat_window_seconds: float = 0.0,
    robot_events_per_minute: float = 0.0,
    robot_min_events: int = 200,
    kcore: int = 0,
) -> tuple[pd.DataFrame, CleanReport]:
    """Clean an event frame; returns (frame sorted by user then time, report).

    Drops invalid rows (missing ids, bad timestamps, non-finite or negative
    weights), exact duplicates, the same (user, item, type) repeated within
    `repeat_window_seconds`, users whose event rate exceeds
    `robot_events_per_minute` over at least `robot_min_events` events (robots),
    and applies k-core filtering when `kcore` > 1. The output has columns
    user_id, item_id, timestamp (float seconds), event_type, weight.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(f"events lack required columns: {', '.join(missing)}")
    report = CleanReport(rows_in=len(events))
    df = pd.DataFrame(
        {
            "user_id": events["user_id"],
            "item_id": events["item_id"],
            "timestamp": timestamps_to_seconds(events["timestamp"]),
            "event_type": events.get("event_type", DEFAULT_EVENT_TYPE),
            "weight": pd.to_numeric(events["weight"], errors="coerce") if "weight" in events else 1.0,
        }
    )
    df["_order"] = np.arange(len(df))
    ok = df["user_id"].notna() & df["item_id"].notna() & np.isfinite(df["timestamp"])
    ok &= np.isfinite(df["weight"]) & (df["weight"] >= 0)
    df = df[ok].copy()
    report.invalid = report.rows_in - len(df)
    df["event_type"] = df["event_type"].fillna(DEFAULT_EVENT_TYPE)
    for col in ("user_id", "item_id", "event_type"):
        df[col] = df[col].astype(str)
    df = df[(df["user_id"] != "") & (df["item_id"] != "")]
    report.invalid = report.rows_in - len(df)

    before = len(df)
    df = df.drop_duplicates(subset=["user_id", "item_id", "timestamp", "event_type"])
    report.duplicates = before - len(df)
    # Stable sort keeps file order for equal timestamps (position-only data sets).
    df = df.sort_values(["user_id", "timestamp", "_order"], kind="stable")

    if repeat_window_seconds > 0:
        before = len(df)
        key = ["user_id", "item_id", "event_type"]
        gap = df.groupby(key, sort=False)["timestamp"].diff()
        df = df[~(gap <= repeat_window_seconds)]
        report.repeats = before - len(df)

    if robot_events_per_minute > 0:
        stats = df.groupby("user_id")["timestamp"].agg(["count", "min", "max"])
        minutes = ((stats["max"] - stats["min"]) / 60.0).clip(lower=1.0)
        robots = stats.index[
            (stats["count"] >= robot_min_events) & (stats["count"] / minutes > robot_events_per_minute)
        ]
        report.robot_users = len(robots)
        before = len(df)
        df = df[~df["user_id"].isin(robots)]
        report.robot_rows = before - len(df)

    if kcore > 1:
        before = len(df)
        df = kcore_filter(df, kcore)
        report.kcore_rows = before - len(df)
    report.rows_out = len(df)
    return df.drop(columns="_order").reset_index(drop=True), report


def kcore_filter(df: pd.DataFrame, k: int) -> pd.DataFrame:
    """Repeatedly drop users and items with fewer than k events."""
    while True:
        users = df["user_id"].map(df["user_id"].value_counts())
        items = df["item_id"].map(df["item_id"].value_counts())
        keep = (users >= k) & (items >= k)
        if keep.all():
            return df
        df = df[keep]


def numeric_normalize(
    df: pd.DataFrame, columns: list[str]
) -> tuple[pd.DataFrame, dict[str, tuple[float, float]]]:
    """Z-score numeric attribute columns (missing → 0 after scaling); returns (frame, {col: (mean, std)})."""
    out = df.copy()
    stats: dict[str, tuple[float, float]] = {}
    for col in columns:
        values = pd.to_numeric(out[col], errors="coerce")
        mean, std = float(values.mean()), float(values.std(ddof=0) or 1.0)
        stats[col] = (mean, std)
        out[col] = ((values - mean) / std).fillna(0.0)
    return out, stats


@dataclass
class SequenceData:
    """Per-user chronological sequences in CSR form; items and types are 1-based model rows (0 = padding)."""

    user_ids: list[str]
    item_ids: list[str]
    event_types: list[str]
    offsets: np.ndarray  # (n_users + 1,)
    items: np.ndarray  # (n_events,) int32
    types: np.ndarray  # (n_events,) int32
    weights: np.ndarray  # (n_events,) float32
    timestamps: np.ndarray  # (n_events,) float64
    item_index: dict[str, int] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def user_slice(self, u: int) -> slice:
        return slice(int(self.offsets[u]), int(self.offsets[u + 1]))

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def sequences_build(df: pd.DataFrame, *, item_ids: list[str] | None = None) -> SequenceData:
    """Group a cleaned frame (sorted by user, time) into sequences; `item_ids` fixes the item order."""
    if item_ids is None:
        # Most frequent first: stable ids for equal data, and popular rows are contiguous.
        counts = df["item_id"].value_counts(sort=False)
        item_ids = sorted(counts.index, key=lambda i: (-counts[i], i))
    item_index = {item: i + 1 for i, item in enumerate(item_ids)}
    types = sorted(df["event_type"].unique())
    type_index = {t: i + 1 for i, t in enumerate(types)}
    items = df["item_id"].map(item_index)
    df = df[items.notna()]
    items = items[items.notna()]
    user_codes, user_ids = pd.factorize(df["user_id"], sort=False)
    # df is sorted by user so each user's rows are contiguous.
    counts = np.bincount(user_codes, minlength=len(user_ids))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return SequenceData(
        user_ids=[str(u) for u in user_ids],
        item_ids=list(item_ids),
        event_types=types,
        offsets=offsets,
        items=items.to_numpy(dtype=np.int32),
        types=df["event_type"].map(type_index).to_numpy(dtype=np.int32),
        weights=df["weight"].to_numpy(dtype=np.float32),
        timestamps=df["timestamp"].to_numpy(dtype=np.float64),
        item_index=item_index,
    )


@dataclass
class Split:
    """Training sequences plus validation and test targets (leave-last-out or time-based).

    `train_end[u]` is the exclusive end of user u's training events in the CSR
    arrays; `val_pos[u]`/`test_pos[u]` are the positions of the validation and
    test events (-1 when the user has none). A model is validated on the input
    ``[start, val_pos)`` and tested on ``[start, test_pos)``.
    """

    data: SequenceData
    train_end: np.ndarray
    val_pos: np.ndarray
    test_pos: np.ndarray

    def val_users(self) -> np.ndarray:
        return np.flatnonzero(self.val_pos >= 0)

    def test_users(self) -> np.ndarray:
        return np.flatnonzero(self.test_pos >= 0)


def split_leave_last_out(data: SequenceData, *, min_events: int = 3) -> Split:
    """Last event → test, second-to-last → validation, the rest → training.

    Users with fewer than `min_events` events are not evaluated; their events
    all go to training (they leak nothing, since they have no targets).
    """
    starts, ends = data.offsets[:-1], data.offsets[1:]
    evaluated = (ends - starts) >= min_events
    train_end = np.where(evaluated, ends - 2, ends)
    val_pos = np.where(evaluated, ends - 2, -1)
    test_pos = np.where(evaluated, ends - 1, -1)
    return Split(data, train_end, val_pos, test_pos)


def split_time(data: SequenceData, *, val_cutoff: float, test_cutoff: float) -> Split:
    """Time-based split: events before `val_cutoff` train; the user's first event in
    [val_cutoff, test_cutoff) is the validation target and the first at or after
    `test_cutoff` the test target (inputs are everything before the target)."""
    n = data.n_users
    train_end = np.empty(n, dtype=np.int64)
    val_pos = np.full(n, -1, dtype=np.int64)
    test_pos = np.full(n, -1, dtype=np.int64)
    for u in range(n):
        s, e = int(data.offsets[u]), int(data.offsets[u + 1])
        ts = data.timestamps[s:e]
        first_val = s + int(np.searchsorted(ts, val_cutoff, side="left"))
        first_test = s + int(np.searchsorted(ts, test_cutoff, side="left"))
        train_end[u] = first_val
        if first_val > s and first_val < first_test:
            val_pos[u] = first_val
        if first_test > s and first_test < e:
            test_pos[u] = first_test
    return Split(data, train_end, val_pos, test_pos)


def require_enough(data: SequenceData, split: Split, *, min_users: int = 10, min_items: int = 5) -> None:
    """Raise NotEnoughData unless there are enough evaluable users and items to train."""
    n_eval = int((split.val_pos >= 0).sum())
    if n_eval < min_users or data.n_items < min_items:
        raise NotEnoughData(
            f"need at least {min_users} users with 3 or more events and {min_items} items; "
            f"got {n_eval} such users and {data.n_items} items"
        )
