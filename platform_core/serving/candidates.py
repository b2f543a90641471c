"""Reads that feed the serving selectors: history, item attributes, popularity, new items.

Kept apart from ``selectors.py`` so the request flow there reads in one screen.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Case, FloatField, Sum, Value, When
from django.utils import timezone

from domains.base import DomainPlugin, EventRecord, Field, UserRecord
from platform_core.catalog.models import EndUser, Item
from platform_core.events.models import Event
from platform_core.plugins.crypto import attributes_unseal, context_unseal
from platform_core.serving.catalog_snapshot import catalog_snapshots_clear, item_texts_get
from platform_core.serving.model_cache import ServingModel
from platform_core.serving.raw_sql import aware, json_column, json_loads, json_text, sql_names
from platform_core.tenancy.models import Tenant

#: Events read per request: enough for the encoder's window and the rules that look back.
HISTORY_LIMIT = 200
#: New items (not in the active artifact) considered per request through attribute similarity.
NEW_ITEMS_MAX = 500
#: Artifact items averaged into one attribute value's centroid vector.
CENTROID_SAMPLE = 200


@dataclass(frozen=True)
class History:
    """A user's recent events, oldest first, as the rules and the encoder see them."""

    records: list[EventRecord]
    event_ids: list[str]
    item_attributes: dict[str, dict[str, Any]]  # plaintext attributes of the history's items

    @property
    def item_ids(self) -> list[str]:
        return [r.item_id for r in self.records if r.item_id]


_HISTORY_COLUMNS = (
    "event_id",
    "item__external_id",
    "type",
    "timestamp",
    "value",
    "context",
    "item__attributes",
)


def history_get(
    *, tenant: Tenant, plugin: DomainPlugin, user: EndUser, limit: int = HISTORY_LIMIT
) -> History:
    """The user's latest events (uses the (tenant, user, timestamp) index), oldest first.

    The items' attributes come in the same query (one round trip on the hot path).
    """
    rows = list(
        Event.objects.for_tenant(tenant)
        .filter(user=user)
        .order_by("-timestamp", "-id")
        .values_list(*_HISTORY_COLUMNS)[:limit]
    )
    return _history(plugin=plugin, user_id=user.external_id, rows=rows)


_history_sql: str | None = None
_attributes_sql: dict[int, str] = {}


def _history_query() -> str:
    global _history_sql
    if _history_sql is None:
        n = sql_names()
        # One round trip: the user (tenant + external id, the unique index), their latest events
        # (the (tenant, user, timestamp) index) and the events' item attributes.
        _history_sql = (
            f"SELECT e.event_id, i.external_id, e.type, e.timestamp, e.value, e.context, i.attributes, "
            f"u.id, u.attributes FROM {n['event']} e "
            f"INNER JOIN {n['user']} u ON u.id = e.{n['ev_user']} "
            f"LEFT OUTER JOIN {n['item']} i ON i.id = e.{n['ev_item']} "
            f"WHERE e.{n['ev_tenant']} = %s AND u.{n['us_tenant']} = %s AND u.external_id = %s "
            f"ORDER BY e.timestamp DESC, e.id DESC LIMIT %s"
        )
    return _history_sql


#: PostgreSQL connections (DB-API objects) → names of the serving statements prepared on them.
_prepared: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _execute(cursor: Any, *, name: str, types: str, sql: str, params: Sequence[Any]) -> None:
    """Run ``sql`` (``%s`` placeholders); on PostgreSQL as a statement prepared once per connection.

    Planning the history join costs PostgreSQL more than running it (≈1 ms
    against ≈0.3 ms); a prepared statement is planned once per connection.
    ``SERVING_PREPARED_STATEMENTS = False`` turns this off (e.g. behind a
    transaction-pooling PgBouncer, where a session's statements don't follow it).
    """
    from django.db import connection

    if connection.vendor != "postgresql" or not getattr(settings, "SERVING_PREPARED_STATEMENTS", True):
        cursor.execute(sql, params)
        return
    raw = connection.connection
    done = _prepared.get(raw)
    if done is None:
        done = _prepared[raw] = set()
    if name not in done:
        parts = sql.split("%s")
        body = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))
        cursor.execute(f"PREPARE {name}({types}) AS {body}")
        done.add(name)
    cursor.execute(f"EXECUTE {name}({', '.join(['%s'] * len(params))})", params)


