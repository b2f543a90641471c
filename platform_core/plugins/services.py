"""Writes of the plugins app: a tenant's config, and loading sample or real data sets."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db import transaction

from domains.base import ConfigValues, SampleData
from platform_core.common.errors import ValidationFailed
from platform_core.plugins.errors import PluginsError
from platform_core.plugins.models import ConfigChangeSource, TenantConfig, TenantConfigChange
from platform_core.plugins.selectors import config_cache_key, config_values_tolerant, tenant_plugin_get
from platform_core.tenancy.models import Tenant


# --------------------------------------------------------------------------- config
def tenant_config_update(
    *,
    tenant: Tenant,
    values: Mapping[str, Any],
    actor: Any = None,
    source: str = ConfigChangeSource.API,
    replace: bool = False,
) -> ConfigValues:
    """Validate and store the tenant's config; record the change (who, when, old → new).

    Args:
        tenant: whose config.
        values: parameters to set; the others keep their current values
            (or all others go back to their defaults with ``replace=True``).
        actor: the Django user making the change, if any.
        source: ``admin``, ``api`` or ``command``.

    Raises:
        ValidationFailed: an unknown parameter or a value of the wrong type or
            out of bounds; ``fields`` names each parameter and rule. Nothing is written.
    """
    plugin = tenant_plugin_get(tenant=tenant)
    with transaction.atomic():
        row, created = (
            TenantConfig.objects.for_tenant(tenant).select_for_update().get_or_create(tenant=tenant)
        )
        current = config_values_tolerant(plugin=plugin, raw=row.values).as_dict()
        raw = dict(values) if replace else {**current, **dict(values)}
        cleaned, errors = plugin.config_clean(raw)
        if errors:
            name, rules = next(iter(errors.items()))
            raise ValidationFailed(
                f"Invalid config: {name}: {rules[0]}", code=PluginsError.INVALID_CONFIG, fields=errors
            )
        new = cleaned.as_dict()
        if created or new != row.values:
            old = {} if created else dict(row.values)
            row.values = new
            row.updated_by = actor if getattr(actor, "pk", None) else None
            row.save(update_fields=["values", "updated_by", "updated_at"])
            if old != new:
                TenantConfigChange.objects.for_tenant(tenant).create(
                    tenant=tenant,
                    config=row,
                    changed_by=row.updated_by,
                    changed_by_name=getattr(actor, "get_username", lambda: "")() if actor is not None else "",
                    source=source,
                    old_values=old or plugin.default_config().as_dict(),
                    new_values=new,
                )
        transaction.on_commit(lambda: cache.delete(config_cache_key(tenant)))
    cache.delete(config_cache_key(tenant))
    return cleaned


# --------------------------------------------------------------------------- data loading
_ROW = re.compile(r"^(?:users|items|events)\[(\d+)\]")


@dataclass
class LoadReport:
    """What a load did: counts per kind and the rows refused, with the rule broken."""

    users: int = 0
    items: int = 0
    events_inserted: int = 0
    events_duplicate: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: {"users": 0, "items": 0, "events": 0})
    # Field paths and rules only: the values themselves may be sensitive.
    reasons: list[str] = field(default_factory=list)

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "items": self.items,
            "events_inserted": self.events_inserted,
            "events_duplicate": self.events_duplicate,
            "rejected": dict(self.rejected),
            "reasons": self.reasons[:20],
        }


def _with_rejections(
    rows: list[dict[str, Any]], kind: str, report: LoadReport, write: Callable[[list[dict[str, Any]]], Any]
) -> Any:
    """Write a batch through the API's service; drop the rows it refuses and retry.

    The services are all-or-nothing per batch (as the API is); here a refused
    row is counted and reported, and the rest of its batch still goes in.
    """
    while rows:
        try:
            return write(rows)
        except ValidationFailed as exc:
            bad = {int(m.group(1)) for path in exc.fields if (m := _ROW.match(path))}
            if not bad:
                raise
            for path, rules in list(exc.fields.items())[:5]:
                if len(report.reasons) < 50:
                    report.reasons.append(f"{kind}: {_ROW.sub(kind + '[…]', path)}: {'; '.join(rules)}")
            report.rejected[kind] += len(bad)
            rows = [r for i, r in enumerate(rows) if i not in bad]
    return None


def data_load(
    *, tenant: Tenant, data: SampleData, batch_size: int = 2000, progress: Callable[[str], None] | None = None
) -> LoadReport:
    """Ingest users, items, then events through the same validation path as the API.

    Uses the catalog's bulk upserts and ``event_ingest``; a refused row is
    skipped and reported (the API would refuse its whole request).
    """
    from platform_core.catalog.services import enduser_bulk_upsert, item_bulk_upsert
    from platform_core.events.services import event_ingest

    report = LoadReport()
    say = progress or (lambda _msg: None)
    for start in range(0, len(data.users), batch_size):
        res = _with_rejections(
            list(data.users[start : start + batch_size]),
            "users",
            report,
            lambda rows: enduser_bulk_upsert(tenant=tenant, rows=rows),
        )
        report.users += (res.created + res.updated) if res else 0
    say(f"users: {report.users}")
    for start in range(0, len(data.items), batch_size):
        res = _with_rejections(
            list(data.items[start : start + batch_size]),
            "items",
            report,
            lambda rows: item_bulk_upsert(tenant=tenant, rows=rows),
        )
        report.items += (res.created + res.updated) if res else 0
    say(f"items: {report.items}")
    for start in range(0, len(data.events), batch_size):
        res = _with_rejections(
            list(data.events[start : start + batch_size]),
            "events",
            report,
            lambda rows: event_ingest(tenant=tenant, payload={"events": rows}),
        )
        if res is not None:
            report.events_inserted += res.inserted
            report.events_duplicate += res.duplicates
        say(f"events: {min(start + batch_size, len(data.events))}/{len(data.events)}")
    return report


def sample_data_load(
    *, tenant: Tenant, n_users: int = 300, seed: int = 0, progress: Callable[[str], None] | None = None
) -> LoadReport:
    """Generate the tenant's plugin sample data and ingest it like the API would."""
    plugin = tenant_plugin_get(tenant=tenant)
    return data_load(tenant=tenant, data=plugin.sample_data(seed, n_users), progress=progress)


