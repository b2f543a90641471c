"""Bulk import of events from CSV, CSV.gz or Parquet (``manage.py import_events``).

The file is streamed in chunks (pandas ``read_csv(chunksize=…)``, pyarrow
``iter_batches``) and validated column-wise. On PostgreSQL each chunk is
COPY'd into a temporary staging table and moved with one ``INSERT … SELECT …
ON CONFLICT DO NOTHING``, which resolves users and items by join; on SQLite
it goes through the same multi-row insert as the REST API. Rows without an
``event_id`` get one derived from their content, so importing a file twice
inserts nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from domains.base import DomainPlugin
from platform_core.catalog.models import EndUser, Item
from platform_core.catalog.services import (
    enduser_ids_create,
    enduser_ids_resolve,
    item_ids_create,
    item_ids_resolve,
)
from platform_core.common.errors import ValidationFailed
from platform_core.common.limits import (
    CONTROL_PATTERN,
    DOT_SEGMENTS,
    RULE_CONTROL,
    RULE_DOTS,
    RULE_SLASH,
)
from platform_core.events.errors import EventError
from platform_core.events.models import Event
from platform_core.events.sensitive import context_text_seal
from platform_core.events.validation import (
    MAX_EVENT_ID,
    MAX_EXTERNAL_ID,
    MAX_TYPE,
    context_bounds_check,
    context_plain,
)
from platform_core.events.writer import events_insert
from platform_core.plugins.selectors import tenant_plugin_get
from platform_core.tenancy.models import Tenant

REQUIRED_COLUMNS = ("user_id", "item_id", "type", "timestamp")
OPTIONAL_COLUMNS = ("event_id", "value")
CONTEXT_PREFIX = "context_"
STAGING = "import_events_staging"


@dataclass
class ImportResult:
    rows: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    users_created: int = 0
    items_created: int = 0
    reasons: list[str] = field(default_factory=list)  # the first ``max_reasons`` rejections

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# --------------------------------------------------------------------------- reading
def _chunks(path: Path, chunksize: int) -> Iterator[pd.DataFrame]:
    """The file as string-typed chunks (empty string = missing)."""
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunksize):
            frame = batch.to_pandas()
            for col in frame.columns:
                series = frame[col]
                if pd.api.types.is_datetime64_any_dtype(series):
                    if series.dt.tz is None:
                        series = series.dt.tz_localize("UTC")
                    text = series.map(lambda t: t.isoformat() if not pd.isna(t) else "")
                else:
                    text = series.astype(object).where(series.notna(), "").astype(str)
                frame[col] = text
            yield frame
    elif name.endswith((".csv", ".csv.gz", ".gz")):
        yield from pd.read_csv(
            path, dtype=str, keep_default_na=False, chunksize=chunksize, compression="infer"
        )
    else:
        raise ValidationFailed(
            f"{path.name}: expected a .csv, .csv.gz or .parquet file",
            code=EventError.IMPORT_FILE,
            fields={"file": ["must be .csv, .csv.gz or .parquet"]},
        )


def _columns_check(columns: list[str]) -> list[str]:
    """The context columns; ValidationFailed for missing or unknown columns."""
    errors: dict[str, list[str]] = {}
    for col in REQUIRED_COLUMNS:
        if col not in columns:
            errors[col] = ["is a required column"]
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    for col in columns:
        if col not in known and not col.startswith(CONTEXT_PREFIX):
            errors[col] = [f"is not a known column (expected {sorted(known)} or {CONTEXT_PREFIX}*)"]
    if errors:
        first = next(iter(errors))
        raise ValidationFailed(
            f"Bad columns: {first}: {errors[first][0]}", code=EventError.IMPORT_FILE, fields=errors
        )
    return [c for c in columns if c.startswith(CONTEXT_PREFIX)]


# --------------------------------------------------------------------------- validation
def _cell(value: str) -> Any:
    """A context cell: JSON scalars (numbers, true/false) as such, anything else as text."""
    if value and (value[0] in "-0123456789tfn["):
        try:
            return orjson.loads(value)  # no RecursionError on a deeply nested cell
        except orjson.JSONDecodeError:
            return value
    return value


class _ChunkValidator:
    def __init__(self, *, plugin: DomainPlugin, context_columns: list[str], now: dt.datetime) -> None:
        self.plugin = plugin
        self.context_columns = context_columns
        self.context_names = [c[len(CONTEXT_PREFIX) :] for c in context_columns]
        self.latest = pd.Timestamp(now + dt.timedelta(seconds=settings.EVENTS_MAX_FUTURE_SECONDS))
        self.earliest = pd.Timestamp("1970-01-01", tz="UTC")
        self._domain_cache: dict[tuple[str, bool, str], dict[str, list[str]]] = {}

    def _domain(self, type_: str, has_item: bool, context: dict[str, Any], context_json: str) -> str | None:
        key = (type_, has_item, context_json)
        found = self._domain_cache.get(key)
        if found is None:
            found = self.plugin.validate_event(
                {"type": type_, "item_id": "x" if has_item else None, "context": context}, path=""
            )
            # Bounded: contexts with amounts are mostly unique and would only grow it.
            if len(self._domain_cache) < 10_000 and len(context_json) <= 128:
                self._domain_cache[key] = found
        if not found:
            return None
        return "; ".join(f"{k}: {', '.join(v)}" for k, v in found.items())

    def clean(self, frame: pd.DataFrame, first_row: int) -> tuple[pd.DataFrame, list[tuple[int, str]], int]:
        """Valid rows as typed columns, ``(row_number, reason)`` for some bad ones, and how many were bad."""
        n = len(frame)
        bad = np.zeros(n, dtype=bool)
        why: dict[int, list[str]] = {}

        def flag(mask: np.ndarray, message: str) -> None:
            mask = np.asarray(mask, dtype=bool)
            for pos in np.flatnonzero(mask & ~bad)[:1000]:
                why.setdefault(int(pos), []).append(message)
            bad[mask] = True

        user = frame["user_id"].str.strip()
        item = frame["item_id"].str.strip()
        type_ = frame["type"].str.strip()
        flag((user == "").to_numpy(), "user_id: is required")
        flag(
            (user.str.len() > MAX_EXTERNAL_ID).to_numpy(),
            f"user_id: must be at most {MAX_EXTERNAL_ID} characters",
        )
        flag(
            (item.str.len() > MAX_EXTERNAL_ID).to_numpy(),
            f"item_id: must be at most {MAX_EXTERNAL_ID} characters",
        )
        flag((type_ == "").to_numpy(), "type: is required")
        flag((type_.str.len() > MAX_TYPE).to_numpy(), f"type: must be at most {MAX_TYPE} characters")
        ts = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce", format="ISO8601")
        flag(ts.isna().to_numpy(), "timestamp: must be an ISO 8601 datetime")
        flag(
            (ts < self.earliest).fillna(False).to_numpy(),
            "timestamp: must not be before 1970-01-01T00:00:00Z",
        )
        flag((ts > self.latest).fillna(False).to_numpy(), "timestamp: is too far in the future")
        if "value" in frame:
            raw_value = frame["value"].str.strip()
            value = pd.to_numeric(raw_value, errors="coerce")
            flag(
                ((raw_value != "") & (value.isna() | ~np.isfinite(value.fillna(0)))).to_numpy(),
                "value: must be a finite number",
            )
        else:
            raw_value = pd.Series([""] * n, index=frame.index)
            value = pd.Series(np.nan, index=frame.index)
        if "event_id" in frame:
            event_id = frame["event_id"].str.strip()
            flag(
                (event_id.str.len() > MAX_EVENT_ID).to_numpy(),
                f"event_id: must be at most {MAX_EVENT_ID} characters",
            )
        else:
            event_id = pd.Series([""] * n, index=frame.index)
        for name, ids in (("user_id", user), ("item_id", item), ("event_id", event_id)):
            for mask, rule in _id_problems(ids, routed=name != "event_id"):
                flag(mask, f"{name}: {rule}")

        contexts = np.full(n, "{}", dtype=object)
        types = type_.to_numpy(dtype=object)
        has_item = (item != "").to_numpy()
        if self.context_columns:
            cells = frame[self.context_columns].to_numpy(dtype=object)
            has_context = (cells != "").any(axis=1)
        else:
            has_context = np.zeros(n, dtype=bool)
        # Rows without context: the domain's answer depends only on (type, has item),
        # so ask once per combination instead of once per row.
        plain = ~bad & ~has_context
        if plain.any():
            combos = pd.DataFrame({"t": types[plain], "i": has_item[plain]}).drop_duplicates()
            for t, i in combos.itertuples(index=False, name=None):
                problem = self._domain(t, bool(i), {}, "{}")
                if problem:
                    flag(plain & (types == t) & (has_item == i), problem)
        limit = settings.EVENTS_MAX_CONTEXT_BYTES
        for pos in np.flatnonzero(~bad & has_context):
            context = {
                name: _cell(cell)
                for name, cell in zip(self.context_names, cells[pos], strict=True)
                if cell != ""
            }
            text = json.dumps(context, separators=(",", ":"), ensure_ascii=False)
            contexts[pos] = text
            found: dict[str, list[str]] = {}
            if not context_plain(text, limit):
                context_bounds_check(context, "context", found)
            if found:
                flag(_one(n, pos), "; ".join(f"{k}: {', '.join(v)}" for k, v in found.items()))
                continue
            problem = self._domain(types[pos], bool(has_item[pos]), context, text)
            if problem:
                flag(_one(n, pos), problem)

        ok = ~bad
        event_id = _event_ids_fill(
            event_id=event_id,
            missing=ok & (event_id == "").to_numpy(),
            columns=(user, item, type_, frame["timestamp"], raw_value, contexts),
        )
        # Sealed after the ids above were derived from the plaintext, so a re-run gives the same ids.
        self._seal(contexts=contexts, types=types, rows=ok & has_context)
        valid = pd.DataFrame(
            {
                "row": np.arange(first_row, first_row + n)[ok],
                "event_id": event_id[ok].to_numpy(),
                "user_id": user[ok].to_numpy(),
                "item_id": item[ok].replace("", None).to_numpy(),
                "type": type_[ok].to_numpy(),
                # datetime64[ns] in UTC, naive: an object array of Timestamps costs ~15 µs a row.
                "timestamp": ts[ok].dt.tz_localize(None).to_numpy(),
                "value": value[ok].to_numpy(dtype=float),
                "context": contexts[ok],
            }
        )
        reasons = [(first_row + pos, "; ".join(msgs)) for pos, msgs in sorted(why.items())]
        return valid, reasons, int(bad.sum())

    def _seal(self, *, contexts: np.ndarray, types: np.ndarray, rows: np.ndarray) -> None:
        """Encrypt, in place, the contexts of ``rows`` whose type has sensitive fields."""
        sensitive = list(self.plugin.sensitive_event_types())
        for pos in np.flatnonzero(rows & np.isin(types, sensitive)) if sensitive else ():
            contexts[pos] = context_text_seal(plugin=self.plugin, event_type=types[pos], text=contexts[pos])


def _event_ids_fill(*, event_id: pd.Series, missing: np.ndarray, columns: tuple) -> pd.Series:
    """Rows without an ``event_id`` get ``h<blake2b-128 of the row's content>``.

    Deterministic: the same row content always gets the same id, so a second
    import of a file stores nothing again.
    """
    if not missing.any():
        return event_id
    parts = zip(*(column[missing] for column in columns), strict=True)
    event_id = event_id.copy()
    event_id[missing] = [
        "h" + hashlib.blake2b("\x1f".join(p).encode(), digest_size=16).hexdigest() for p in parts
    ]
    return event_id


def _id_problems(ids: pd.Series, *, routed: bool) -> Iterator[tuple[np.ndarray, str]]:
    """The API's id rules (``common.limits.id_problem``), column-wise: (rows breaking it, rule)."""
    yield ids.str.contains(CONTROL_PATTERN, regex=True).to_numpy(), RULE_CONTROL
    if routed:
        yield ids.str.contains("/", regex=False).to_numpy(), RULE_SLASH
        yield ids.isin(DOT_SEGMENTS).to_numpy(), RULE_DOTS


