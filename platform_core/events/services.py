"""Writes of the events app: REST ingestion (``event_ingest``) and file import (``event_import``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from platform_core.catalog.services import (
    enduser_ids_create,
    enduser_ids_resolve,
    item_ids_create,
    item_ids_resolve,
)
from platform_core.common.errors import ValidationFailed
from platform_core.events.errors import EventError
from platform_core.events.sensitive import events_context_seal
from platform_core.events.signals import events_committed
from platform_core.events.validation import CleanEvent, Errors, batch_clean
from platform_core.events.writer import events_insert
from platform_core.plugins.selectors import tenant_plugin_get
from platform_core.profiles.services import profile_refresh_request
from platform_core.tenancy.models import Tenant


@dataclass(frozen=True)
class IngestResult:
    received: int
    inserted: int
    duplicates: int
    users_created: int
    items_created: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _raise_invalid(errors: Errors) -> None:
    rows = {path.split(".", 1)[0] for path in errors if path.startswith("events[")}
    first_path, rules = next(iter(errors.items()))
    where = f"{len(rows)} bad event(s); first: " if rows else ""
    too_large = any("must hold at most" in r for r in errors.get("events", ()))
    raise ValidationFailed(
        f"Nothing was written. {where}{first_path}: {rules[0]}",
        code=EventError.BATCH_TOO_LARGE if too_large else EventError.INVALID_BATCH,
        fields=errors,
    )


def _unknown_check(
    *, events: list[CleanEvent], users: dict[str, int], items: dict[str, int], paths: list[str]
) -> Errors:
    errors: Errors = {}
    for event, path in zip(events, paths, strict=True):
        prefix = f"{path}." if path else ""
        if event.user_id not in users:
            errors.setdefault(f"{prefix}user_id", []).append(
                "is not a known user (this tenant does not create users from events)"
            )
        if event.item_id is not None and event.item_id not in items:
            errors.setdefault(f"{prefix}item_id", []).append(
                "is not a known item (this tenant does not create items from events)"
            )
    return errors


def _entities_resolve(
    *, tenant: Tenant, events: list[Any], payload: Any, user_ids: list[str], item_ids: list[str]
) -> tuple[dict[str, int], dict[str, int], int, int]:
    """External id → pk of the batch's users and items, created when the tenant allows it.

    Locked (FOR KEY SHARE): events have no database FK, so a concurrent delete of
    a user or item must wait until these events are committed.

    Returns:
        users, items, and how many of each were missing (created now).
    """
    users = enduser_ids_resolve(tenant=tenant, external_ids=user_ids, create=False, lock=True)
    items = item_ids_resolve(tenant=tenant, external_ids=item_ids, create=False, lock=True)
    missing_users = len(user_ids) - len(users)
    missing_items = len(item_ids) - len(items)
    if missing_users or missing_items:
        if not tenant.auto_create_entities:
            batch = isinstance(payload, dict) and "events" in payload
            paths = [f"events[{i}]" for i in range(len(events))] if batch else [""]
            _raise_invalid(_unknown_check(events=events, users=users, items=items, paths=paths))
        new_users = [u for u in user_ids if u not in users]
        users.update(enduser_ids_create(tenant=tenant, external_ids=new_users, lock=True))
        new_items = [i for i in item_ids if i not in items]
        items.update(item_ids_create(tenant=tenant, external_ids=new_items, lock=True))
    return users, items, missing_users, missing_items


def event_ingest(*, tenant: Tenant, payload: Any) -> IngestResult:
    """Validate a whole batch, then store it idempotently.

    Args:
        tenant: the caller's tenant.
        payload: one event object, or ``{"events": [...]}`` (parsed JSON).

    Returns:
        Counts: received, inserted, duplicates (repeated ``event_id``s, also
        within the batch), users_created, items_created.

    Raises:
        ValidationFailed: any bad row; lists every bad row and field; nothing is written.
    """
    plugin = tenant_plugin_get(tenant=tenant)
    now = timezone.now()
    events, errors = batch_clean(payload, plugin=plugin, now=now)
    if errors:
        _raise_invalid(errors)
    events = events_context_seal(plugin=plugin, events=events)
    user_ids = list(dict.fromkeys(e.user_id for e in events))
    item_ids = list(dict.fromkeys(e.item_id for e in events if e.item_id is not None))
    with transaction.atomic():
        users, items, missing_users, missing_items = _entities_resolve(
            tenant=tenant, events=events, payload=payload, user_ids=user_ids, item_ids=item_ids
        )
        tid = tenant.pk
        rows = [
            (
                tid,
                e.event_id,
                users[e.user_id],
                None if e.item_id is None else items[e.item_id],
                e.type,
                e.timestamp,
                e.value,
                e.context_json,
            )
            for e in events
        ]
        inserted = events_insert(rows=rows)
        if inserted:
            # Personas follow new behaviour without a retrain (debounced per user); the request
            # is an outbox row of this transaction, so a broker that is down loses nothing.
            profile_refresh_request(tenant=tenant, user_pks=[users[u] for u in user_ids])
    if inserted:
        # After the commit: this process's serving caches drop these users at once (others
        # hear it from the database's notification).
        events_committed.send(
            sender=Tenant,
            tenant_id=tenant.pk,
            user_pks=list(users.values()),
            ts_min=min(e.timestamp for e in events),  # analytics drops cached answers over this range
            ts_max=max(e.timestamp for e in events),
        )
    return IngestResult(
        received=len(events),
        inserted=inserted,
        duplicates=len(events) - inserted,
        users_created=missing_users,
        items_created=missing_items,
    )
