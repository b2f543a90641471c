"""Per-process packed snapshot of each tenant's active items' stored attributes.

Candidate attributes are read on every recommendation (the domain's rules
need them); a database round trip for them cost more than the rest of the
request. So each process holds, per tenant, every active item's attributes as
JSON text packed into one ``bytes`` (ids in a sorted NumPy bytes array, with
offsets): ≈ 7.5 MB for 100,000 items, less than the per-item cache it
replaces held at 60,000 entries.

Freshness comes from change detection, at most once per ``HOT_CACHE_SECONDS``
per tenant and process, with one aggregate query (row count, id sum, highest
id, newest ``updated_at``):

- rows created or updated since the last check (``id`` above the highest
  seen, or ``updated_at`` at or after the newest seen minus
  ``CATALOG_CHANGE_MARGIN``, which also catches transactions that committed
  late) go into an *overlay* that wins over the packed rows: an
  ``in_stock = false`` or a deactivation reaches every process within
  ``HOT_CACHE_SECONDS``;
- a row count or id sum that the snapshot plus the new rows don't explain
  means rows were deleted (or a late commit hides something): the snapshot is
  rebuilt, and until the new one is in place every lookup of that tenant goes
  to the database (exact, never stale);
- an overlay past ``OVERLAY_MAX`` entries triggers a rebuild too.

Large catalogs (``BACKGROUND_MIN_ITEMS`` rows and more) are read in a
background thread, in keyset pages so the process never holds 100,000 rows as
Python objects at once; small ones (tests, demos) synchronously.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings

from platform_core.serving.raw_sql import aware, json_text, sql_names

logger = logging.getLogger(__name__)

#: Look this far back before the newest ``updated_at`` seen (late commits).
CATALOG_CHANGE_MARGIN = timedelta(seconds=60)
#: Changed items kept beside a snapshot before it is rebuilt.
OVERLAY_MAX = 5_000
#: Catalogs this large are snapshotted in a background thread (lookups go to the DB meanwhile).
BACKGROUND_MIN_ITEMS = 20_000
#: Rows read per keyset page while building.
PAGE = 5_000
_EPOCH = datetime(1970, 1, 2, tzinfo=UTC)


@dataclass
class Snapshot:
    """Active items' attributes (JSON text) of one tenant, packed; never mutated once built."""

    ids: np.ndarray  # sorted external ids, UTF-8 bytes (S<n>)
    rows: np.ndarray  # row in blob order of each sorted id (int32)
    offsets: np.ndarray  # row r's text is blob[offsets[r]:offsets[r + 1]] (int64, n + 1)
    blob: bytes

    def texts(self, item_ids: list[str]) -> list[bytes | None]:
        """The JSON text (UTF-8) of each id (None: no such active item when the snapshot was built)."""
        if not len(self.ids):
            return [None] * len(item_ids)
        width = self.ids.dtype.itemsize
        raw = [i.encode() for i in item_ids]
        needles = np.asarray([b if len(b) <= width else b"" for b in raw], dtype=self.ids.dtype)
        pos = np.minimum(np.searchsorted(self.ids, needles), len(self.ids) - 1)
        found = self.ids[pos] == needles
        rows = self.rows[pos].tolist()
        out: list[bytes | None] = []
        blob, offsets = self.blob, self.offsets
        for r, ok, b in zip(rows, found.tolist(), raw, strict=True):
            out.append(blob[offsets[r] : offsets[r + 1]] if ok and 0 < len(b) <= width else None)
        return out


@dataclass
class _State:
    snapshot: Snapshot | None = None
    overlay: dict[str, str | None] = field(default_factory=dict)
    count: int = 0  # all rows (active or not) the snapshot + overlay account for
    id_sum: int = 0
    max_id: int = 0
    newest: datetime | None = None
    checked_until: float = 0.0
    building: bool = False
    stale: bool = True  # lookups go to the database until a snapshot is in place
    generation: int = 0  # a new one for every change of what lookups answer


_generations = itertools.count(1)


