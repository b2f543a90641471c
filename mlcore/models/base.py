"""The small interface every model implements: fit, score, embed users, embed items."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlcore.data import Split


@dataclass
class Histories:
    """A batch of users' inputs: 1-based item rows and type rows, oldest first."""

    items: Sequence[np.ndarray]
    types: Sequence[np.ndarray]


ProgressFn = Callable[..., None]


class Recommender(ABC):
    """fit on a split, then score any batch of histories over all items (0-based columns)."""

    name: str = "model"

    def __init__(self, n_items: int, **params: Any) -> None:
        self.n_items = n_items
        self.params = params

    @abstractmethod
    def fit(self, split: Split, *, deadline: float, progress: ProgressFn | None = None) -> dict[str, Any]:
        """Train on the split's training events (validation targets may drive early stopping/tuning)."""

    @abstractmethod
    def score(self, batch: Histories) -> np.ndarray:
        """Scores (B, n_items) over 0-based items; higher is better."""

    def embed_users(self, batch: Histories) -> np.ndarray | None:
        """User vectors (B, d) in the item space, or None when the model has none."""
        return None

    def item_vectors(self) -> np.ndarray | None:
        """Item vectors (n_items, d) such that score = user · item, or None."""
        return None


def histories_of(split: Split, users: np.ndarray, *, until: np.ndarray) -> Histories:
    """Each user's events from the start of their sequence up to (excluding) position `until[u]`."""
    data = split.data
    items, types = [], []
    for u in users:
        s, e = int(data.offsets[u]), int(until[u])
        items.append(data.items[s:e])
        types.append(data.types[s:e])
    return Histories(items, types)
