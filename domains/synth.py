"""Building blocks for the domains' synthetic sample data (plain Python + NumPy).

Every domain's ``sample_data`` composes these pieces the same way so that the
data is learnable by a sequence model, yet each domain maps the item sequences
to its own items, event types and contexts:

- items fall into *clusters* (categories, topics, skills, neighbourhoods) of
  skewed sizes, and within a cluster popularity follows a Zipf law;
- each item has a fixed *successor* in its cluster: sessions follow the chain
  often enough to give the model a sequential pattern to learn;
- each user prefers one or two clusters; some users *drift* to another
  cluster halfway through the period;
- users are active at their own hours; sessions are bursts of events a minute
  or two apart; a small share of picks is noise (any item by popularity).

Nothing here is random without a seed: ``Synth(seed, domain)`` gives the same
stream for the same pair, so ``sample_data`` is deterministic.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

# Sample data ends at this fixed instant, so a seed always gives the same data.
ANCHOR = datetime(2025, 6, 1, tzinfo=UTC)


def iso(ts: datetime) -> str:
    """ISO 8601 with the time zone, seconds resolution (the API's shape)."""
    return ts.replace(microsecond=0).isoformat()


@dataclass
class Catalog:
    """Items grouped in clusters with Zipf popularity and a successor chain."""

    cluster_of: np.ndarray  # item index → cluster
    members: list[np.ndarray]  # cluster → item indices, most popular first
    popularity: np.ndarray  # item index → probability within its cluster
    global_popularity: np.ndarray  # item index → probability over all items
    successor: np.ndarray  # item index → the item that usually follows it

    @property
    def n_items(self) -> int:
        return len(self.cluster_of)

    @property
    def n_clusters(self) -> int:
        return len(self.members)


@dataclass
class UserPlan:
    """A user's latent tastes and rhythm."""

    prefs_start: np.ndarray  # cluster weights at the start of the period
    prefs_end: np.ndarray  # cluster weights at the end (drift)
    peak_hour: float  # hour of day around which the user is active
    activity: float  # mean sessions over the period
    drifts: bool


@dataclass
class Session:
    start: datetime
    items: list[int]
    times: list[datetime]


class Synth:
    """A seeded source of the pieces above."""

    def __init__(self, seed: int, domain: str) -> None:
        # Mixing in the domain keeps two domains with the same seed unrelated.
        self.rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(domain.encode())])

    # ------------------------------------------------------------------ basics
    def zipf(self, n: int, a: float = 1.1) -> np.ndarray:
        """Normalised Zipf weights 1/rank^a for ranks 1..n."""
        w = 1.0 / np.arange(1, n + 1) ** a
        return w / w.sum()

    def choice(self, options: Any, p: np.ndarray | None = None) -> Any:
        idx = int(self.rng.choice(len(options), p=p))
        return options[idx]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def uniform(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def normal(self, mu: float, sigma: float) -> float:
        return float(self.rng.normal(mu, sigma))

    def integers(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi] inclusive."""
        return int(self.rng.integers(lo, hi + 1))

    # ------------------------------------------------------------------ catalog
    def catalog(self, n_items: int, n_clusters: int, zipf_a: float = 1.1) -> Catalog:
        """Items in clusters of skewed sizes, Zipf popularity, successor chains."""
        size_w = self.zipf(n_clusters, 0.6)
        sizes = np.maximum(2, np.floor(size_w * n_items).astype(int))
        while sizes.sum() > n_items:
            sizes[int(np.argmax(sizes))] -= 1
        sizes[0] += n_items - sizes.sum()
        cluster_of = np.repeat(np.arange(n_clusters), sizes)
        self.rng.shuffle(cluster_of)
        members: list[np.ndarray] = []
        popularity = np.zeros(n_items)
        successor = np.zeros(n_items, dtype=int)
        for c in range(n_clusters):
            idx = np.flatnonzero(cluster_of == c)
            self.rng.shuffle(idx)
            popularity[idx] = self.zipf(len(idx), zipf_a)
            members.append(idx)
            chain = self.rng.permutation(idx)
            successor[chain] = np.roll(chain, -1)
        global_pop = popularity * np.array([len(members[c]) for c in cluster_of]) ** 0.5
        global_pop = global_pop / global_pop.sum()
        return Catalog(cluster_of, members, popularity, global_pop, successor)

    # ------------------------------------------------------------------ users
    def user_plan(self, n_clusters: int, *, drift_share: float = 0.3, activity: float = 10.0) -> UserPlan:
        """One or two favourite clusters (popular ones more often), maybe drifting."""
        cluster_w = self.zipf(n_clusters, 0.7)
        first = int(self.rng.choice(n_clusters, p=cluster_w))
        second = int(self.rng.choice(n_clusters, p=cluster_w))
        prefs = np.full(n_clusters, 0.05 / n_clusters)
        prefs[first] += 0.7
        prefs[second] += 0.25
        prefs /= prefs.sum()
        drifts = self.chance(drift_share)
        end = prefs.copy()
        if drifts:
            third = int(self.rng.integers(n_clusters))
            end = np.full(n_clusters, 0.05 / n_clusters)
            end[third] += 0.6
            end[first] += 0.35
            end /= end.sum()
        peak = float(self.rng.choice([8.0, 12.5, 18.5, 21.0], p=[0.25, 0.2, 0.3, 0.25]))
        return UserPlan(prefs, end, peak, float(self.rng.gamma(2.0, activity / 2.0)) + 2.0, drifts)

    # ------------------------------------------------------------------ behaviour
    def sessions(
        self,
        catalog: Catalog,
        plan: UserPlan,
        *,
        days: int = 60,
        mean_length: float = 4.0,
        p_successor: float = 0.6,
        p_noise: float = 0.08,
        gap_seconds: float = 75.0,
        end: datetime = ANCHOR,
    ) -> list[Session]:
        """The user's sessions over ``days`` before ``end``, oldest first."""
        n_sessions = max(1, int(self.rng.poisson(plan.activity)))
        offsets = np.sort(self.rng.uniform(0, days, n_sessions))
        start_of_period = end - timedelta(days=days)
        out: list[Session] = []
        for off in offsets:
            day = start_of_period + timedelta(days=int(off))
            hour = float(np.clip(self.rng.normal(plan.peak_hour, 1.5), 0, 23.9))
            start = day.replace(hour=0, minute=0, second=0) + timedelta(hours=hour)
            frac = off / days
            prefs = (1 - frac) * plan.prefs_start + frac * plan.prefs_end
            items = self._walk(catalog, prefs / prefs.sum(), mean_length, p_successor, p_noise)
            times = [start]
            for _ in items[1:]:
                times.append(times[-1] + timedelta(seconds=float(self.rng.exponential(gap_seconds)) + 5))
            out.append(Session(start, items, times))
        return out

    def _walk(
        self, catalog: Catalog, prefs: np.ndarray, mean_length: float, p_successor: float, p_noise: float
    ) -> list[int]:
        length = max(1, int(self.rng.geometric(1.0 / mean_length)))
        length = min(length, int(mean_length * 4))
        cluster = int(self.rng.choice(catalog.n_clusters, p=prefs))
        current = self._popular_in(catalog, cluster)
        items = [current]
        for _ in range(length - 1):
            r = self.rng.random()
            if r < p_noise:
                current = int(self.rng.choice(catalog.n_items, p=catalog.global_popularity))
            elif r < p_noise + p_successor:
                current = int(catalog.successor[current])
            else:
                current = self._popular_in(catalog, int(catalog.cluster_of[current]))
            items.append(current)
        return items

    def _popular_in(self, catalog: Catalog, cluster: int) -> int:
        idx = catalog.members[cluster]
        p = catalog.popularity[idx]
        return int(self.rng.choice(idx, p=p / p.sum()))


class EventSink:
    """Collects events in the API's shape with deterministic ids."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.events: list[dict[str, Any]] = []

    def add(
        self,
        user_id: str,
        item_id: str | None,
        type: str,
        ts: datetime,
        *,
        value: float | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        self.events.append(
            {
                "event_id": f"{self.prefix}-{len(self.events):07d}",
                "user_id": user_id,
                "item_id": item_id,
                "type": type,
                "timestamp": iso(ts),
                "value": value,
                "context": context or {},
            }
        )

    def sorted(self) -> list[dict[str, Any]]:
        """Events oldest first (ids keep their creation order as a tie-break)."""
        return sorted(self.events, key=lambda e: (e["timestamp"], e["event_id"]))