def dataset_load(
    *,
    tenant: Tenant,
    name: str,
    path: str,
    limit: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoadReport:
    """Read a public data set with the tenant's plugin adapter and ingest it.

    Raises:
        ValidationFailed: the domain has no adapter of that name, or the files
            are missing or not in the expected format.
    """
    from domains.datasets import DatasetError

    plugin = tenant_plugin_get(tenant=tenant)
    adapters = plugin.dataset_adapters()
    if name not in adapters:
        raise ValidationFailed(
            f"Domain {plugin.id!r} has no data set adapter {name!r}; known: {sorted(adapters)}",
            code=PluginsError.UNKNOWN_DATASET,
            fields={"name": [f"must be one of {sorted(adapters)}"]},
        )
    try:
        data = adapters[name](path, limit=limit)
    except (DatasetError, OSError) as exc:
        raise ValidationFailed(
            f"Cannot read {name!r} at {path}: {exc}",
            code=PluginsError.DATASET_UNREADABLE,
            fields={"path": [str(exc)]},
        ) from exc
    return data_load(tenant=tenant, data=data, progress=progress)


# --------------------------------------------------------------------------- key rotation
def sensitive_attributes_rotate(*, tenant: Tenant, batch_size: int = 1000) -> int:
    """Re-encrypt the tenant's sensitive attributes with the newest key.

    Run after putting a new key first in ``FIELD_ENCRYPTION_KEYS`` and before
    dropping the old one. Returns the number of rows rewritten.
    """
    from platform_core.catalog.models import EndUser, Item
    from platform_core.plugins.crypto import attributes_rotate

    plugin = tenant_plugin_get(tenant=tenant)
    rewritten = 0
    for kind, model in (("user", EndUser), ("item", Item)):
        if not plugin.sensitive_fields(kind):  # type: ignore[arg-type]
            continue
        qs = model.objects.for_tenant(tenant).only("pk", "attributes").order_by("pk")
        last = 0
        while True:
            rows = list(qs.filter(pk__gt=last)[:batch_size])
            if not rows:
                break
            for row in rows:
                row.attributes = attributes_rotate(plugin=plugin, kind=kind, attributes=row.attributes or {})  # type: ignore[arg-type]
            with transaction.atomic():
                model.unscoped.bulk_update(rows, ["attributes"])  # unscoped: rows carry their tenant
            rewritten += len(rows)
            last = rows[-1].pk
    return rewritten
