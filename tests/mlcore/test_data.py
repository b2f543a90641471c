import numpy as np
import pandas as pd
import pytest

from mlcore.data import (
    events_clean,
    kcore_filter,
    numeric_normalize,
    require_enough,
    sequences_build,
    split_leave_last_out,
    split_time,
)
from mlcore.errors import NotEnoughData


def _frame(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "event_type", "weight"])


def test_clean_drops_invalid_duplicate_and_repeated_rows():
    df = _frame(
        [
            ("u1", "a", 100, "view", 1.0),
            ("u1", "a", 100, "view", 1.0),  # exact duplicate
            ("u1", "a", 101, "view", 1.0),  # same event again within 2 s
            ("u1", "b", 200, "view", 1.0),
            (None, "c", 300, "view", 1.0),  # no user
            ("u2", "c", "not-a-time", "view", 1.0),  # bad timestamp
            ("u2", "d", 400, "view", -1.0),  # negative weight
            ("u2", "e", 500, "buy", 2.0),
        ]
    )
    out, report = events_clean(df, repeat_window_seconds=2.0)
    assert out[["user_id", "item_id"]].values.tolist() == [["u1", "a"], ["u1", "b"], ["u2", "e"]]
    assert (report.invalid, report.duplicates, report.repeats, report.rows_out) == (3, 1, 1, 3)


def test_clean_accepts_tz_aware_datetimes_and_drops_robots():
    ts = pd.date_range("2025-01-01", periods=600, freq="s", tz="UTC")
    robot = _frame([("bot", f"i{i % 50}", t, "view", 1.0) for i, t in enumerate(ts)])
    human = _frame([("h", "a", ts[0], "view", 1.0), ("h", "b", ts[-1], "view", 1.0)])
    out, report = events_clean(pd.concat([robot, human]), robot_events_per_minute=60, robot_min_events=500)
    # the robot made 600 events in 10 minutes = 60/min... and more: 600 / (599/60) > 60
    assert set(out["user_id"]) == {"h"} and report.robot_users == 1
    assert out["timestamp"].iloc[0] == pytest.approx(ts[0].timestamp())


def test_kcore_and_normalize():
    df = _frame(
        [
            ("u1", "a", 1, "v", 1.0),
            ("u1", "b", 2, "v", 1.0),
            ("u2", "a", 1, "v", 1.0),
            ("u3", "c", 1, "v", 1.0),
        ]
    )
    # 2-core: u3/c have 1 event each → dropped; then b has 1 event → dropped; then u1, u2 have 1 → all gone
    assert kcore_filter(df, 2).empty
    out, stats = numeric_normalize(pd.DataFrame({"x": [1.0, 3.0, None]}), ["x"])
    assert stats["x"] == (2.0, 1.0) and out["x"].tolist() == [-1.0, 1.0, 0.0]


def test_leave_last_out_never_puts_targets_in_training(planted):
    clean, _ = events_clean(planted)
    data = sequences_build(clean)
    split = split_leave_last_out(data)
    for u in range(data.n_users):
        s, e = data.offsets[u], data.offsets[u + 1]
        assert split.test_pos[u] == e - 1 and split.val_pos[u] == e - 2
        # training covers exactly [s, e-2): the val and test events are outside it
        assert split.train_end[u] == e - 2 and split.train_end[u] <= split.val_pos[u] < split.test_pos[u]
        assert np.all(np.diff(data.timestamps[s:e]) >= 0)  # chronological


def test_short_users_are_train_only_and_time_split():
    df = _frame(
        [("a", "x", 1, "v", 1.0), ("a", "y", 2, "v", 1.0)] + [("b", f"i{t}", t, "v", 1.0) for t in range(5)]
    )
    data = sequences_build(events_clean(df)[0])
    split = split_leave_last_out(data)
    a = data.user_ids.index("a")
    assert split.val_pos[a] == -1 and split.train_end[a] == data.offsets[a + 1]
    ts = split_time(data, val_cutoff=3, test_cutoff=4)
    b = data.user_ids.index("b")
    s = data.offsets[b]
    assert (ts.train_end[b], ts.val_pos[b], ts.test_pos[b]) == (s + 3, s + 3, s + 4)
    with pytest.raises(NotEnoughData, match="at least 10 users"):
        require_enough(data, split)