def _one(n: int, pos: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[pos] = True
    return mask


# --------------------------------------------------------------------------- writing
def _write_sqlite(*, tenant: Tenant, valid: pd.DataFrame, result: ImportResult) -> list[tuple[int, str]]:
    create = tenant.auto_create_entities
    user_ids = valid["user_id"].unique().tolist()
    item_ids = valid["item_id"].dropna().unique().tolist()
    rejected: list[tuple[int, str]] = []
    with transaction.atomic():
        users = enduser_ids_resolve(tenant=tenant, external_ids=user_ids, create=False)
        items = item_ids_resolve(tenant=tenant, external_ids=item_ids, create=False)
        if create:
            new_users = [u for u in user_ids if u not in users]
            new_items = [i for i in item_ids if i not in items]
            users.update(enduser_ids_create(tenant=tenant, external_ids=new_users))
            items.update(item_ids_create(tenant=tenant, external_ids=new_items))
            result.users_created += len(new_users)
            result.items_created += len(new_items)
        rows = []
        tid = tenant.pk
        for row, eid, uid, iid, typ, ts, val, ctx in valid.itertuples(index=False, name=None):
            user_pk = users.get(uid)
            iid = iid if isinstance(iid, str) else None  # pandas turns the None of no item into NaN
            item_pk = items.get(iid) if iid is not None else None
            if user_pk is None or (iid is not None and item_pk is None):
                rejected.append(
                    (row, "user_id: unknown user" if user_pk is None else "item_id: unknown item")
                )
                continue
            value = None if val is None or math.isnan(val) else float(val)
            when = pd.Timestamp(ts).tz_localize("UTC").to_pydatetime()
            rows.append((tid, eid, user_pk, item_pk, typ, when, value, ctx))
        inserted = events_insert(rows=rows)
    result.inserted += inserted
    result.duplicates += len(rows) - inserted
    return rejected


def _staging_create(cursor: Any) -> None:
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} ("
        "row bigint, event_id text, user_id text, item_id text, type text,"
        " ts_us bigint, value double precision, context jsonb)"
    )


