"""Per-process cache of each user's serving inputs, invalidated by PostgreSQL notifications.

A recommendation needs the user, their latest events (the domain's rules read
them) and the encoder's vector of them. Reading those from the database and
running the encoder is most of a recommendation's cost, and the answer only
changes when the user's events or attributes change. So each web process keeps
them, compactly, for the users it serves:

- **What is kept** (≈ 1 KB for a user with 20 events): the user's pk and stored
  attributes (JSON), their latest events as one orjson ``bytes`` (item, type,
  time, value, context), and for the active model version the encoder's input
  rows and the user vector. Items' attributes come from the catalog snapshot
  on every hit, as for candidates; a user whose history holds an item missing
  from the snapshot (deactivated) is read from the database instead.
- **Invalidation**: statement-level triggers on ``events_event`` (insert,
  update, delete) and ``catalog_enduser`` (update, delete) send
  ``pg_notify('serving_user_changes', '<tenant>:<user pk>,…')`` in the writing
  transaction, so the message is delivered exactly when the change commits,
  whatever wrote it (the API, ``import_events``, erasure, the admin, SQL). A
  listener thread in each process (its own connection) drops those users.
  Ingestion also drops them in its own process right after its commit, so the
  next request there never waits for the notification.
- **No stale fill**: a request that read the database while a change was
  being committed must not store what it read. Every drop bumps a sequence
  number; a fill records the number before its read and is discarded if its
  user was dropped since.
- **Failure**: while the listener is not connected (start-up, a lost
  connection) the cache is neither read nor filled, and it is emptied when
  the listener reconnects (notifications may have been missed meanwhile).
  Entries also expire after ``SERVING_USER_STATE_MAX_AGE`` seconds, a bound
  on any staleness a missed notification could cause.
- **Limits**: ``SERVING_USER_STATE_CACHE_MB`` per process (least recently used
  out first; 0 turns the cache off). SQLite has no notifications: the cache is
  off there. ``explain=true`` reads the database (explanations cite event ids,
  which are not kept).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import select
import struct
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from django.conf import settings
from django.db import connection

from domains.base import DomainPlugin, EventRecord
from platform_core.catalog.models import EndUser
from platform_core.serving.candidates import History, item_attributes_get
from platform_core.serving.catalog_snapshot import item_texts_get
from platform_core.serving.raw_sql import json_loads
from platform_core.serving.user_vectors import user_vectors_forget
from platform_core.tenancy.models import Tenant

logger = logging.getLogger(__name__)

CHANNEL = "serving_user_changes"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Bytes an entry costs beyond its blob (objects, dict slots; measured); for the budget only.
_ENTRY_OVERHEAD = 450
#: Dropped users remembered for the fill check before the whole set is forgotten at once.
_RECENT_MAX = 50_000


_HEAD = struct.Struct("<IIHH")  # events (zlib) length, user attributes length, sequence length, dim


@dataclass(frozen=True, slots=True)
class _Entry:
    """One user, packed into one ``bytes`` (a few hundred bytes for 20 events)::

    header | zlib(orjson events) | user attributes JSON | positions (uint8) | rows (int32) | vector (float32)

    events: ``[[item, type, µs since epoch, value, context], …]`` oldest first;
    positions index them (a history holds at most HISTORY_LIMIT ≤ 255 events).
    """

    user_pk: int
    version_id: int
    created: float
    blob: bytes
    served: ServedList | None = None  # the user's last computed list, dropped with the entry

    @classmethod
    def pack(
        cls, *, user_pk: int, version_id: int, events: bytes, user_attributes: bytes,
        positions: list[int], rows: list[int], vector: np.ndarray | None,
    ) -> _Entry:  # fmt: skip
        z = zlib.compress(events, 1)
        vec = b"" if vector is None else np.ascontiguousarray(vector, dtype=np.float32).tobytes()
        blob = b"".join(
            (
                _HEAD.pack(len(z), len(user_attributes), len(positions), len(vec) // 4),
                z,
                user_attributes,
                np.asarray(positions, dtype=np.uint8).tobytes(),
                np.asarray(rows, dtype=np.int32).tobytes(),
                vec,
            )
        )
        return cls(user_pk=user_pk, version_id=version_id, created=time.monotonic(), blob=blob)

    def unpack(self) -> tuple[list[Any], bytes, list[int], list[int], np.ndarray | None]:
        """(events, user attributes JSON, positions, rows, vector)."""
        nz, na, ns, dim = _HEAD.unpack_from(self.blob)
        at = _HEAD.size
        events = orjson.loads(zlib.decompress(self.blob[at : at + nz]))
        at += nz
        attributes = self.blob[at : at + na]
        at += na
        positions = list(self.blob[at : at + ns])
        at += ns
        rows = np.frombuffer(self.blob, dtype=np.int32, count=ns, offset=at).tolist()
        at += 4 * ns
        vector = np.frombuffer(self.blob, dtype=np.float32, count=dim, offset=at) if dim else None
        return events, attributes, positions, rows, vector

    @property
    def size(self) -> int:
        return len(self.blob) + _ENTRY_OVERHEAD + (self.served.size if self.served is not None else 0)


@dataclass(frozen=True)
class UserState:
    """What a recommendation needs of a user (``history.event_ids`` is empty: ids are not kept)."""

    user: EndUser
    history: History
    positions: list[int]
    rows: list[int]
    vector: np.ndarray | None


@dataclass(frozen=True, eq=False, slots=True)
class ListInputs:
    """What a served list was computed from, besides the user's state and the request's parameters.

    Compared field by field: the catalog by generation, the config and the
    new items by identity (their caches hand out the same object while
    nothing changed; a list holding them keeps them alive, so an identity is
    never reused), the model by version.
    """

    domain: str
    version_id: int
    catalog: int
    config: object
    new_items: object

    def same(self, other: ListInputs) -> bool:
        return self is other or (
            self.catalog == other.catalog
            and self.version_id == other.version_id
            and self.config is other.config
            and self.new_items is other.new_items
            and self.domain == other.domain
        )


@dataclass(frozen=True, slots=True)
class ServedList:
    """A user's computed recommendations (no explanations), kept in their entry (≈ 300 bytes).

    ``blob``: the items' scores (float64) then, when every item is a model
    item, their rows in the model (int32); otherwise ``item_ids``.
    ``sources`` None: every item came from the model. ``flags`` None: no item
    has any. ``params`` and ``inputs`` are shared between users (interned by
    the caller).
    """

    params: tuple[Any, ...]
    inputs: ListInputs
    created: float
    generated_at: datetime
    blob: bytes
    item_ids: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    flags: tuple[dict[str, Any], ...] | None = None

    @classmethod
    def pack(
        cls, *, params: tuple[Any, ...], inputs: ListInputs, generated_at: datetime,
        item_ids: list[str], scores: list[float], rows: list[int | None],
        sources: list[str], flags: list[dict[str, Any]],
    ) -> ServedList:  # fmt: skip
        by_row = None not in rows
        blob = np.asarray(scores, dtype=np.float64).tobytes()
        if by_row:
            blob += np.asarray(rows, dtype=np.int32).tobytes()
        return cls(
            params=params,
            inputs=inputs,
            created=time.monotonic(),
            generated_at=generated_at,
            blob=blob,
            item_ids=None if by_row else tuple(item_ids),
            sources=None if all(x == "model" for x in sources) else tuple(sources),
            flags=tuple(dict(f) for f in flags) if any(flags) else None,
        )

    def unpack(
        self, item_ids: Any
    ) -> tuple[list[str], list[float], tuple[str, ...], tuple[dict[str, Any], ...]]:
        """(item ids, scores, sources, flags); ``item_ids`` maps model rows to ids (``ItemIds``)."""
        n = len(self.blob) // 12 if self.item_ids is None else len(self.item_ids)
        scores = np.frombuffer(self.blob, dtype=np.float64, count=n).tolist()
        if self.item_ids is None:
            ids = item_ids.take(np.frombuffer(self.blob, dtype=np.int32, count=n, offset=8 * n))
        else:
            ids = list(self.item_ids)
        return ids, scores, self.sources or ("model",) * n, self.flags or ({},) * n

    @property
    def size(self) -> int:
        ids = sum(60 + len(i) for i in self.item_ids) if self.item_ids is not None else 0
        flags = 250 * len(self.flags) if self.flags is not None else 0
        sources = 8 * len(self.sources) + 56 if self.sources is not None else 0
        # The object, its float and datetime, the bytes header, the entry object it replaced.
        return 320 + len(self.blob) + ids + flags + sources


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: OrderedDict[tuple[int, str], _Entry] = OrderedDict()
        self.keys: dict[tuple[int, int], str] = {}  # (tenant, user pk) → external id
        self.bytes = 0
        self.seq = 0  # bumped by every drop
        self.floor = 0  # fills that began before this are refused
        self.recent: dict[tuple[int, int], int] = {}  # (tenant, user pk) → seq of its last drop
        self.live = False
        self.hits = 0
        self.misses = 0
        self.list_hits = 0

    def _pop(self, key: tuple[int, str]) -> None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size
            self.keys.pop((key[0], entry.user_pk), None)

    def drop(self, tenant_id: int, user_pks: Iterable[int]) -> None:
        user_pks = list(user_pks)
        user_vectors_forget(tenant_id=tenant_id, user_pks=user_pks)
        with self.lock:
            self.seq += 1
            if len(self.recent) > _RECENT_MAX:
                self.recent.clear()
                self.floor = self.seq
            for pk in user_pks:
                self.recent[(tenant_id, pk)] = self.seq
                external_id = self.keys.get((tenant_id, pk))
                if external_id is not None:
                    self._pop((tenant_id, external_id))

    def reset(self, *, live: bool) -> None:
        with self.lock:
            self.entries.clear()
            self.keys.clear()
            self.recent.clear()
            self.bytes = 0
            self.seq += 1
            self.floor = self.seq
            self.live = live

    def get(self, key: tuple[int, str], max_age: float) -> _Entry | None:
        with self.lock:
            entry = self.entries.get(key) if self.live else None
            if entry is not None and time.monotonic() - entry.created > max_age:
                self._pop(key)
                entry = None
            if entry is not None:
                self.entries.move_to_end(key)
            return entry

    def _refused(self, tenant_id: int, user_pk: int, began: int) -> bool:
        """Whether a fill that began at ``began`` may have read data older than a drop since."""
        return not self.live or began < self.floor or self.recent.get((tenant_id, user_pk), -1) > began

    def list_get(
        self, key: tuple[int, str], params: tuple[Any, ...], *, max_age: float, state_max_age: float
    ) -> ServedList | None:
        """The kept list for these parameters, at most ``max_age`` old, of a state at most ``state_max_age``."""
        with self.lock:
            entry = self.entries.get(key) if self.live else None
            served = entry.served if entry is not None else None
            if served is None or served.params != params:
                return None
            now = time.monotonic()
            if now - served.created > max_age or now - entry.created > state_max_age:  # type: ignore[union-attr]
                return None
            self.entries.move_to_end(key)
            return served

    def list_put(self, key: tuple[int, str], served: ServedList, *, began: int, budget: int) -> bool:
        with self.lock:
            entry = self.entries.get(key)
            if entry is None or self._refused(key[0], entry.user_pk, began):
                return False
            kept = dataclasses.replace(entry, served=served)
            self.entries[key] = kept
            self.bytes += kept.size - entry.size
            while self.bytes > budget and self.entries:
                self._pop(next(iter(self.entries)))
            return key in self.entries

    def count(self, *, hit: bool) -> None:
        with self.lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def begin(self) -> int | None:
        with self.lock:
            return self.seq if self.live else None

    def put(self, key: tuple[int, str], entry: _Entry, *, began: int, budget: int) -> bool:
        with self.lock:
            if self._refused(key[0], entry.user_pk, began):
                return False
            self._pop(key)
            self.entries[key] = entry
            self.keys[(key[0], entry.user_pk)] = key[1]
            self.bytes += entry.size
            while self.bytes > budget and self.entries:
                self._pop(next(iter(self.entries)))
            return key in self.entries


_cache = _Cache()


# --------------------------------------------------------------------------- the listener
class _Listener(threading.Thread):
    """LISTENs on its own connection and drops the users named in each notification."""

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(name="serving-user-changes", daemon=True)
        self.params = params
        self.stopping = threading.Event()
        self.conn: Any = None

    def run(self) -> None:
        import psycopg2

        while not self.stopping.is_set():
            try:
                self.conn = psycopg2.connect(**self.params)
                self.conn.autocommit = True
                with self.conn.cursor() as cursor:
                    cursor.execute(f"LISTEN {CHANNEL}")
                _cache.reset(live=True)
                logger.info("serving: user-state cache live (listening on %s)", CHANNEL)
                while not self.stopping.is_set():
                    select.select([self.conn], [], [], 1.0)
                    self.conn.poll()  # reads what arrived; raises once the connection is gone
                    while self.conn.notifies:
                        _apply(self.conn.notifies.pop(0).payload)
            except Exception as exc:  # noqa: BLE001 - any failure: stop trusting the cache, retry
                if not self.stopping.is_set():
                    logger.warning(
                        "serving: user-state listener lost (%s); cache off until it reconnects", exc
                    )
                _cache.reset(live=False)
                self.stopping.wait(1.0)
            finally:
                if self.conn is not None:
                    with contextlib.suppress(Exception):  # closing a broken connection
                        self.conn.close()
                    self.conn = None
        _cache.reset(live=False)


def _apply(payload: str) -> None:
    tenant, _, pks = payload.partition(":")
    try:
        _cache.drop(int(tenant), [int(pk) for pk in pks.split(",") if pk])
    except ValueError:  # not ours (someone else NOTIFYing on the channel): drop everything to be safe
        logger.warning("serving: unexpected notification %r; user-state cache emptied", payload[:200])
        _cache.reset(live=_cache.live)


_listener: _Listener | None = None
_listener_pid: int | None = None
_listener_lock = threading.Lock()


_vendor: list[str] = []  # the database's vendor, read once (the proxy lookup costs ≈ 3 µs a call)


def _enabled() -> bool:
    if settings.SERVING_USER_STATE_CACHE_MB <= 0:
        return False
    if not _vendor:
        _vendor.append(connection.vendor)
    return _vendor[0] == "postgresql"


def _ensure_listener() -> None:
    global _listener, _listener_pid
    if _listener is not None and _listener_pid == os.getpid() and _listener.is_alive():
        return
    with _listener_lock:
        if _listener is not None and _listener_pid == os.getpid() and _listener.is_alive():
            return
        _cache.reset(live=False)  # a forked child inherits no thread: start over
        _listener = _Listener(connection.get_connection_params())
        _listener_pid = os.getpid()
        _listener.start()


def user_state_listener_stop(timeout: float = 5.0) -> None:
    """Stop this process's listener (tests; the thread is a daemon otherwise)."""
    global _listener
    with _listener_lock:
        listener, _listener = _listener, None
    if listener is not None:
        listener.stopping.set()
        conn = listener.conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        listener.join(timeout)
    _cache.reset(live=False)