def user_history_get(
    *, tenant: Tenant, plugin: DomainPlugin, external_id: str, limit: int = HISTORY_LIMIT
) -> tuple[EndUser, History]:
    """The user and their latest events, in one round trip when they have any.

    A raw query: this is the hot path of every recommendation, and building the
    equivalent ORM query costs more than running it.

    Raises:
        NotFound: no such user in this tenant (another tenant's reads the same).
    """
    from django.db import connection

    from platform_core.catalog.selectors import enduser_get_for_tenant

    with connection.cursor() as cursor:
        _execute(
            cursor,
            name="serving_history",
            types="bigint, bigint, text, integer",
            sql=_history_query(),
            params=[tenant.pk, tenant.pk, external_id, limit],
        )
        raw = cursor.fetchall()
    if not raw:
        user = enduser_get_for_tenant(tenant=tenant, external_id=external_id)
        return user, History(records=[], event_ids=[], item_attributes={})
    # Item attributes stay JSON text here: _history decodes each item's once.
    rows = [
        (r[0], r[1], r[2], aware(r[3]), r[4], {} if r[5] == "{}" else json_column(r[5]), r[6]) for r in raw
    ]
    # A read-only stand-in built from the joined columns (never saved).
    user = EndUser(
        pk=raw[0][7], tenant=tenant, external_id=external_id, attributes=json_column(raw[0][8]) or {}
    )
    return user, _history(plugin=plugin, user_id=external_id, rows=rows)


def _history(*, plugin: DomainPlugin, user_id: str, rows: list[tuple[Any, ...]]) -> History:
    rows.reverse()
    attrs: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row[1] and row[1] not in attrs:
            attrs[row[1]] = attributes_unseal(
                plugin=plugin, kind="item", attributes=json_column(row[6]) or {}
            )
    # The domain's hooks read sensitive context fields (e.g. a diagnosis's condition): opened here.
    sealed = plugin.sensitive_event_types()
    records = [
        EventRecord(
            user_id=user_id,
            item_id=item_id,
            type=type_,
            timestamp=ts,
            value=value,
            context=(context_unseal(context=context) if type_ in sealed else context) if context else {},
        )
        for (_eid, item_id, type_, ts, value, context, _attrs) in rows
    ]
    return History(records=records, event_ids=[r[0] for r in rows], item_attributes=attrs)


def user_record(*, plugin: DomainPlugin, user: EndUser) -> UserRecord:
    attrs = attributes_unseal(plugin=plugin, kind="user", attributes=user.attributes or {})
    return UserRecord(user_id=user.external_id, attributes=attrs)


def item_attributes_get(
    *, tenant: Tenant, plugin: DomainPlugin, item_ids: Iterable[str], active_only: bool = True
) -> dict[str, dict[str, Any]]:
    """Plaintext attributes of the tenant's active items by external id (inactive ones left out).

    Read from the process's packed snapshot of the catalog
    (:mod:`platform_core.serving.catalog_snapshot`): a catalog change, e.g.
    ``in_stock`` turning false, reaches every process within
    ``HOT_CACHE_SECONDS``, and no request needs a database round trip for them.
    """
    ids = list(dict.fromkeys(i for i in item_ids if i))
    if not ids:
        return {}
    if not active_only:
        qs = Item.objects.for_tenant(tenant).filter(external_id__in=ids)
        return {
            ext: attributes_unseal(plugin=plugin, kind="item", attributes=attrs or {})
            for ext, attrs in qs.values_list("external_id", "attributes")
        }
    texts = item_texts_get(tenant_id=tenant.pk, item_ids=ids)
    if texts is None:  # no usable snapshot in this process yet: ask the database
        texts = {
            ext: json_text(attrs) for ext, attrs in _active_item_attributes(tenant_id=tenant.pk, item_ids=ids)
        }
    sensitive = bool(plugin.sensitive_fields("item"))
    out: dict[str, dict[str, Any]] = {}
    for item_id in ids:
        text = texts.get(item_id)
        if text is not None:
            attrs = json_loads(text) or {}
            out[item_id] = (
                attributes_unseal(plugin=plugin, kind="item", attributes=attrs) if sensitive else attrs
            )
    return out