def _write_postgres(*, tenant: Tenant, valid: pd.DataFrame, result: ImportResult) -> list[tuple[int, str]]:
    qn = connection.ops.quote_name
    users_t, items_t, events_t = (qn(m._meta.db_table) for m in (EndUser, Item, Event))
    buf = io.StringIO()
    # Epoch microseconds: formatting integers is far cheaper than datetimes.
    staged = valid.assign(timestamp=valid["timestamp"].to_numpy().astype("datetime64[us]").astype("int64"))
    staged.to_csv(buf, index=False, header=False)
    buf.seek(0)
    tid = tenant.pk
    rejected: list[tuple[int, str]] = []
    with transaction.atomic(), connection.cursor() as cursor:
        _staging_create(cursor)
        cursor.execute(f"TRUNCATE {STAGING}")
        cursor.cursor.copy_expert(f"COPY {STAGING} FROM STDIN WITH (FORMAT csv)", buf)
        # Temp tables get no autovacuum statistics: without them the planner
        # picks nested loops over the catalog tables.
        cursor.execute(f"ANALYZE {STAGING}")
        if tenant.auto_create_entities:
            # Django sets no database defaults: every NOT NULL column is spelled out.
            for table, col, counter, extra_cols, extra_vals in (
                (users_t, "user_id", "users_created", "", ""),
                (items_t, "item_id", "items_created", ", active", ", true"),
            ):
                cursor.execute(
                    f"INSERT INTO {table} (tenant_id, external_id, attributes, created_at, updated_at{extra_cols}) "
                    f"SELECT %s, s.{col}, '{{}}'::jsonb, now(), now(){extra_vals} FROM "
                    f"(SELECT DISTINCT {col} FROM {STAGING} WHERE {col} IS NOT NULL) s "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.tenant_id = %s AND t.external_id = s.{col}) "
                    "ON CONFLICT (tenant_id, external_id) DO NOTHING",
                    [tid, tid],
                )
                setattr(result, counter, getattr(result, counter) + cursor.rowcount)
        else:
            cursor.execute(
                f"DELETE FROM {STAGING} s WHERE NOT EXISTS (SELECT 1 FROM {users_t} u WHERE u.tenant_id = %s AND u.external_id = s.user_id) "
                f"OR (s.item_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {items_t} i WHERE i.tenant_id = %s AND i.external_id = s.item_id)) "
                "RETURNING s.row",
                [tid, tid],
            )
            rejected = [(r[0], "user_id or item_id: unknown to this tenant") for r in cursor.fetchall()]
        # Events have no database FK: lock the users and items they reference
        # (one set-based statement each) so a concurrent delete waits for this
        # chunk to commit, and the delete's trigger then removes its events.
        for table, col in ((users_t, "user_id"), (items_t, "item_id")):
            cursor.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {table} t WHERE t.tenant_id = %s AND t.external_id IN "
                f"(SELECT {col} FROM {STAGING} WHERE {col} IS NOT NULL) "
                # The lock order of REST ingestion and catalog bulk upserts: no deadlock.
                'ORDER BY t.external_id COLLATE "C" FOR KEY SHARE OF t) AS locked',
                [tid],
            )
        cursor.execute(
            f"INSERT INTO {events_t} (tenant_id, event_id, user_id, item_id, type, timestamp, value, context, received_at) "
            f"SELECT %s, s.event_id, u.id, i.id, s.type, to_timestamp(0) + s.ts_us * interval '1 microsecond', "
            f"s.value, s.context, now() FROM {STAGING} s "
            f"JOIN {users_t} u ON u.tenant_id = %s AND u.external_id = s.user_id "
            f"LEFT JOIN {items_t} i ON i.tenant_id = %s AND i.external_id = s.item_id "
            "ORDER BY s.row "
            "ON CONFLICT (tenant_id, event_id) DO NOTHING",
            [tid, tid, tid],
        )
        inserted = cursor.rowcount
    result.inserted += inserted
    result.duplicates += len(valid) - len(rejected) - inserted
    return rejected


