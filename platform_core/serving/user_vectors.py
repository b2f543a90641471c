"""Per-process cache of users' query vectors, keyed by what the encoder saw.

The encoder pass is the largest step of a recommendation after the history
query (≈ 0.2 ms for a 20-event sequence). Its input is fully described by the
model version and the event ids, item rows and types of the window, so an
entry (per tenant and user pk) carries a hash of them: any new, deleted or
changed event changes the hash, and a stale vector can't be served (no
invalidation is needed for correctness; the user-state notifications drop a
user's vector too, so an erased user's leaves the process). Vectors are stored as
``bytes`` (≈ 0.4 KB an entry with d = 64), least recently used first out,
``SERVING_USER_VECTOR_CACHE`` entries per process (0 turns it off).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np
from django.conf import settings

_lock = threading.Lock()
_vectors: OrderedDict[Hashable, tuple[int, bytes]] = OrderedDict()


def user_vector_get(
    *, key: Hashable, signature: int, compute: Callable[[], np.ndarray | None]
) -> np.ndarray | None:
    """The cached vector of ``key`` if it was computed from the same input (``signature``), else compute it."""
    limit = settings.SERVING_USER_VECTOR_CACHE
    if limit <= 0:
        return compute()
    with _lock:
        hit = _vectors.get(key)
        if hit is not None and hit[0] == signature:
            _vectors.move_to_end(key)
            return np.frombuffer(hit[1], dtype=np.float32)
    vector = compute()
    if vector is None:
        return None
    vector = np.ascontiguousarray(vector, dtype=np.float32)
    with _lock:
        _vectors[key] = (signature, vector.tobytes())
        _vectors.move_to_end(key)
        while len(_vectors) > limit:
            _vectors.popitem(last=False)
    return vector


def user_vectors_forget(*, tenant_id: int, user_pks: list[int]) -> None:
    """Drop these users' vectors (their events or attributes changed, or they were erased)."""
    with _lock:
        for pk in user_pks:
            _vectors.pop((tenant_id, pk), None)


def user_vectors_clear() -> None:
    with _lock:
        _vectors.clear()
