"""Event-context fields a domain marks ``sensitive``: sealed on the way in, opened or masked on the way out.

Sealing runs after validation (rules such as ``max_length`` apply to the
plaintext) and only on events whose type declares sensitive fields, so other
events cost one dict lookup. Who may see a value in plaintext:

- the plugin hooks (profiles, rerank) always: they need the facts;
- the API: keys with the ``admin`` scope; ``read`` keys get the mask;
- the console: staff with the ``events.view_sensitive_context`` permission.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import orjson
from django.db import transaction

from domains.base import DomainPlugin
from platform_core.events.models import Event
from platform_core.events.validation import CleanEvent
from platform_core.plugins.crypto import context_redact, context_rotate, context_seal, context_unseal
from platform_core.plugins.selectors import tenant_plugin_get
from platform_core.tenancy.models import Tenant

# Who sees sensitive context values: API keys with this scope (docs/api.md), console staff
# with this permission (declared on Event).
REVEAL_SCOPE = "admin"
SENSITIVE_CONTEXT_PERMISSION = "events.view_sensitive_context"


def context_text_seal(*, plugin: DomainPlugin, event_type: str, text: str) -> str:
    """The JSON text of a validated context → the JSON text to store (unchanged without sensitive fields)."""
    if text == "{}" or not plugin.sensitive_context_fields(event_type):
        return text
    sealed = context_seal(plugin=plugin, event_type=event_type, context=orjson.loads(text))
    return orjson.dumps(sealed).decode()


def events_context_seal(*, plugin: DomainPlugin, events: list[CleanEvent]) -> list[CleanEvent]:
    """Validated events → the same events with their sensitive context fields encrypted."""
    types = plugin.sensitive_event_types()
    if not types:
        return events
    return [
        dataclasses.replace(
            e, context_json=context_text_seal(plugin=plugin, event_type=e.type, text=e.context_json)
        )
        if e.type in types
        else e
        for e in events
    ]


def context_for_reader(
    *, plugin: DomainPlugin, event_type: str, context: Mapping[str, Any], reveal: bool
) -> dict[str, Any]:
    """A stored context as a reader may see it: plaintext when ``reveal``, else sensitive values masked."""
    if reveal:
        return context_unseal(context=context)
    return context_redact(plugin=plugin, event_type=event_type, context=context)


def event_contexts_rotate(*, tenant: Tenant, batch_size: int = 1000) -> int:
    """Re-encrypt the sensitive context fields of the tenant's events with the newest key.

    Run (through ``rotate_field_keys``) after putting a new key first in
    ``FIELD_ENCRYPTION_KEYS`` and before dropping the old one. Only events of
    types with sensitive fields are read. Returns the number of rows rewritten.
    """
    plugin = tenant_plugin_get(tenant=tenant)
    types = plugin.sensitive_event_types()
    if not types:
        return 0
    qs = (
        Event.objects.for_tenant(tenant)
        .filter(type__in=list(types))
        .only("pk", "type", "context")
        .order_by("pk")
    )
    rewritten, last = 0, 0
    while rows := list(qs.filter(pk__gt=last)[:batch_size]):
        for row in rows:
            row.context = context_rotate(plugin=plugin, event_type=row.type, context=row.context or {})
        with transaction.atomic():
            Event.unscoped.bulk_update(rows, ["context"])  # unscoped: rows carry their tenant
        rewritten += len(rows)
        last = rows[-1].pk
    return rewritten


def event_contexts_rotate_on_signal(sender: Any, *, tenant: Tenant, **kwargs: Any) -> int:
    """Receiver of ``plugins.signals.field_keys_rotating``."""
    return event_contexts_rotate(tenant=tenant)