def _active_item_attributes(*, tenant_id: int, item_ids: list[str]) -> list[tuple[str, Any]]:
    """(external id, stored attributes) of the tenant's active items among ``item_ids`` (raw query)."""
    from django.db import connection

    names = sql_names()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = (
                f"SELECT external_id, attributes FROM {names['item']} "
                f"WHERE {names['it_tenant']} = %s AND active AND external_id = ANY(%s)"
            )
            _execute(
                cursor, name="serving_items", types="bigint, text[]", sql=sql, params=[tenant_id, item_ids]
            )
            return cursor.fetchall()
        n = len(item_ids)
        sql = _attributes_sql.get(n)
        if sql is None:
            marks = ", ".join(["%s"] * n)
            sql = (
                f"SELECT external_id, attributes FROM {names['item']} "
                f"WHERE {names['it_tenant']} = %s AND active AND external_id IN ({marks})"
            )
            if len(_attributes_sql) < 256:
                _attributes_sql[n] = sql
        cursor.execute(sql, [tenant_id, *item_ids])
        return cursor.fetchall()


# --------------------------------------------------------------------------- popularity
_popular_cache: dict[tuple[Any, ...], tuple[float, list[tuple[str, float]]]] = {}
_popular_lock = threading.Lock()


def _segment_lookup(
    *, tenant: Tenant, plugin: DomainPlugin, user: EndUser | None
) -> tuple[str, dict[str, Any]]:
    """(label, Event filter) selecting the events of users like ``user``; ("", {}) for everyone."""
    if user is None:
        return "", {}
    from platform_core.profiles.models import UserProfile

    segment = (
        UserProfile.objects.for_tenant(tenant).filter(user=user).values_list("segment", flat=True).first()
    )
    if segment:
        return f"segment:{segment}", {"user__profile__segment": segment}
    attrs = user.attributes or {}
    for spec in plugin.user_schema:
        if spec.type == "choice" and not spec.sensitive and attrs.get(spec.name) is not None:
            value = attrs[spec.name]
            return f"{spec.name}:{value}", {f"user__attributes__{spec.name}": value}
    return "", {}


def popular_scores(
    *,
    tenant: Tenant,
    plugin: DomainPlugin,
    window: timedelta | None,
    limit: int,
    lookup: Mapping[str, Any] | None = None,
    cache_key: str = "",
) -> list[tuple[str, float]]:
    """Active items by weighted interactions in the window, best first (cached in process briefly).

    The weight of an event is its type's training weight; labels (weight 0) don't count.
    """
    key = (tenant.pk, window, limit, cache_key)
    now = time.monotonic()
    hit = _popular_cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    weights = {t: w for t, w in plugin.event_weights().items() if w > 0}
    if not weights:
        return []
    qs = Event.objects.for_tenant(tenant).filter(
        type__in=list(weights), item__isnull=False, item__active=True, **(lookup or {})
    )
    if window is not None:
        qs = qs.filter(timestamp__gte=timezone.now() - window)
    score = Sum(
        Case(*[When(type=t, then=Value(w)) for t, w in weights.items()], default=Value(0.0)),
        output_field=FloatField(),
    )
    rows = [
        (ext, float(s))
        for ext, s in qs.values("item__external_id")
        .annotate(score=score)
        .order_by("-score", "item__external_id")
        .values_list("item__external_id", "score")[:limit]
    ]
    with _popular_lock:
        if len(_popular_cache) > 1000:
            _popular_cache.clear()
        _popular_cache[key] = (now + settings.SERVING_POPULAR_CACHE_SECONDS, rows)
    return rows


def popular_for_user(
    *, tenant: Tenant, plugin: DomainPlugin, user: EndUser | None, model: ServingModel | None, limit: int
) -> tuple[str, list[tuple[str, float]]]:
    """Popular items for a user without usable history: their segment's, then everyone's.

    Returns:
        (source label, [(item id, score)]) where the label says which population ranked them.
    """
    window = timedelta(days=settings.SERVING_COLD_START_WINDOW_DAYS)
    label, lookup = _segment_lookup(tenant=tenant, plugin=plugin, user=user)
    everyone = popular_scores(tenant=tenant, plugin=plugin, window=window, limit=limit)
    if lookup:
        rows = popular_scores(
            tenant=tenant, plugin=plugin, window=window, limit=limit, lookup=lookup, cache_key=label
        )
        if rows:
            # The segment's items first (scores 1–2), then everyone's (0–1) to fill the list.
            top_seg = rows[0][1] or 1.0
            top_all = everyone[0][1] if everyone and everyone[0][1] else 1.0
            seen = {i for i, _ in rows}
            merged = [(i, 1.0 + s / top_seg) for i, s in rows]
            merged += [(i, s / top_all) for i, s in everyone if i not in seen]
            return f"popular_in_{label}", merged[:limit]
    rows = everyone
    if rows:
        return "popular", rows
    if model is not None:  # nothing recent: the training-time popularity of the active model
        order = model.popular_order[:limit]
        pop = model.artifact.item_popularity
        return "popular", [(model.artifact.item_ids[i], float(pop[i])) for i in order]
    return "popular", popular_scores(tenant=tenant, plugin=plugin, window=None, limit=limit)


