"""Writes of the catalog: end users and items (upserts, bulk upserts, erasure, bulk id resolution)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Literal

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models.functions import Collate
from django.utils import timezone
from django.utils.crypto import salted_hmac

from platform_core.catalog.errors import CatalogError
from platform_core.catalog.models import EndUser, ErasureReceipt, Item
from platform_core.catalog.signals import user_erased, user_erasing
from platform_core.common.errors import ValidationFailed
from platform_core.common.limits import id_problem, json_value_check
from platform_core.plugins.crypto import attributes_seal
from platform_core.plugins.selectors import tenant_plugin_get
from platform_core.tenancy.models import Tenant

MAX_EXTERNAL_ID = 255
Errors = dict[str, list[str]]


def catalog_max_batch() -> int:
    return getattr(settings, "CATALOG_MAX_BATCH", 10_000)


@dataclass(frozen=True)
class UpsertResult:
    created: int
    updated: int


def _add(errors: Errors, path: str, rule: str) -> None:
    errors.setdefault(path, []).append(rule)


def external_id_check(value: Any, path: str, errors: Errors) -> str | None:
    if not isinstance(value, str):
        _add(errors, path, "must be a string" if value is not None else "is required")
        return None
    if not value or len(value) > MAX_EXTERNAL_ID:
        _add(errors, path, f"must be 1 to {MAX_EXTERNAL_ID} characters")
        return None
    problem = id_problem(value)  # what GET and DELETE /users/{id} could not carry back
    if problem:
        _add(errors, path, problem)
        return None
    return value


def _raise(errors: Errors, code: CatalogError) -> None:
    if errors:
        first_path, rules = next(iter(errors.items()))
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValidationFailed(f"Invalid input: {first_path}: {rules[0]}{more}", code=code, fields=errors)


# --------------------------------------------------------------------------- single upserts
def _attributes_clean(
    *, tenant: Tenant, kind: Literal["user", "item"], attributes: Any, path: str, errors: Errors
) -> dict[str, Any] | None:
    plugin = tenant_plugin_get(tenant=tenant)
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, Mapping):
        _add(errors, path, "must be an object")
        return None
    found: Errors = {}
    json_value_check(attributes, path=path, max_total_bytes=settings.ATTRIBUTES_MAX_BYTES, errors=found)
    if not found:  # the bounds first: the domain's checks need not read an oversized value
        validate = plugin.validate_user if kind == "user" else plugin.validate_item
        found = validate(attributes, path=path)
    for key, rules in found.items():
        for rule in rules:
            _add(errors, key, rule)
    if found:
        return None
    return attributes_seal(plugin=plugin, kind=kind, attributes=attributes)


def enduser_upsert(*, tenant: Tenant, external_id: str, attributes: Any) -> tuple[EndUser, bool]:
    """Create or replace an end user's attributes. Returns ``(user, created)``."""
    result = enduser_bulk_upsert(
        tenant=tenant, rows=[{"user_id": external_id, "attributes": attributes}], path=""
    )
    user = EndUser.objects.for_tenant(tenant).get(external_id=external_id)
    return user, result.created == 1


def item_upsert(
    *, tenant: Tenant, external_id: str, attributes: Any, active: Any = True
) -> tuple[Item, bool]:
    """Create or replace an item. Returns ``(item, created)``."""
    result = item_bulk_upsert(
        tenant=tenant, rows=[{"item_id": external_id, "attributes": attributes, "active": active}], path=""
    )
    item = Item.objects.for_tenant(tenant).get(external_id=external_id)
    return item, result.created == 1


# --------------------------------------------------------------------------- bulk upserts
def _rows_check(rows: Any, key: str, path: str, errors: Errors) -> list[Any] | None:
    if not isinstance(rows, list):
        _add(errors, path or key, "must be a list")
        return None
    if not rows:
        _add(errors, path or key, "must hold at least one entry")
        return None
    if len(rows) > catalog_max_batch():
        _add(errors, path or key, f"must hold at most {catalog_max_batch()} entries (got {len(rows)})")
        return None
    return rows