def user_state_live(*, wait: float = 0.0) -> bool:
    """Whether this process's cache is in use (starting the listener if need be)."""
    if not _enabled():
        return False
    _ensure_listener()
    deadline = time.monotonic() + wait
    while not _cache.live and time.monotonic() < deadline:
        time.sleep(0.01)
    return _cache.live


def user_states_forget(*, tenant_id: int, user_pks: Iterable[int]) -> None:
    """Drop these users' entries in this process (ingestion calls it after its commit)."""
    _cache.drop(tenant_id, user_pks)


def user_states_forget_on_ingest(sender: Any, *, tenant_id: int, user_pks: list[int], **kwargs: Any) -> None:
    """Receiver of ``events.signals.events_committed``."""
    user_states_forget(tenant_id=tenant_id, user_pks=user_pks)


def user_states_forget_on_erasure(sender: Any, *, tenant: Tenant, user_pk: int, **kwargs: Any) -> None:
    """Receiver of ``catalog.signals.user_erased``: nothing derived from the user stays here."""
    user_states_forget(tenant_id=tenant.pk, user_pks=[user_pk])


def user_state_stats() -> dict[str, Any]:
    with _cache.lock:
        return {
            "live": _cache.live,
            "entries": len(_cache.entries),
            "bytes": _cache.bytes,
            "hits": _cache.hits,
            "misses": _cache.misses,
            "lists": sum(1 for e in _cache.entries.values() if e.served is not None),
            "list_hits": _cache.list_hits,
        }


