"""Tiny synthetic event data for mlcore tests (never a download)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def planted_events(n_users: int = 200, n_items: int = 30, seed: int = 0) -> pd.DataFrame:
    """Users walk a cycle of items: item i is always followed by item i+1 (so B always follows A)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        n = int(rng.integers(5, 12))
        start = int(rng.integers(0, n_items))
        for t in range(n):
            item = (start + t) % n_items
            kind = "buy" if t % 4 == 3 else "view"
            rows.append((f"u{u}", f"i{item}", 1_700_000_000 + 60 * t + u, kind, 1.0))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "event_type", "weight"])


@pytest.fixture
def planted() -> pd.DataFrame:
    return planted_events()