def _bulk_upsert(
    *,
    tenant: Tenant,
    kind: Literal["user", "item"],
    rows: Any,
    path: str,
) -> UpsertResult:
    model: type[EndUser] | type[Item] = EndUser if kind == "user" else Item
    id_key = f"{kind}_id"
    allowed = {id_key, "attributes"} | ({"active"} if kind == "item" else set())
    errors: Errors = {}
    checked = _rows_check(rows, f"{kind}s", path, errors)
    clean: dict[str, dict[str, Any]] = {}
    for i, row in enumerate(checked or []):
        row_path = f"{path}[{i}]" if path else ""
        prefix = f"{row_path}." if row_path else ""
        if not isinstance(row, dict):
            _add(errors, row_path or kind, "must be an object")
            continue
        for extra in row.keys() - allowed:
            _add(errors, f"{prefix}{extra}", "is not a known field")
        ext = external_id_check(row.get(id_key), f"{prefix}{id_key}", errors)
        attrs = _attributes_clean(
            tenant=tenant,
            kind=kind,
            attributes=row.get("attributes"),
            path=f"{prefix}attributes",
            errors=errors,
        )
        values: dict[str, Any] = {"attributes": attrs}
        if kind == "item":
            active = row.get("active", True)
            if not isinstance(active, bool):
                _add(errors, f"{prefix}active", "must be true or false")
            values["active"] = active
        if ext is not None and ext in clean:
            _add(errors, f"{prefix}{id_key}", "appears twice in this batch")
        if ext is not None:
            clean[ext] = values
    _raise(errors, CatalogError.INVALID_USER if kind == "user" else CatalogError.INVALID_ITEM)
    now = timezone.now()
    update_fields = ["attributes", "updated_at"] + (["active"] if kind == "item" else [])
    with transaction.atomic():
        existing = {
            obj.external_id: obj
            for obj in model.objects.for_tenant(tenant)
            .filter(external_id__in=list(clean))
            # Lock in the order event ingestion's resolve does (Python's sort =
            # code point order = "C"), so the two cannot deadlock.
            .order_by(Collate("external_id", "C") if connection.vendor == "postgresql" else "external_id")
            .select_for_update()
        }
        new = [
            model(tenant=tenant, external_id=ext, **vals)
            for ext, vals in clean.items()
            if ext not in existing
        ]
        model.unscoped.bulk_create(new, batch_size=1000)  # unscoped: rows carry their tenant
        changed = []
        for ext, obj in existing.items():
            for field, value in clean[ext].items():
                setattr(obj, field, value)
            obj.updated_at = now
            changed.append(obj)
        if changed:
            model.unscoped.bulk_update(changed, update_fields, batch_size=1000)
    return UpsertResult(created=len(new), updated=len(changed))


def enduser_bulk_upsert(*, tenant: Tenant, rows: Any, path: str = "users") -> UpsertResult:
    """Create or replace many end users: ``[{"user_id", "attributes"}]``; all or nothing."""
    return _bulk_upsert(tenant=tenant, kind="user", rows=rows, path=path)


def item_bulk_upsert(*, tenant: Tenant, rows: Any, path: str = "items") -> UpsertResult:
    """Create or replace many items: ``[{"item_id", "attributes", "active"}]``; all or nothing."""
    return _bulk_upsert(tenant=tenant, kind="item", rows=rows, path=path)


# --------------------------------------------------------------------------- deletion
@dataclass(frozen=True)
class ErasureShare:
    """What an upper app adds to an erasure receipt: a ``user_erasing`` receiver's answer.

    ``counts``: rows it removed or scrubbed that the cascade does not report;
    ``model_versions``: versions trained on the user's events; ``retrain``: one
    of them is serving, so a retrain is due within the window.
    """

    counts: Mapping[str, int] = dataclass_field(default_factory=dict)
    model_versions: Sequence[int] = ()
    retrain: bool = False


def erasure_subject_hash(*, tenant: Tenant, external_id: str) -> str:
    """HMAC-SHA256 of an external id under a key of ``SECRET_KEY`` and the tenant (hex).

    Without the secret a list of candidate ids cannot be matched against the
    receipts; with it, an operator can confirm that a given id was erased.
    """
    return salted_hmac(f"erasure-receipt:{tenant.pk}", external_id, algorithm="sha256").hexdigest()