# --------------------------------------------------------------------------- read and fill
def user_state_begin() -> int | None:
    """Call before reading a user from the database; pass the result to :func:`user_state_store`."""
    if not _enabled():
        return None
    _ensure_listener()
    return _cache.begin()


def user_state_get(
    *, tenant: Tenant, plugin: DomainPlugin, external_id: str, version_id: int
) -> UserState | None:
    """The cached state of a user for this model version, or None (then read the database)."""
    if not _enabled():
        return None
    _ensure_listener()
    entry = _cache.get((tenant.pk, external_id), settings.SERVING_USER_STATE_MAX_AGE)
    if entry is None or entry.version_id != version_id:
        _cache.count(hit=False)
        return None
    events, user_attributes, positions, rows, vector = entry.unpack()
    records = [
        EventRecord(
            user_id=external_id,
            item_id=item,
            type=type_,
            timestamp=_EPOCH + timedelta(microseconds=us),
            value=value,
            context=context or {},
        )
        for item, type_, us, value, context in events
    ]
    item_ids = list(dict.fromkeys(r.item_id for r in records if r.item_id))
    attributes = item_attributes_get(tenant=tenant, plugin=plugin, item_ids=item_ids)
    if len(attributes) < len(item_ids):
        _cache.count(hit=False)
        return None  # an item deactivated since the fill: the database still has its attributes
    user = EndUser(
        pk=entry.user_pk,
        tenant=tenant,
        external_id=external_id,
        attributes=(json_loads(user_attributes) if user_attributes else None) or {},
    )
    _cache.count(hit=True)
    return UserState(
        user=user,
        history=History(records=records, event_ids=[], item_attributes=attributes),
        positions=positions,
        rows=rows,
        vector=vector,
    )


