"""Writes of the profiles app: build personas in bulk, refresh one user, store embeddings.

A profile is derived data: it is recomputed from the user's events, never
edited. ``profile_build_bulk`` streams the tenant's events ordered by user and
writes in batches with one upsert statement per batch (embeddings are left
alone: training writes them).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.utils import timezone

from domains.base import DomainPlugin, EventRecord, UserRecord
from platform_core.catalog.models import EndUser, Item
from platform_core.common.broker import BrokerUnavailable, task_publish
from platform_core.common.cache import cache_add_many
from platform_core.common.errors import NotFound
from platform_core.events.models import Event
from platform_core.plugins.crypto import attributes_unseal, context_unseal, features_seal
from platform_core.plugins.selectors import tenant_config_get, tenant_plugin_get
from platform_core.profiles.models import ProfileRefreshOutbox, UserProfile
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
        self.sealed_types = frozenset(self.plugin.sensitive_event_types())
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


def _profile_empty(*, ctx: _Context, external_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """The profile of a user without events (the hook still runs: it may read user attributes)."""
    return {
        "interests": [],
        "trajectory": {"recent_items": [], "n_sessions": 0, "avg_session_events": 0.0, "sessions": []},
        "activity": {
            "hours": [0] * 24,
            "weekdays": [0] * 7,
            "frequency": {"events_per_active_day": 0.0, "events_per_week": 0.0, "active_days": 0},
            "recency_days": None,
            "first_seen": None,
            "last_seen": None,
        },
        "segment": _segment(0, None, 0.0, 0.0),
        "features": _features(ctx=ctx, external_id=external_id, attributes=attributes, events=()),
        "n_events": 0,
    }


def profile_compute(
    *, ctx: _Context, external_id: str, attributes: dict[str, Any], events: Sequence[tuple]
) -> dict[str, Any]:
    """One user's profile fields from their events (oldest first).

    ``events`` rows are ``(item_pk, type, timestamp, value, context, iso)`` (see ``_events_by_user``).
    """
    n = len(events)
    if not n:
        return _profile_empty(ctx=ctx, external_id=external_id, attributes=attributes)
    hours = [0] * 24
    weekdays = [0] * 7
    interest: dict[str, float] = {}
    # Sessions as [first event index, last event index, n_events, items].
    sessions: list[list[Any]] = []
    days: set[int] = set()
    cur: list[Any] = []
    prev_ts: dt.datetime | None = None
    item_ext = ctx.item_ext
    item_keys = ctx.item_keys
    weights = ctx.weights
    for idx, (item_pk, etype, ts, _value, _context, _iso) in enumerate(events):
        hours[ts.hour] += 1
        day = ts.toordinal()
        weekdays[(day + 6) % 7] += 1  # toordinal() 1 is a Monday
        days.add(day)
        if item_pk is not None:
            w = weights.get(etype, 0.0)
            if w > 0:
                for key in item_keys.get(item_pk, ()):
                    interest[key] = interest.get(key, 0.0) + w
        if prev_ts is None or ts - prev_ts > SESSION_GAP:
            cur = [idx, idx, 0, []]
            sessions.append(cur)
        cur[1] = idx
        cur[2] += 1
        if item_pk is not None and len(cur[3]) < 10:
            cur[3].append(item_ext.get(item_pk))
        prev_ts = ts
    interests: list[dict[str, Any]] = []
    if interest:
        total = sum(interest.values())
        if total > 0:
            # (-weight, key) tuples sort in C: heaviest first, ties by key.
            top = sorted([(-v, k) for k, v in interest.items()])[:TOP_INTERESTS]
            interests = [{"key": k, "weight": round(-v / total, 4)} for v, k in top]
    first_row, last_row = events[0], events[-1]
    first, last = first_row[2], last_row[2]
    recency = (ctx.now - last).total_seconds() / 86400
    tenure = (ctx.now - first).total_seconds() / 86400
    span_weeks = max((last - first).total_seconds() / (7 * 86400), 1.0)
    per_week = n / span_weeks
    recent = [
        {"item_id": item_ext.get(e[0]), "type": e[1], "timestamp": e[5]} for e in events[-RECENT_ITEMS:][::-1]
    ]
    activity = {
        "hours": hours,
        "weekdays": weekdays,
        "frequency": {
            "events_per_active_day": round(n / len(days), 3),
            "events_per_week": round(per_week, 3),
            "active_days": len(days),
        },
        "recency_days": round(recency, 3),
        "first_seen": first_row[5],
        "last_seen": last_row[5],
    }
    trajectory = {
        "recent_items": recent,
        "n_sessions": len(sessions),
        "avg_session_events": round(n / len(sessions), 3),
        "sessions": [
            {"start": events[s[0]][5], "end": events[s[1]][5], "n_events": s[2], "items": s[3]}
            for s in sessions[-RECENT_SESSIONS:][::-1]
        ],
    }
    return {
        "interests": interests,
        "trajectory": trajectory,
        "activity": activity,
        "segment": _segment(n, recency, tenure, per_week),
        "features": _features(ctx=ctx, external_id=external_id, attributes=attributes, events=events),
        "n_events": n,
    }


def _features(
    *, ctx: _Context, external_id: str, attributes: dict[str, Any], events: Sequence[tuple]
) -> dict[str, Any]:
    """The plugin's ``profile_features`` on plain records (sealed when the domain says so)."""
    if not ctx.has_features:
        return {}
    item_ext = ctx.item_ext
    sealed = ctx.sealed_types  # the hooks read sensitive context fields in plaintext
    records = [
        EventRecord(
            external_id,
            item_ext.get(i),  # get(None) is None
            t,
            ts,
            v,
            context_unseal(context=_context_decode(c)) if t in sealed else _context_decode(c),
        )
        for i, t, ts, v, c, _iso in events
    ]
    item_attrs = ctx.item_attrs
    seen = {e[0] for e in events}
    features = ctx.plugin.profile_features(
        records,
        ctx.user_record(external_id, attributes),
        ctx.config,
        item_attributes={item_ext[i]: item_attrs.get(i, {}) for i in seen if i in item_ext},
    )
    if ctx.features_sealed:
        return features_seal(plugin=ctx.plugin, features=features)
    return dict(features)


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
    """Insert or update ``(user_pk, fields)`` rows (PostgreSQL: COPY into a temporary table, then one upsert)."""
    if not profiles:
        return
    if connection.vendor == "postgresql":
        _upsert_copy(tenant_id=tenant_id, profiles=profiles, computed_at=computed_at)
    else:
        _upsert_values(tenant_id=tenant_id, profiles=profiles, computed_at=computed_at)


