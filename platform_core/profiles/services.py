"""Writes of the profiles app: build personas in bulk, refresh one user, store embeddings.

A profile is derived data: it is recomputed from the user's events, never
edited. ``profile_build_bulk`` streams the tenant's events ordered by user and
writes in batches with one upsert statement per batch (embeddings are left
alone: training writes them).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone

from domains.base import DomainPlugin, EventRecord, UserRecord
from platform_core.catalog.models import EndUser, Item
from platform_core.common.errors import NotFound
from platform_core.events.models import Event
from platform_core.plugins.crypto import attributes_unseal, features_seal
from platform_core.plugins.selectors import tenant_config_get, tenant_plugin_get
from platform_core.profiles.models import UserProfile
from platform_core.tenancy.models import Tenant

log = logging.getLogger(__name__)

SESSION_GAP = dt.timedelta(minutes=30)
RECENT_ITEMS = 20
RECENT_SESSIONS = 5
TOP_INTERESTS = 10
BATCH_SIZE = 2000


@dataclass(frozen=True)
class ProfileProgress:
    """Progress of a bulk build, in the shape the job's progress reporter reads."""

    stage: str
    epoch: int  # users done
    epochs: int  # users in total
    eta_seconds: float | None = None
    message: str = ""
    loss: float | None = None
    metric: float | None = None