def user_state_store(
    *,
    began: int | None,
    tenant: Tenant,
    plugin: DomainPlugin,
    user: EndUser,
    history: History,
    version_id: int,
    positions: list[int],
    rows: list[int],
    vector: np.ndarray | None,
) -> bool:
    """Keep what a request read from the database, unless the user changed meanwhile.

    ``user.attributes`` are the stored (sealed) ones. A history with an item
    missing from the catalog snapshot (inactive, or no snapshot yet) is not
    kept: its attributes would have to be kept too.
    """
    if began is None:
        return False
    item_ids = list(dict.fromkeys(r.item_id for r in history.records if r.item_id))
    texts = item_texts_get(tenant_id=tenant.pk, item_ids=item_ids) if item_ids else {}
    if texts is None or any(texts.get(i) is None for i in item_ids):
        return False  # no snapshot yet, or an inactive item: a hit could not give its attributes
    try:
        events = orjson.dumps(
            [
                [
                    r.item_id,
                    r.type,
                    (r.timestamp - _EPOCH) // timedelta(microseconds=1),
                    r.value,
                    dict(r.context) or None,
                ]
                for r in history.records
            ]
        )
        user_attributes = orjson.dumps(user.attributes) if user.attributes else b""
    except TypeError:  # e.g. an integer past 64 bits in a context: read this user from the database
        return False
    if len(history.records) > 255:  # positions are kept as bytes (HISTORY_LIMIT is 200)
        return False
    entry = _Entry.pack(
        user_pk=user.pk, version_id=version_id, events=events, user_attributes=user_attributes,
        positions=positions, rows=rows, vector=vector,
    )  # fmt: skip
    budget = settings.SERVING_USER_STATE_CACHE_MB * 1024 * 1024
    return _cache.put((tenant.pk, user.external_id), entry, began=began, budget=budget)


# --------------------------------------------------------------------------- served lists
def served_list_get(
    *, tenant: Tenant, external_id: str, params: tuple[Any, ...], inputs: ListInputs, max_age: float
) -> ServedList | None:
    """The user's list computed for these parameters from these inputs, if this process kept it."""
    if not _enabled() or not settings.SERVING_LIST_CACHE:
        return None
    _ensure_listener()
    key = (tenant.pk, external_id)
    served = _cache.list_get(key, params, max_age=max_age, state_max_age=settings.SERVING_USER_STATE_MAX_AGE)
    if served is None or not served.inputs.same(inputs):
        return None
    with _cache.lock:  # a hit of this cache (``hits``), of the list part of it (``list_hits``)
        _cache.list_hits += 1
        _cache.hits += 1
    return served


def served_list_store(*, began: int | None, tenant: Tenant, external_id: str, served: ServedList) -> bool:
    """Keep a list beside the user's state (replacing any other), unless the user changed meanwhile."""
    if began is None or not settings.SERVING_LIST_CACHE:
        return False
    budget = settings.SERVING_USER_STATE_CACHE_MB * 1024 * 1024
    return _cache.list_put((tenant.pk, external_id), served, began=began, budget=budget)
