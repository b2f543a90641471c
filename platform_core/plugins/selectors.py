"""Reads of a tenant's plugin and its configuration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import cache

from domains.base import ConfigValues, DomainPlugin
from domains.registry import PluginError, plugin_get
from platform_core.common.errors import ServiceError
from platform_core.plugins.errors import PluginsError
from platform_core.plugins.models import TenantConfig, TenantConfigChange
from platform_core.tenancy.models import Tenant


def tenant_plugin_get(*, tenant: Tenant) -> DomainPlugin:
    """The tenant's domain plugin.

    Raises:
        ServiceError: (503) no registered plugin has the tenant's domain id;
            the console refuses such a domain, but a row written around it
            (or a plugin removed from settings) must not turn every API call
            of the tenant into an HTML 500.
    """
    try:
        return plugin_get(tenant.domain)
    except PluginError:
        raise ServiceError(
            f"tenant.domain: {tenant.domain!r} names no registered domain plugin; "
            "an operator must set a registered one in the console.",
            code=PluginsError.UNKNOWN_DOMAIN,
            fields={"tenant.domain": ["must name a registered domain plugin"]},
            status_code=503,
        ) from None


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
