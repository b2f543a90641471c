"""Reads of a tenant's plugin and its configuration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache

from domains.base import ConfigValues, DomainPlugin
from domains.registry import plugin_get
from platform_core.plugins.models import TenantConfig, TenantConfigChange
from platform_core.tenancy.models import Tenant


def tenant_plugin_get(*, tenant: Tenant) -> DomainPlugin:
    return plugin_get(tenant.domain)


def config_cache_key(tenant: Tenant) -> str:
    return f"plugins:config:{tenant.pk}:{tenant.domain}"


def config_values_tolerant(*, plugin: DomainPlugin, raw: Mapping[str, Any] | None) -> ConfigValues:
    """Stored JSON → values, dropping what the plugin no longer declares or accepts.

    A stored value can go stale when a plugin's spec changes (a parameter
    removed, a bound tightened); the default replaces it rather than failing
    every request of the tenant.
    """
    names = {p.name for p in plugin.config}
    values = {k: v for k, v in (raw or {}).items() if k in names}
    cleaned, errors = plugin.config_clean(values)
    if errors:
        cleaned, _ = plugin.config_clean({k: v for k, v in values.items() if k not in errors})
    return cleaned


#: (tenant, domain) → (the stored JSON it was cleaned from, canonical; the cleaned values).
_cleaned: dict[tuple[int, str], tuple[bytes, ConfigValues]] = {}


def tenant_config_get(*, tenant: Tenant) -> ConfigValues:
    """The tenant's validated config, defaults filled in (cached for HOT_CACHE_SECONDS).

    While the stored values stay the same this process returns the same
    (read-only) object: cleaning costs more than the lookup, and serving
    recognises an unchanged config by identity (``platform_core.serving.user_state``).
    """
    key = config_cache_key(tenant)
    stored = cache.get(key)
    if stored is None:
        row = TenantConfig.objects.for_tenant(tenant).only("values").first()
        stored = row.values if row is not None else {}
        cache.set(key, stored, settings.HOT_CACHE_SECONDS)
    try:
        canonical = orjson.dumps(stored, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # e.g. an integer past 64 bits: clean it every time
        return config_values_tolerant(plugin=tenant_plugin_get(tenant=tenant), raw=stored)
    memo = _cleaned.get((tenant.pk, tenant.domain))
    if memo is not None and memo[0] == canonical:
        return memo[1]
    values = config_values_tolerant(plugin=tenant_plugin_get(tenant=tenant), raw=stored)
    _cleaned[(tenant.pk, tenant.domain)] = (canonical, values)
    return values


def tenant_config_changes(*, tenant: Tenant, limit: int = 50) -> list[TenantConfigChange]:
    """The tenant's latest config changes, newest first."""
    return list(TenantConfigChange.objects.for_tenant(tenant).select_related("changed_by")[:limit])