@transaction.atomic
def enduser_erase(*, tenant: Tenant, external_id: str) -> ErasureReceipt:
    """Erase an end user and everything derived from them, store a receipt, then send ``user_erased``.

    The ``user_erasing`` receivers run first, in this transaction, while the
    user's events still exist (e.g. jobs finds the model versions trained on
    them and scrubs task results); the CASCADE delete follows.

    Returns:
        The receipt: rows removed per model (``counts``), model versions, the retrain due date.
    """
    from platform_core.catalog.selectors import enduser_get_for_tenant

    user = enduser_get_for_tenant(tenant=tenant, external_id=external_id)
    user_pk = user.pk
    answers = user_erasing.send(sender=EndUser, tenant=tenant, user=user)
    shares = [share for _, share in answers if isinstance(share, ErasureShare)]
    _, per_model = user.delete()
    counts = Counter({label: n for label, n in per_model.items() if n})
    for share in shares:
        counts.update({label: n for label, n in share.counts.items() if n})
    now = timezone.now()
    window = dt.timedelta(hours=settings.ERASURE_RETRAIN_WINDOW_HOURS)
    receipt = ErasureReceipt.objects.for_tenant(tenant).create(
        tenant=tenant,
        erased_at=now,
        subject_hash=erasure_subject_hash(tenant=tenant, external_id=external_id),
        counts=dict(sorted(counts.items())),
        model_versions=sorted({pk for share in shares for pk in share.model_versions}),
        retrain_due_by=now + window if any(share.retrain for share in shares) else None,
    )
    deleted = dict(receipt.counts)
    transaction.on_commit(
        lambda: user_erased.send(
            sender=EndUser,
            tenant=tenant,
            external_id=external_id,
            user_pk=user_pk,
            deleted=deleted,
            receipt_id=receipt.pk,
        )
    )
    return receipt


def erasure_retrain_record(
    *,
    receipt_ids: Sequence[int],
    job_id: int | None = None,
    version_id: int | None = None,
    at: dt.datetime | None = None,
) -> int:
    """Note on receipts the retrain job started for them, or (``at``) when a version without the user went live.

    Returns:
        The number of receipts updated.
    """
    changes: dict[str, Any] = {}
    if job_id is not None:
        changes["retrain_job_id"] = job_id
    if at is not None:
        changes.update(retrained_at=at, retrained_version_id=version_id)
    # Crossing tenants is safe here: the ids come from the sweep's own per-tenant query.
    return ErasureReceipt.unscoped.filter(pk__in=list(receipt_ids)).update(**changes) if changes else 0


@transaction.atomic
def item_delete(*, tenant: Tenant, external_id: str) -> dict[str, int]:
    """Delete an item and its events. Returns rows removed per model."""
    from platform_core.catalog.selectors import item_get_for_tenant

    item = item_get_for_tenant(tenant=tenant, external_id=external_id)
    _, per_model = item.delete()
    return {label: n for label, n in per_model.items() if n}


# --------------------------------------------------------------------------- bulk id resolution
def _rows_insert_ignoring_conflicts(
    *, model: type[models.Model], tenant: Tenant, external_ids: list[str]
) -> dict[str, int] | None:
    """Bare rows (empty attributes) for new external ids, in multi-row statements.

    ``ON CONFLICT DO NOTHING``: a concurrent request may create the same ids.
    Raw SQL because building a model instance per row costs more than the
    insert itself on hot ingestion paths.

    Returns:
        On PostgreSQL, external id → pk of the rows this statement created
        (``RETURNING``); the caller selects only the others. None elsewhere:
        the caller re-selects them all.
    """
    qn = connection.ops.quote_name
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    cols = ["tenant_id", "external_id", "attributes", "created_at", "updated_at"]
    extra: tuple[object, ...] = ()
    if model is Item:
        cols.append("active")
        extra = (True,)
    head = f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(c) for c in cols)}) VALUES "
    tail = " ON CONFLICT (tenant_id, external_id) DO NOTHING"
    if connection.vendor == "postgresql":
        # One array literal, unnested in order (the caller sorts: lock order).
        literal = (
            "{"
            + ",".join(['"' + e.replace("\\", "\\\\").replace('"', '\\"') + '"' for e in external_ids])
            + "}"
        )
        active = ", true" if model is Item else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f"{head[: -len(' VALUES ')]} SELECT %s, x, '{{}}'::jsonb, %s, %s{active} "
                f"FROM unnest(%s::text[]) AS x{tail} RETURNING external_id, id",
                [tenant.pk, now, now, literal],
            )
            return dict(cursor.fetchall())
    one = "(" + ", ".join(["%s"] * len(cols)) + ")"
    page = 30_000 // len(cols)  # SQLite's bound-parameter limit
    with connection.cursor() as cursor:
        for start in range(0, len(external_ids), page):
            part = external_ids[start : start + page]
            params: list[object] = []
            for ext in part:
                params.extend((tenant.pk, ext, "{}", now, now, *extra))
            cursor.execute(head + ", ".join([one] * len(part)) + tail, params)
    return None