def _upsert_values(
    *, tenant_id: int, profiles: Sequence[tuple[int, dict[str, Any]]], computed_at: dt.datetime
) -> None:
    """One ``INSERT … ON CONFLICT (user_id) DO UPDATE`` per 500 rows.

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
    with connection.cursor() as cursor:
        for start in range(0, len(profiles), 500):
            part = profiles[start : start + 500]
            params: list[Any] = []
            for user_pk, f in part:
                params.extend((tenant_id, user_pk, *(_json(f[k]).decode() for k in _JSON_FIELDS[:3])))
                params.extend((f["segment"], _json(f["features"]).decode(), f["n_events"], when))
            row = "(" + ", ".join(["%s"] * len(_UPSERT_COLUMNS)) + ")"
            cursor.execute(
                f"INSERT INTO {table} ({cols}) VALUES {', '.join([row] * len(part))} "
                f"ON CONFLICT (user_id) DO UPDATE SET {updates}",
                params,
            )


_JSON_FALLBACK = json.JSONEncoder(separators=(",", ":")).encode


def _json(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes: orjson (about 5× the standard encoder on these dicts).

    Keys that are not strings become strings as with ``json``; values orjson
    refuses (an int beyond 64 bits, a float subclass such as NumPy's) go
    through the standard encoder.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return _JSON_FALLBACK(value).encode()


_COPY_TABLE = "profile_upsert_rows"


def _upsert_copy(
    *, tenant_id: int, profiles: Sequence[tuple[int, dict[str, Any]]], computed_at: dt.datetime
) -> None:
    """COPY the rows into a temporary table and upsert from it in one statement.

    COPY's text format costs the server less than parsing one large
    ``VALUES`` list, and the client sends the JSON as it is (no quoting).
    The upsert does not wait for its WAL flush (``synchronous_commit off``):
    profiles are derived data, and the job's final status is committed
    synchronously after them, which flushes the WAL up to it.
    """
    table = connection.ops.quote_name(UserProfile._meta.db_table)
    buf = io.BytesIO()
    write = buf.write
    for user_pk, f in profiles:
        # JSON text holds no raw tab or newline (they are escaped); backslashes are COPY's escape character.
        json_cols = b"\t".join(_json(f[k]).replace(b"\\", b"\\\\") for k in _JSON_FIELDS)
        write(f"{user_pk}\t{f['segment']}\t{f['n_events']}\t".encode() + json_cols + b"\n")
    buf.seek(0)
    cols = ", ".join(_UPSERT_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in _UPSERT_COLUMNS[2:])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_COPY_TABLE} (user_id bigint, segment text, "
            "n_events integer, interests jsonb, trajectory jsonb, activity jsonb, features jsonb) "
            "ON COMMIT DELETE ROWS"
        )
        cursor.cursor.copy_expert(
            f"COPY {_COPY_TABLE} (user_id, segment, n_events, interests, trajectory, activity, features) "
            "FROM STDIN",
            buf,
        )
        cursor.execute(
            f"INSERT INTO {table} ({cols}) SELECT %s, user_id, interests, trajectory, activity, segment, "
            f"features, n_events, %s FROM {_COPY_TABLE} ON CONFLICT (user_id) DO UPDATE SET {updates}",
            [tenant_id, computed_at],
        )
        cursor.execute(f"TRUNCATE {_COPY_TABLE}")


def _timestamp(value: Any) -> dt.datetime:
    """A raw database timestamp → aware UTC datetime (SQLite gives text, PostgreSQL datetimes)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _context_decode(value: Any) -> dict[str, Any]:
    if value == "{}" or not value:
        return {}
    return orjson.loads(value) if isinstance(value, str) else value