_states: dict[int, _State] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class _Marks:
    count: int
    id_sum: int
    max_id: int
    newest: datetime | None


def _marks(cursor: Any, tenant_id: int) -> _Marks:
    n = sql_names()
    cursor.execute(
        f"SELECT COUNT(*), SUM(id), MAX(id), MAX(updated_at) FROM {n['item']} WHERE {n['it_tenant']} = %s",
        [tenant_id],
    )
    count, id_sum, max_id, newest = cursor.fetchone()
    return _Marks(int(count or 0), int(id_sum or 0), int(max_id or 0), aware(newest))


def _build(tenant_id: int) -> tuple[Snapshot, _Marks]:
    """Read every active item of the tenant in keyset pages; returns the snapshot and the marks before it."""
    from django.db import connection

    n = sql_names()
    ids_parts: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    blobs: list[bytes] = []
    with connection.cursor() as cursor:
        # Marks first: a change racing the read is then seen again by the next check.
        marks = _marks(cursor, tenant_id)
        after = 0
        while True:
            cursor.execute(
                f"SELECT id, external_id, attributes FROM {n['item']} "
                f"WHERE {n['it_tenant']} = %s AND active AND id > %s ORDER BY id LIMIT %s",
                [tenant_id, after, PAGE],
            )
            rows = cursor.fetchall()
            if not rows:
                break
            after = rows[-1][0]
            texts = [json_text(r[2]).encode() for r in rows]
            ids_parts.append(np.asarray([r[1].encode() for r in rows], dtype=bytes))
            lengths.append(np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts)))
            blobs.append(b"".join(texts))
            del rows, texts
            if len(ids_parts[-1]) < PAGE:
                break
    if ids_parts:
        width = max(p.dtype.itemsize for p in ids_parts)
        ids = np.concatenate([p.astype(f"S{width}") for p in ids_parts])
        length = np.concatenate(lengths)
    else:
        ids, length = np.empty(0, dtype="S1"), np.empty(0, dtype=np.int64)
    offsets = np.zeros(len(length) + 1, dtype=np.int64)
    np.cumsum(length, out=offsets[1:])
    order = np.argsort(ids, kind="stable")
    snap = Snapshot(ids=ids[order], rows=order.astype(np.int32), offsets=offsets, blob=b"".join(blobs))
    return snap, marks


def _install(tenant_id: int) -> None:
    try:
        snap, marks = _build(tenant_id)
    except Exception:  # a failed build leaves lookups on the database; the next check retries
        logger.exception("serving: catalog snapshot of tenant %s failed", tenant_id)
        with _lock:
            _states.setdefault(tenant_id, _State()).building = False
        return
    with _lock:
        # Swapped whole: a reader sees the old state or the new one.
        _states[tenant_id] = _State(
            snapshot=snap,
            count=marks.count,
            id_sum=marks.id_sum,
            max_id=marks.max_id,
            newest=marks.newest,
            checked_until=time.monotonic() + settings.HOT_CACHE_SECONDS,
            stale=False,
            generation=next(_generations),
        )
    logger.info("serving: catalog snapshot of tenant %s: %s active items", tenant_id, len(snap.ids))


def _rebuild(tenant_id: int, *, rows: int) -> None:
    with _lock:
        state = _states.setdefault(tenant_id, _State())
        if state.building:
            return
        state.building = True
    if rows < BACKGROUND_MIN_ITEMS:
        _install(tenant_id)
        return

    def run() -> None:
        from django.db import connection

        try:
            _install(tenant_id)
        finally:
            connection.close()  # this thread's connection must not linger

    threading.Thread(target=run, name=f"catalog-snapshot-{tenant_id}", daemon=True).start()