def _ids_select(
    *, model: type[models.Model], tenant: Tenant, external_ids: list[str], lock: bool = False
) -> dict[str, int]:
    """External id → pk of the existing rows; raw SQL because the ORM spends
    milliseconds building a 1,000-value IN lookup on the ingestion hot path.

    ``lock`` (PostgreSQL): ``FOR KEY SHARE``, so the rows cannot be deleted
    before the caller's transaction ends (events have no database FK)."""
    qn = connection.ops.quote_name
    found: dict[str, int] = {}
    table = qn(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One array literal instead of 1,000 bound values (less to parse), and
            # one probe of the (tenant, external_id) unique index per id whatever
            # the statistics say: on a young table they are stale, and the planner
            # then filters the tenant's whole table against the array instead.
            # Locks are taken in array order: sorted, like every other locker of these rows.
            ordered = sorted(external_ids) if lock else external_ids
            literal = (
                "{"
                + ",".join(['"' + e.replace("\\", "\\\\").replace('"', '\\"') + '"' for e in ordered])
                + "}"
            )
            cursor.execute(
                f"SELECT x.ext, t.id FROM unnest(%s::text[]) AS x(ext) CROSS JOIN LATERAL "
                f"(SELECT id FROM {table} WHERE tenant_id = %s AND external_id = x.ext LIMIT 1"
                f"{' FOR KEY SHARE' if lock else ''}) AS t",
                [literal, tenant.pk],
            )
            found.update(cursor.fetchall())
            return found
        step = 5000  # SQLite caps bound parameters per statement
        for start in range(0, len(external_ids), step):
            part = external_ids[start : start + step]
            cursor.execute(
                f"SELECT external_id, id FROM {table} "
                f"WHERE tenant_id = %s AND external_id IN ({', '.join(['%s'] * len(part))})",
                [tenant.pk, *part],
            )
            found.update(cursor.fetchall())
    return found


def _ids_create(
    *, model: type[models.Model], tenant: Tenant, missing: list[str], lock: bool
) -> dict[str, int]:
    # Sorted: concurrent requests then take the unique-index locks in one
    # order, so overlapping creations wait for each other instead of deadlocking.
    if not missing:
        return {}
    missing = sorted(missing)
    found: dict[str, int] = {}
    created = _rows_insert_ignoring_conflicts(model=model, tenant=tenant, external_ids=missing)
    if created is not None:
        # Rows this transaction created need no lock: nobody else sees them yet.
        found.update(created)
        missing = [ext for ext in missing if ext not in created]
    if missing:  # created meanwhile by a concurrent request (or not PostgreSQL)
        found.update(_ids_select(model=model, tenant=tenant, external_ids=missing, lock=lock))
    return found


def _ids_resolve(
    *, model: type[models.Model], tenant: Tenant, external_ids: Iterable[str], create: bool, lock: bool
) -> dict[str, int]:
    wanted = list(dict.fromkeys(external_ids))
    found = _ids_select(model=model, tenant=tenant, external_ids=wanted, lock=lock)
    missing = [ext for ext in wanted if ext not in found]
    if create and missing:
        found.update(_ids_create(model=model, tenant=tenant, missing=missing, lock=lock))
    return found


def enduser_ids_resolve(
    *, tenant: Tenant, external_ids: Sequence[str], create: bool, lock: bool = False
) -> dict[str, int]:
    """External id → primary key for many users at once; creates the missing ones if ``create``.

    ``lock``: keep the users from being deleted until the transaction ends
    (callers that write events for them, which have no database FK).
    """
    return _ids_resolve(model=EndUser, tenant=tenant, external_ids=external_ids, create=create, lock=lock)


def item_ids_resolve(
    *, tenant: Tenant, external_ids: Sequence[str], create: bool, lock: bool = False
) -> dict[str, int]:
    """External id → primary key for many items at once; creates the missing ones if ``create``.

    ``lock``: as for ``enduser_ids_resolve``.
    """
    return _ids_resolve(model=Item, tenant=tenant, external_ids=external_ids, create=create, lock=lock)


def enduser_ids_create(*, tenant: Tenant, external_ids: Sequence[str], lock: bool = False) -> dict[str, int]:
    """Create bare users for ids a resolve just found missing; external id → pk of them all.

    Saves ``enduser_ids_resolve(create=True)``'s first SELECT when the caller
    already looked; ids a concurrent request created meanwhile are selected
    (locked if ``lock``).
    """
    return _ids_create(model=EndUser, tenant=tenant, missing=list(dict.fromkeys(external_ids)), lock=lock)


def item_ids_create(*, tenant: Tenant, external_ids: Sequence[str], lock: bool = False) -> dict[str, int]:
    """Create bare items for ids a resolve just found missing; as ``enduser_ids_create``."""
    return _ids_create(model=Item, tenant=tenant, missing=list(dict.fromkeys(external_ids)), lock=lock)
