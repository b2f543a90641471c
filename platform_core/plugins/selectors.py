"""Reads of a tenant's plugin and its configuration.

SEAM (owned by the domains issue): ``tenant_config_get`` returns the
defaults until the per-tenant config row exists; keep the signatures.
"""

from __future__ import annotations

from domains.base import ConfigValues, DomainPlugin
from domains.registry import plugin_get
from platform_core.tenancy.models import Tenant


def tenant_plugin_get(*, tenant: Tenant) -> DomainPlugin:
    return plugin_get(tenant.domain)


def tenant_config_get(*, tenant: Tenant) -> ConfigValues:
    """The tenant's validated config, defaults filled in."""
    return tenant_plugin_get(tenant=tenant).default_config()