def _check(tenant_id: int, now: float) -> _State:
    """Apply catalog changes seen since the last check (at most once per HOT_CACHE_SECONDS)."""
    from django.db import connection

    state = _states.get(tenant_id)
    if state is not None and state.checked_until > now:
        return state
    with _lock:
        state = _states.setdefault(tenant_id, _State())
        if state.checked_until > now:
            return state
        state.checked_until = now + settings.HOT_CACHE_SECONDS
    if state.snapshot is None:
        with connection.cursor() as cursor:
            rows = _marks(cursor, tenant_id).count
        _rebuild(tenant_id, rows=rows)
        return _states[tenant_id]
    n = sql_names()
    with connection.cursor() as cursor:
        marks = _marks(cursor, tenant_id)
        changed: list[tuple[Any, ...]] = []
        if marks.max_id > state.max_id or (marks.newest is not None and marks.newest != state.newest):
            since = (state.newest or marks.newest or _EPOCH) - CATALOG_CHANGE_MARGIN
            cursor.execute(
                f"SELECT id, external_id, attributes, active FROM {n['item']} "
                f"WHERE {n['it_tenant']} = %s AND (id > %s OR updated_at >= %s)",
                [tenant_id, state.max_id, connection.ops.adapt_datetimefield_value(since)],
            )
            changed = cursor.fetchall()
    new_ids = [r[0] for r in changed if r[0] > state.max_id]
    # Rows the snapshot and the new rows don't account for: deletions (or a late commit).
    unexplained = (marks.count, marks.id_sum) != (state.count + len(new_ids), state.id_sum + sum(new_ids))
    if not changed and not unexplained:
        # Nothing changed: the same state (and generation), so lists computed from it stay valid.
        if state.stale or len(state.overlay) > OVERLAY_MAX:
            _rebuild(tenant_id, rows=marks.count)
        return _states[tenant_id]
    overlay = dict(state.overlay)
    for _, ext, attrs, active in changed:
        overlay[ext] = json_text(attrs) if active else None
    with _lock:
        if _states.get(tenant_id) is not state:
            return _states[tenant_id]  # a rebuild finished meanwhile: it is newer
        _states[tenant_id] = fresh = _State(
            snapshot=state.snapshot,
            overlay=overlay,
            count=marks.count,
            id_sum=marks.id_sum,
            max_id=max(marks.max_id, state.max_id),
            newest=marks.newest,
            checked_until=state.checked_until,
            building=state.building,
            stale=state.stale or unexplained,
            generation=next(_generations),
        )
    # Stale (also after a failed build) or overgrown: rebuild; _rebuild skips one in flight.
    if fresh.stale or len(overlay) > OVERLAY_MAX:
        _rebuild(tenant_id, rows=marks.count)
    return _states[tenant_id]


def item_texts_get(*, tenant_id: int, item_ids: list[str]) -> dict[str, str | bytes | None] | None:
    """JSON text (str, or UTF-8 bytes) of each active item among ``item_ids`` (None: not an active item).

    Returns None when this process has no usable snapshot of the tenant yet
    (first build in progress, or rebuilding after deletions): the caller then
    asks the database.
    """
    state = _check(tenant_id, time.monotonic())
    if state.stale or state.snapshot is None:
        return None
    overlay = state.overlay
    rest = [i for i in item_ids if i not in overlay]
    out: dict[str, str | bytes | None] = {i: overlay[i] for i in item_ids if i in overlay}
    if rest:
        out.update(zip(rest, state.snapshot.texts(rest), strict=True))
    return out


def catalog_generation(*, tenant_id: int) -> int | None:
    """A number that changes whenever this process's answers about the tenant's items change.

    None while there is no usable snapshot (lookups go to the database then).
    """
    state = _check(tenant_id, time.monotonic())
    return None if state.stale or state.snapshot is None else state.generation


def catalog_snapshots_clear() -> None:
    """Forget every snapshot (tests)."""
    with _lock:
        _states.clear()


def catalog_snapshot_wait(*, tenant_id: int, timeout: float = 60.0) -> bool:
    """Wait until the tenant's snapshot is usable (benchmarks); True when it is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _check(tenant_id, time.monotonic())
        if not state.stale and state.snapshot is not None:
            return True
        time.sleep(0.05)
    return False
