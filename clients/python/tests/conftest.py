"""The client against the real platform: pytest-django's live server (a real HTTP server on loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from platform_core.tenancy.models import Tenant
from platform_core.tenancy.services import api_key_create, tenant_create


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    from django.core.cache import cache

    from platform_core.api.auth import principal_cache_clear
    from platform_core.api.throttles import throttle_counts_clear

    principal_cache_clear()
    cache.clear()
    throttle_counts_clear()
    yield
    principal_cache_clear()


@pytest.fixture
def shop(transactional_db: None) -> Tenant:
    return tenant_create(slug="client-shop", name="Client shop", domain="ecommerce")


@pytest.fixture
def other_shop(transactional_db: None) -> Tenant:
    return tenant_create(slug="client-other", name="Other shop", domain="ecommerce")


@pytest.fixture
def key(shop: Tenant) -> str:
    return api_key_create(tenant=shop, scopes=["ingest", "read", "admin"], name="client-tests").raw_key