# --------------------------------------------------------------------------- the computation
class _Context:
    """What every user's computation shares: plugin, config, item keys, weights."""

    def __init__(self, tenant: Tenant, now: dt.datetime) -> None:
        self.tenant = tenant
        self.now = now
        self.plugin: DomainPlugin = tenant_plugin_get(tenant=tenant)
        self.config = tenant_config_get(tenant=tenant)
        self.weights = {k: max(0.0, float(v)) for k, v in self.plugin.event_weights().items()}
        self.has_features = type(self.plugin).profile_features is not DomainPlugin.profile_features
        self.item_ext: dict[int, str] = {}
        self.item_keys: dict[int, tuple[str, ...]] = {}
        self.item_attrs: dict[int, dict[str, Any]] = {}
        # Asked once here, not per user: both are per-domain constants.
        self.users_sealed = bool(self.plugin.sensitive_fields("user"))
        self.features_sealed = bool(self.plugin.sensitive_profile_features)
        self._load_items()

    def _load_items(self) -> None:
        """Interest keys per item from its categorical attributes.

        Candidates are the non-sensitive string, choice and list fields; a field
        counts as categorical when it has at least 2 distinct values and at most
        half as many as there are items (so titles and ids, unique per item,
        and constants, like a single currency, are left out).
        """
        candidates = [
            f.name
            for f in self.plugin.item_schema
            if f.type in ("string", "choice", "list") and not f.sensitive
        ]
        rows = list(
            Item.objects.for_tenant(self.tenant)
            .values_list("pk", "external_id", "attributes")
            .iterator(chunk_size=5000)
        )
        values: dict[str, set] = {name: set() for name in candidates}
        for _pk, _ext, attrs in rows:
            for name in candidates:
                value = (attrs or {}).get(name)
                if isinstance(value, list):
                    values[name].update(v for v in value if isinstance(v, (str, int, float)))
                elif isinstance(value, (str, int, float)):
                    values[name].add(value)
        limit = max(len(rows) // 2, 2)
        fields = [name for name in candidates if 2 <= len(values[name]) <= limit]
        sealed = bool(self.plugin.sensitive_fields("item"))
        for pk, ext, attrs in rows:
            self.item_ext[pk] = ext
            # The hook sees plaintext, like every hook; unsealing only when the domain seals anything.
            self.item_attrs[pk] = (
                attributes_unseal(plugin=self.plugin, kind="item", attributes=attrs or {})
                if sealed
                else (attrs or {})
            )
            keys: list[str] = []
            for name in fields:
                value = (attrs or {}).get(name)
                if isinstance(value, list):
                    keys.extend(f"{name}:{v}" for v in value if isinstance(v, (str, int, float)))
                elif isinstance(value, (str, int, float)):
                    keys.append(f"{name}:{value}")
            # A domain without categorical item fields: the items themselves are the interests.
            self.item_keys[pk] = tuple(keys) if fields else (f"item:{ext}",)
        self.interest_fields = fields

    def user_record(self, external_id: str, attributes: dict[str, Any]) -> UserRecord:
        if self.users_sealed:
            plain = attributes_unseal(plugin=self.plugin, kind="user", attributes=attributes or {})
        else:
            plain = dict(attributes or {})
        return UserRecord(user_id=external_id, attributes=plain)


def _segment(n_events: int, recency_days: float | None, tenure_days: float, per_week: float) -> str:
    """Rule-based segment; thresholds documented in docs/operations.md."""
    if n_events == 0 or recency_days is None:
        return "inactive"
    if recency_days > 30:
        return "dormant"
    if tenure_days < 7:
        return "new"
    if per_week >= 20:
        return "power"
    return "active"


def profile_compute(
    *, ctx: _Context, external_id: str, attributes: dict[str, Any], events: Sequence[tuple]
) -> dict[str, Any]:
    """One user's profile fields from their events (oldest first).

    ``events`` rows are ``(item_pk, type, timestamp, value, context)``.
    """
    n = len(events)
    hours = [0] * 24
    weekdays = [0] * 7
    interest: dict[str, float] = defaultdict(float)
    sessions: list[dict[str, Any]] = []
    days: set[dt.date] = set()
    cur: dict[str, Any] | None = None
    prev_ts: dt.datetime | None = None
    item_ext = ctx.item_ext
    item_keys = ctx.item_keys
    weights = ctx.weights
    for item_pk, etype, ts, _value, _context in events:
        hours[ts.hour] += 1
        weekdays[ts.weekday()] += 1
        days.add(ts.date())
        w = weights.get(etype, 0.0)
        if item_pk is not None and w > 0:
            for key in item_keys.get(item_pk, ()):
                interest[key] += w
        if cur is None or prev_ts is None or ts - prev_ts > SESSION_GAP:
            cur = {"start": ts, "end": ts, "n_events": 0, "items": []}
            sessions.append(cur)
        cur["end"] = ts
        cur["n_events"] += 1
        if item_pk is not None and len(cur["items"]) < 10:
            cur["items"].append(item_ext.get(item_pk))
        prev_ts = ts
    total = sum(interest.values())
    interests = (
        [
            {"key": k, "weight": round(v / total, 4)}
            for k, v in sorted(interest.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_INTERESTS]
        ]
        if total > 0
        else []
    )
    first = events[0][2] if n else None
    last = events[-1][2] if n else None
    recency = (ctx.now - last).total_seconds() / 86400 if last else None
    tenure = (ctx.now - first).total_seconds() / 86400 if first else 0.0
    span_weeks = max((last - first).total_seconds() / (7 * 86400), 1.0) if n else 1.0
    per_week = n / span_weeks
    activity = {
        "hours": hours,
        "weekdays": weekdays,
        "frequency": {
            "events_per_active_day": round(n / len(days), 3) if days else 0.0,
            "events_per_week": round(per_week, 3),
            "active_days": len(days),
        },
        "recency_days": round(recency, 3) if recency is not None else None,
        "first_seen": first.isoformat() if first else None,
        "last_seen": last.isoformat() if last else None,
    }
    recent = [
        {"item_id": item_ext.get(i), "type": t, "timestamp": ts.isoformat()}
        for i, t, ts, _v, _c in events[-RECENT_ITEMS:][::-1]
    ]
    trajectory = {
        "recent_items": recent,
        "n_sessions": len(sessions),
        "avg_session_events": round(n / len(sessions), 3) if sessions else 0.0,
        "sessions": [
            {
                "start": s["start"].isoformat(),
                "end": s["end"].isoformat(),
                "n_events": s["n_events"],
                "items": s["items"],
            }
            for s in sessions[-RECENT_SESSIONS:][::-1]
        ],
    }
    features: dict[str, Any] = {}
    if ctx.has_features:
        records = [
            EventRecord(
                user_id=external_id,
                item_id=item_ext.get(i) if i is not None else None,
                type=t,
                timestamp=ts,
                value=v,
                context=_context_decode(c),
            )
            for i, t, ts, v, c in events
        ]
        seen = {i for i, *_ in events if i is not None}
        features = ctx.plugin.profile_features(
            records,
            ctx.user_record(external_id, attributes),
            ctx.config,
            item_attributes={item_ext[i]: ctx.item_attrs.get(i, {}) for i in seen if i in item_ext},
        )
        if ctx.features_sealed:
            features = features_seal(plugin=ctx.plugin, features=features)
        else:
            features = dict(features)
    return {
        "interests": interests,
        "trajectory": trajectory,
        "activity": activity,
        "segment": _segment(n, recency, tenure, per_week),
        "features": features,
        "n_events": n,
    }


_UPSERT_COLUMNS = (
    "tenant_id",
    "user_id",
    "interests",
    "trajectory",
    "activity",
    "segment",
    "features",
    "n_events",
    "computed_at",
)
_JSON_FIELDS = ("interests", "trajectory", "activity", "features")


def _upsert(
    *, tenant_id: int, profiles: Sequence[tuple[int, dict[str, Any]]], computed_at: dt.datetime
) -> None:
    """Insert or update ``(user_pk, fields)`` rows: one ``INSERT … ON CONFLICT (user_id) DO UPDATE`` per 500.

    Raw SQL (the same on SQLite and PostgreSQL) because building model
    instances and preparing their values cost more than computing the
    profiles. The embedding columns are not touched: training owns them.
    """
    if not profiles:
        return
    table = connection.ops.quote_name(UserProfile._meta.db_table)
    when = connection.ops.adapt_datetimefield_value(computed_at)
    cols = ", ".join(_UPSERT_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in _UPSERT_COLUMNS[2:])
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    with connection.cursor() as cursor:
        for start in range(0, len(profiles), 500):
            part = profiles[start : start + 500]
            params: list[Any] = []
            for user_pk, f in part:
                params.extend((tenant_id, user_pk, *(dumps(f[k]) for k in _JSON_FIELDS[:3])))
                params.extend((f["segment"], dumps(f["features"]), f["n_events"], when))
            row = "(" + ", ".join(["%s"] * len(_UPSERT_COLUMNS)) + ")"
            cursor.execute(
                f"INSERT INTO {table} ({cols}) VALUES {', '.join([row] * len(part))} "
                f"ON CONFLICT (user_id) DO UPDATE SET {updates}",
                params,
            )


def _timestamp(value: Any) -> dt.datetime:
    """A raw database timestamp → aware UTC datetime (SQLite gives text, PostgreSQL datetimes)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _context_decode(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return json.loads(value) if value not in ("", "{}") else {}
    return value or {}


def _events_by_user(tenant: Tenant, lo: int, hi: int) -> dict[int, list[tuple]]:
    """Events of the users with ``lo <= pk <= hi``, oldest first, as ``{user_pk: [(item, type, ts, value, context)]}``.

    One query per batch of users on the (tenant, user, timestamp) index; the
    rows are read raw (no ORM converters: they cost more than the profile
    itself), timestamps parsed here and contexts decoded only when a hook
    reads them.
    """
    qs = (
        Event.objects.for_tenant(tenant)
        .filter(user_id__gte=lo, user_id__lte=hi)
        .order_by("user_id", "timestamp", "id")
    )
    ts_column = "timestamp"
    if connection.vendor == "sqlite":
        # As text: sqlite3's registered timestamp converter (a regex per row) is the slowest part otherwise.
        qs = qs.annotate(ts_text=Cast("timestamp", output_field=TextField()))
        ts_column = "ts_text"
    qs = qs.values_list("user_id", "item_id", "type", ts_column, "value", "context")
    sql, params = qs.query.sql_with_params()
    out: dict[int, list[tuple]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(20_000):
            for user_id, item_id, etype, ts, value, context in rows:
                out[user_id].append((item_id, etype, _timestamp(ts), value, context))
    return out


# --------------------------------------------------------------------------- services
def profile_build_bulk(
    *,
    tenant: Tenant,
    batch_size: int = BATCH_SIZE,
    now: dt.datetime | None = None,
    progress: Callable[[ProfileProgress], None] | None = None,
    user_pk_range: tuple[int, int] | None = None,
) -> int:
    """Compute and store the profile of every user of ``tenant`` (users without events too).

    Users are taken in batches of ``batch_size`` (by primary key); each batch
    costs one event query and one upsert statement.

    Args:
        user_pk_range: only the users with ``lo <= pk <= hi`` (one partition,
            so a large tenant can be built by one task per range).

    Returns:
        The number of profiles written.
    """
    now = now or timezone.now()
    users_qs = EndUser.objects.for_tenant(tenant).order_by("pk")
    if user_pk_range is not None:
        users_qs = users_qs.filter(pk__gte=user_pk_range[0], pk__lte=user_pk_range[1])
    users = list(users_qs.values_list("pk", "external_id", "attributes"))
    total = len(users)
    started = time.monotonic()

    def report(done: int) -> None:
        if progress is not None and done:
            elapsed = time.monotonic() - started
            progress(
                ProfileProgress(
                    "profiles", done, total, elapsed / done * (total - done), f"{done}/{total} users"
                )
            )

    done = _build_users(tenant=tenant, users=users, batch_size=batch_size, now=now, report=report)
    if progress is not None and total == 0:
        progress(ProfileProgress("profiles", 0, 0, 0.0, "no users"))
    return done


def _build_users(
    *,
    tenant: Tenant,
    users: Sequence[tuple[int, str, Any]],
    batch_size: int,
    now: dt.datetime,
    report: Callable[[int], None],
) -> int:
    ctx = _Context(tenant, now)
    done = 0
    for start in range(0, len(users), batch_size):
        chunk = users[start : start + batch_size]
        events = _events_by_user(tenant, chunk[0][0], chunk[-1][0])
        rows = [
            (pk, profile_compute(ctx=ctx, external_id=ext, attributes=attrs, events=events.get(pk, ())))
            for pk, ext, attrs in chunk
        ]
        with transaction.atomic():
            _upsert(tenant_id=tenant.pk, profiles=rows, computed_at=now)
        done += len(rows)
        report(done)
    return done


def profile_refresh_user(*, tenant: Tenant, external_id: str, now: dt.datetime | None = None) -> UserProfile:
    """Recompute one user's profile from their events now (and their embedding under the active model).

    Raises:
        NotFound: no such user in ``tenant``.
    """
    user = EndUser.objects.for_tenant(tenant).filter(external_id=external_id).first()
    if user is None:
        raise NotFound(f"No user {external_id!r}.")
    now = now or timezone.now()
    ctx = _Context(tenant, now)
    rows = _events_by_user(tenant, user.pk, user.pk).get(user.pk, [])
    fields = profile_compute(ctx=ctx, external_id=external_id, attributes=user.attributes, events=rows)
    _upsert(tenant_id=tenant.pk, profiles=[(user.pk, fields)], computed_at=now)
    _embedding_refresh(tenant=tenant, user=user, rows=rows, ctx=ctx)
    return UserProfile.objects.for_tenant(tenant).get(user=user)


def _embedding_refresh(*, tenant: Tenant, user: EndUser, rows: Sequence[tuple], ctx: _Context) -> None:
    """The user's vector from the active model's NumPy encoder (no TensorFlow), when there is one."""
    from platform_core.jobs.selectors import model_version_active

    version = model_version_active(tenant=tenant)
    if version is None:
        return
    try:
        from mlcore.artifacts import artifact_load
        from platform_core.jobs.artifact_store import artifact_local_path

        artifact = _artifact_cached(str(artifact_local_path(version=version)), artifact_load)
        if artifact.encoder is None:
            return
        seq = [
            (ctx.item_ext.get(i), t)
            for i, t, _ts, _v, _c in rows
            if i is not None and ctx.weights.get(t, 0) > 0
        ]
        vector = artifact.encoder.embed([s[0] for s in seq], event_types=[s[1] for s in seq])
    except Exception:  # the profile is still fresh; the vector waits for the next training
        log.exception("embedding refresh of user %s failed", user.pk)
        return
    if vector is None:
        return
    UserProfile.objects.for_tenant(tenant).filter(user=user).update(
        embedding=np.asarray(vector, dtype="<f4").tobytes(), model_version=version, embedded_at=timezone.now()
    )


_ARTIFACTS: dict[str, Any] = {}


def _artifact_cached(path: str, loader: Callable[[str], Any]) -> Any:
    if path not in _ARTIFACTS:
        if len(_ARTIFACTS) > 16:
            _ARTIFACTS.clear()
        _ARTIFACTS[path] = loader(path)
    return _ARTIFACTS[path]


# (tenant pk, external id) → monotonic time until which this process knows a refresh is pending.
_REFRESH_PENDING: dict[tuple[int, str], float] = {}
_REFRESH_PENDING_MAX = 200_000


def profile_refresh_memo_clear() -> None:
    """Forget this process's record of pending refreshes (tests: after the cache is cleared)."""
    _REFRESH_PENDING.clear()


def profile_refresh_request(*, tenant: Tenant, external_ids: Iterable[str]) -> list[str]:
    """Ask for a debounced refresh of these users' profiles after new events.

    A user already waiting for a refresh is not queued again: the pending task
    reads the events when it runs, so it sees the new ones. The debounce uses
    the cache (``cache.add``), which is shared across processes when the cache
    is Redis or the database. Users this process itself queued within the
    debounce window are skipped before the cache is asked (one dict lookup
    instead of one cache call each: ingestion calls this for every batch).

    Returns:
        The external ids queued now.
    """
    delay = int(getattr(settings, "PROFILE_REFRESH_DEBOUNCE_SECONDS", 30))
    tenant_id = tenant.pk
    now = time.monotonic()
    pending = _REFRESH_PENDING
    fresh = [ext for ext in dict.fromkeys(external_ids) if pending.get((tenant_id, ext), 0.0) <= now]
    if not fresh:
        return []
    queued = [ext for ext in fresh if cache.add(f"profile-refresh:{tenant_id}:{ext}", 1, timeout=delay)]
    if len(pending) > _REFRESH_PENDING_MAX:
        for key in [k for k, until in pending.items() if until <= now]:
            del pending[key]
        if len(pending) > _REFRESH_PENDING_MAX:
            pending.clear()
    # Known pending until the cache entry just added expires.
    until = now + delay
    for ext in queued:
        pending[(tenant_id, ext)] = until
    if queued:
        from platform_core.profiles.tasks import refresh_users

        transaction.on_commit(lambda: refresh_users.apply_async(args=[tenant_id, queued], countdown=delay))
    return queued


def profile_embeddings_store(
    *, tenant: Tenant, version: Any, user_ids: Sequence[str], embeddings: np.ndarray
) -> int:
    """Store the users' vectors from a newly promoted version; clear vectors of an older version.

    Returns:
        The number of profiles given a vector.
    """
    if len(user_ids) != len(embeddings):
        raise ValueError(f"{len(user_ids)} user ids but {len(embeddings)} embeddings")
    by_ext = dict(
        EndUser.objects.for_tenant(tenant).values_list("external_id", "pk").iterator(chunk_size=10_000)
    )
    now = timezone.now()
    vectors = np.asarray(embeddings, dtype="<f4")
    rows = [
        UserProfile(
            tenant=tenant,
            user_id=by_ext[ext],
            embedding=vectors[i].tobytes(),
            model_version=version,
            embedded_at=now,
        )
        for i, ext in enumerate(user_ids)
        if ext in by_ext  # a user erased while training ran stays erased
    ]
    with transaction.atomic():
        for start in range(0, len(rows), BATCH_SIZE):
            UserProfile.unscoped.bulk_create(
                rows[start : start + BATCH_SIZE],
                update_conflicts=True,
                unique_fields=["user"],
                update_fields=["embedding", "model_version", "embedded_at"],
                batch_size=500,
            )
        # Vectors from another version live in another space: drop them rather than mix.
        UserProfile.objects.for_tenant(tenant).exclude(model_version=version).exclude(embedding=None).update(
            embedding=None, model_version=None, embedded_at=None
        )
    return len(rows)