# --------------------------------------------------------------------------- new items
def _similarity_fields(plugin: DomainPlugin) -> list[Field]:
    """Attributes that define "alike" for cold items: categorical, short, not sensitive."""
    return [
        f
        for f in plugin.item_schema
        if not f.sensitive
        and (f.type in ("choice", "bool") or (f.type == "string" and (f.max_length or 10_000) <= 100))
    ]


class _LRU(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.lock = threading.Lock()

    def put(self, key: Any, value: Any) -> None:
        with self.lock:
            self[key] = value
            self.move_to_end(key)
            while len(self) > self.size:
                self.popitem(last=False)


_centroids = _LRU(4096)
_new_items = _LRU(256)


def attribute_vector(
    *, tenant: Tenant, plugin: DomainPlugin, model: ServingModel, attributes: Mapping[str, Any]
) -> np.ndarray | None:
    """A vector for an item the model has never seen: the mean of its attribute values' centroids.

    The centroid of ``category = "shoes"`` is the mean vector of (up to
    ``CENTROID_SAMPLE``) items of the artifact that share it, so a new item
    lands next to the items it resembles.
    """
    parts: list[np.ndarray] = []
    for spec in _similarity_fields(plugin):
        value = attributes.get(spec.name)
        if value is None or isinstance(value, list | dict):
            continue
        key = (model.version_id, spec.name, value)
        centroid = _centroids.get(key, False)
        if centroid is False:
            ids = (
                Item.objects.for_tenant(tenant)
                .filter(**{f"attributes__{spec.name}": value})
                .values_list("external_id", flat=True)[: CENTROID_SAMPLE * 2]
            )
            rows = [model.artifact.item_index[i] for i in ids if i in model.artifact.item_index][
                :CENTROID_SAMPLE
            ]
            centroid = (
                np.asarray(model.vectors[np.sort(rows)], dtype=np.float32).mean(axis=0) if rows else None
            )
            _centroids.put(key, centroid)
        if centroid is not None:
            parts.append(centroid)
    if not parts:
        return None
    return np.mean(parts, axis=0).astype(np.float32)


def new_items_get(
    *, tenant: Tenant, plugin: DomainPlugin, model: ServingModel
) -> list[tuple[str, dict[str, Any], np.ndarray]]:
    """Active items the active model has never seen, with attribute-similarity vectors.

    Cached in process for ``SERVING_POPULAR_CACHE_SECONDS``: a new item becomes reachable within that time.
    """
    key = (tenant.pk, model.version_id)
    hit = _new_items.get(key)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    # Items created before the version may still be unknown to it (no events then): look back a day.
    since = model.version_created_at - timedelta(days=1)
    recent = (
        Item.objects.for_tenant(tenant)
        .filter(active=True, created_at__gte=since)
        .order_by("-created_at")
        .values_list("external_id", flat=True)[: NEW_ITEMS_MAX * 4]
    )
    # Ids first: parsing the attributes of items the model knows would be wasted work.
    unknown = [ext for ext in recent if ext not in model.artifact.item_index][:NEW_ITEMS_MAX]
    rows = (
        Item.objects.for_tenant(tenant)
        .filter(external_id__in=unknown)
        .values_list("external_id", "attributes")
        if unknown
        else []
    )
    out: list[tuple[str, dict[str, Any], np.ndarray]] = []
    for ext, attrs in rows:
        plain = attributes_unseal(plugin=plugin, kind="item", attributes=attrs or {})
        vector = attribute_vector(tenant=tenant, plugin=plugin, model=model, attributes=plain)
        if vector is not None:
            out.append((ext, plain, vector))
    if hit is not None and [(e, a) for e, a, _ in hit[1]] == [(e, a) for e, a, _ in out]:
        out = hit[1]  # unchanged: the same list, which served lists recognise by identity
    _new_items.put(key, (now + settings.SERVING_POPULAR_CACHE_SECONDS, out))
    return out


def serving_caches_clear() -> None:
    """Forget cached popularity, centroids and new items (tests)."""
    from platform_core.serving.user_vectors import user_vectors_clear

    _popular_cache.clear()
    user_vectors_clear()
    catalog_snapshots_clear()
    _centroids.clear()
    _new_items.clear()


def as_iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def sorted_unique(values: Sequence[int]) -> np.ndarray:
    return np.unique(np.asarray(values, dtype=np.int64))