# PostgreSQL writes the ISO 8601 text of each timestamp exactly as ``datetime.isoformat()`` of an
# aware UTC datetime does (microseconds only when not zero): to_char in the server costs a
# fraction of isoformat() per event in Python.
_PG_ISO = (
    "to_char({ts} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') "
    "|| CASE WHEN mod(date_part('microseconds', {ts})::bigint, 1000000) = 0 THEN '' "
    "ELSE to_char({ts} AT TIME ZONE 'UTC', '.US') END || '+00:00'"
)


def _events_by_user(tenant: Tenant, lo: int, hi: int) -> dict[int, list[tuple]]:
    """Events of users ``lo <= pk <= hi``, oldest first: ``{user_pk: [(item, type, ts, value, context, iso)]}``.

    One query per batch of users on the (tenant, user, timestamp) index; the
    rows are read raw (no ORM converters: they cost more than the profile
    itself), timestamps parsed here, ``iso`` is the timestamp's
    ``isoformat()`` text and contexts stay text until a hook reads them.
    """
    qs = (
        Event.objects.for_tenant(tenant)
        .filter(user_id__gte=lo, user_id__lte=hi)
        .order_by("user_id", "timestamp", "id")
    )
    # Contexts as text: most are "{}" and are decoded only when a hook reads them
    # (psycopg2 would otherwise parse every jsonb value).
    qs = qs.annotate(ctx_text=Cast("context", TextField()))
    sqlite = connection.vendor == "sqlite"
    if sqlite:
        # As text: sqlite3's registered timestamp converter (a regex per row) is the slowest part otherwise.
        qs = qs.annotate(ts_text=Cast("timestamp", output_field=TextField()))
        qs = qs.values_list("user_id", "item_id", "type", "ts_text", "value", "ctx_text")
    else:
        column = f"{connection.ops.quote_name(Event._meta.db_table)}.{connection.ops.quote_name('timestamp')}"
        qs = qs.annotate(ts_iso=RawSQL(_PG_ISO.format(ts=column), [], output_field=TextField()))
        qs = qs.values_list("user_id", "item_id", "type", "timestamp", "value", "ctx_text", "ts_iso")
    sql, params = qs.query.sql_with_params()
    out: dict[int, list[tuple]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(20_000):
            if sqlite:
                # Django stores UTC as "YYYY-MM-DD HH:MM:SS[.ffffff]": the ISO text is one replace away.
                for user_id, item_id, etype, ts, value, context in rows:
                    out[user_id].append(
                        (item_id, etype, _timestamp(ts), value, context, ts.replace(" ", "T", 1) + "+00:00")
                    )
            else:
                for user_id, item_id, etype, ts, value, context, iso in rows:
                    out[user_id].append((item_id, etype, ts, value, context, iso))
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


def profile_refresh_user(
    *,
    tenant: Tenant,
    external_id: str | None = None,
    user_pk: int | None = None,
    now: dt.datetime | None = None,
) -> UserProfile:
    """Recompute one user's profile from their events now (and their embedding under the active model).

    The user is named by ``external_id`` or by internal ``user_pk`` (what tasks carry).

    Raises:
        NotFound: no such user in ``tenant``.
    """
    users = EndUser.objects.for_tenant(tenant)
    user = (
        users.filter(pk=user_pk) if user_pk is not None else users.filter(external_id=external_id)
    ).first()
    if user is None:
        raise NotFound(f"No user {external_id!r}." if user_pk is None else f"No user #{user_pk}.")
    external_id = user.external_id
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
            (ctx.item_ext.get(i), t) for i, t, *_rest in rows if i is not None and ctx.weights.get(t, 0) > 0
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


# (tenant pk, user pk) → monotonic time until which this process knows a refresh is pending.
_REFRESH_PENDING: dict[tuple[int, int], float] = {}
_REFRESH_PENDING_MAX = 200_000


def profile_refresh_memo_clear() -> None:
    """Forget this process's record of pending refreshes (tests: after the cache is cleared)."""
    _REFRESH_PENDING.clear()


def profile_refresh_request(*, tenant: Tenant, user_pks: Iterable[int]) -> list[int]:
    """Ask for a debounced refresh of these users' profiles after new events.

    A user already waiting for a refresh is not queued again: the pending task
    reads the events when it runs, so it sees the new ones. The debounce uses
    the cache (``cache.add``), which is shared across processes when the cache
    is Redis or the database. Users this process itself queued within the
    debounce window are skipped before the cache is asked (one dict lookup
    instead of one cache call each: ingestion calls this for every batch).

    Users are named by internal pk, never by external id: task arguments and
    results are kept (django-celery-results) and must not outlive an erasure
    with the id a client knows the user by.

    An outbox row per queued user is written in the caller's transaction, and
    the task is published after the commit without retries: with the broker
    down the request still succeeds and :func:`profile_outbox_drain` sends the
    refresh once the broker is back.

    Returns:
        The user pks queued now.
    """
    delay = int(getattr(settings, "PROFILE_REFRESH_DEBOUNCE_SECONDS", 30))
    tenant_id = tenant.pk
    now = time.monotonic()
    pending = _REFRESH_PENDING
    fresh = [pk for pk in dict.fromkeys(user_pks) if pending.get((tenant_id, pk), 0.0) <= now]
    if not fresh:
        return []
    added = cache_add_many(keys=[f"profile-refresh:{tenant_id}:{pk}" for pk in fresh], value=1, timeout=delay)
    queued = [pk for pk, ok in zip(fresh, added, strict=True) if ok]
    if len(pending) > _REFRESH_PENDING_MAX:
        for key in [k for k, until in pending.items() if until <= now]:
            del pending[key]
        if len(pending) > _REFRESH_PENDING_MAX:
            pending.clear()
    # Known pending until the cache entry just added expires.
    until = now + delay
    for pk in queued:
        pending[(tenant_id, pk)] = until
    if queued:
        stamp = timezone.now()
        ProfileRefreshOutbox.objects.for_tenant(tenant).bulk_create(
            [ProfileRefreshOutbox(tenant=tenant, user_id=pk, created_at=stamp) for pk in queued]
        )
        transaction.on_commit(lambda: _refresh_publish(tenant_id=tenant_id, user_pks=queued, delay=delay))
    return queued


def _refresh_publish(*, tenant_id: int, user_pks: list[int], delay: int) -> bool:
    """Send one refresh task; a broker that is down is logged, the outbox keeps the request."""
    from platform_core.profiles.tasks import refresh_users

    try:
        task_publish(task=refresh_users, args=[tenant_id, user_pks], countdown=delay)
    except BrokerUnavailable as exc:
        log.warning("profile refresh of %d user(s) left in the outbox: %s", len(user_pks), exc.message)
        return False
    return True


def profile_outbox_done(*, tenant: Tenant, user_pks: Sequence[int], before: dt.datetime) -> int:
    """Delete the outbox rows of refreshes served by a task that started at ``before``."""
    deleted, _ = (
        ProfileRefreshOutbox.objects.for_tenant(tenant)
        .filter(user_id__in=list(user_pks), created_at__lte=before)
        .delete()
    )
    return deleted


def profile_outbox_drain(*, now: dt.datetime | None = None, limit: int = 5000) -> int:
    """Send again the refreshes whose task never ran (broker down at ingestion, message lost).

    A row is due once it is older than the debounce plus
    ``PROFILE_OUTBOX_RESEND_SECONDS``; it is re-stamped when sent, so a
    broker still down or a busy queue does not resend it every run. A
    duplicate refresh is harmless (it recomputes from the events).

    Returns:
        The number of users whose refresh was sent.
    """
    now = now or timezone.now()
    wait = int(getattr(settings, "PROFILE_REFRESH_DEBOUNCE_SECONDS", 30)) + int(
        getattr(settings, "PROFILE_OUTBOX_RESEND_SECONDS", 120)
    )
    # Crossing tenants on purpose: housekeeping over every tenant, sent per tenant.
    due = list(
        ProfileRefreshOutbox.unscoped.filter(created_at__lte=now - dt.timedelta(seconds=wait))
        .order_by("created_at")
        .values_list("pk", "tenant_id", "user_id")[:limit]
    )
    alive = set(EndUser.unscoped.filter(pk__in={u for _, _, u in due}).values_list("pk", flat=True))
    gone = [pk for pk, _, user_pk in due if user_pk not in alive]
    ProfileRefreshOutbox.unscoped.filter(pk__in=gone).delete()  # users erased meanwhile
    by_tenant: dict[int, set[int]] = defaultdict(set)
    for _, tenant_id, user_pk in due:
        if user_pk in alive:
            by_tenant[tenant_id].add(user_pk)
    sent = 0
    for tenant_id, rows in by_tenant.items():
        users = sorted(rows)
        if not _refresh_publish(tenant_id=tenant_id, user_pks=users, delay=0):
            break  # the broker is still down: the next run tries again
        ProfileRefreshOutbox.unscoped.filter(tenant_id=tenant_id, user_id__in=users).update(
            created_at=timezone.now()  # the send time: the task deletes rows stamped before it starts
        )
        sent += len(users)
    return sent


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