# --------------------------------------------------------------------------- the service
def event_import(
    *,
    tenant: Tenant,
    path: str | Path,
    chunksize: int = 50_000,
    max_reasons: int = 20,
    on_chunk: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import an events file for ``tenant``; idempotent.

    Args:
        path: .csv, .csv.gz or .parquet with columns user_id, item_id, type,
            timestamp and optional event_id, value, context_*.
        chunksize: rows per chunk (memory stays bounded by it).
        max_reasons: how many rejected rows to describe.
        on_chunk: called with each chunk's row count (progress bars).

    Returns:
        Counts (rows, inserted, duplicates, rejected, users/items created) and
        the first rejection reasons as ``"row N: field: rule"``.
    """
    path = Path(path)
    if not path.exists():
        raise ValidationFailed(
            f"No such file: {path}", code=EventError.IMPORT_FILE, fields={"file": ["does not exist"]}
        )
    plugin = tenant_plugin_get(tenant=tenant)
    result = ImportResult()
    writer = _write_postgres if connection.vendor == "postgresql" else _write_sqlite
    validator: _ChunkValidator | None = None
    first_row = 1
    for frame in _chunks(path, chunksize):
        if validator is None:
            context_columns = _columns_check(list(frame.columns))
            validator = _ChunkValidator(plugin=plugin, context_columns=context_columns, now=timezone.now())
        valid, reasons, n_bad = validator.clean(frame, first_row)
        result.rows += len(frame)
        result.rejected += n_bad
        if len(valid):
            refused = writer(tenant=tenant, valid=valid, result=result)
            result.rejected += len(refused)
            reasons.extend(refused)
        for row, why in sorted(reasons)[: max(0, max_reasons - len(result.reasons))]:
            result.reasons.append(f"row {row}: {why}")
        first_row += len(frame)
        if on_chunk is not None:
            on_chunk(len(frame))
    return result
