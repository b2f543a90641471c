"""Truthful explanations: which of the user's events drove an item's model score.

The contribution of event ``j`` to item ``i`` is a leave-one-out difference
computed with the same NumPy encoder that produced the score::

    contribution(j, i) = q · v_i  −  q_{−j} · v_i

where ``q`` embeds the user's sequence and ``q_{−j}`` the same sequence with
event ``j`` removed (an older event slides into the window if there is one,
exactly as if ``j`` had never been ingested). So deleting a cited event
changes that item's model score by the cited contribution. All ``q_{−j}`` have
the same length and go through ``embed_batch`` as one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from domains.base import Adjustment
from mlcore.inference import SequenceEncoder

#: How many events an explanation cites per item.
EVENTS_PER_ITEM = 3


@dataclass(frozen=True)
class SequenceEvent:
    """One event of the encoder's input, with what the client needs to recognise it."""

    event_id: str
    item_id: str
    type: str
    timestamp: str


@dataclass(frozen=True)
class LeaveOneOut:
    """User vectors with each of the last ``len(events)`` sequence events removed."""

    events: list[SequenceEvent]  # the events that can be cited, oldest first
    vectors: np.ndarray  # (len(events), d); row j = the user's vector without events[j]
    valid: np.ndarray  # (len(events),) False where removing the event leaves no known item


def leave_one_out(
    *, encoder: SequenceEncoder, sequence: Sequence[SequenceEvent], max_len: int
) -> LeaveOneOut:
    """Embed the sequence once per removed event.

    Args:
        sequence: the user's known-item events, oldest first, at most ``max_len + 1`` long
            (the extra one is what slides in when a windowed event is removed).
        max_len: the encoder's window.
    """
    window = list(sequence[-max_len:])
    start = len(sequence) - len(window)
    seqs: list[list[str]] = []
    types: list[list[str]] = []
    for j in range(start, len(sequence)):
        rest = [e for n, e in enumerate(sequence) if n != j]
        seqs.append([e.item_id for e in rest])
        types.append([e.type for e in rest])
    if not seqs:
        return LeaveOneOut(events=[], vectors=np.zeros((0, encoder.dim), np.float32), valid=np.zeros(0, bool))
    vectors, found = encoder.embed_batch(seqs, types)
    return LeaveOneOut(events=window, vectors=vectors, valid=found)


def events_for_item(
    *, loo: LeaveOneOut | None, score: float, vector: np.ndarray | None, limit: int = EVENTS_PER_ITEM
) -> list[dict[str, Any]]:
    """The events with the largest positive contribution to this item's model score."""
    if loo is None or vector is None or len(loo.events) == 0:
        return []
    without = loo.vectors @ np.asarray(vector, dtype=np.float32)
    # Removing the user's only known event leaves no vector: the whole score was that event's.
    contributions = np.where(loo.valid, score - without, score)
    order = np.argsort(-contributions, kind="stable")
    out: list[dict[str, Any]] = []
    for j in order[:limit]:
        if contributions[j] <= 0:
            break
        e = loo.events[int(j)]
        out.append(
            {
                "event_id": e.event_id,
                "item_id": e.item_id,
                "type": e.type,
                "timestamp": e.timestamp,
                "contribution": round(float(contributions[j]), 6),
            }
        )
    return out


def rules_for_item(adjustments: Sequence[Adjustment]) -> list[dict[str, Any]]:
    """Every rule that changed the item, in the order applied."""
    return [
        {"rule": a.rule, "effect": a.effect, "delta": round(float(a.delta), 6), "detail": a.detail}
        for a in adjustments
    ]
