"""Fixtures every test package may use (factories live in tests/factories.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pytest
from rest_framework.test import APIClient

from platform_core.api.auth import principal_cache_clear
from platform_core.api.throttles import throttle_counts_clear
from platform_core.tenancy.models import Tenant
from tests.factories import ALL_SCOPES, TenantFactory, api_key_raw


@pytest.fixture(autouse=True)
def _fresh_hot_caches(settings) -> Iterator[None]:  # noqa: ANN001
    """Key → tenant lookups and throttle counters must not leak between tests.

    The serving user-state cache is off: it is invalidated by PostgreSQL
    notifications, which a test's rolled-back transaction never delivers.
    tests/platform_core/serving/test_user_state.py turns it on over committed data.
    """
    from django.core.cache import cache

    from platform_core.profiles.services import profile_refresh_memo_clear

    settings.SERVING_USER_STATE_CACHE_MB = 0
    principal_cache_clear()
    cache.clear()
    throttle_counts_clear()
    profile_refresh_memo_clear()
    yield
    principal_cache_clear()


@pytest.fixture
def tenant_factory(db: None) -> type[TenantFactory]:
    return TenantFactory


@pytest.fixture
def tenant(db: None) -> Tenant:
    """Tenant A (ecommerce)."""
    return TenantFactory(slug="tenant-a", name="Tenant A", domain="ecommerce")


@pytest.fixture
def other_tenant(db: None) -> Tenant:
    """Tenant B, for isolation tests."""
    return TenantFactory(slug="tenant-b", name="Tenant B", domain="ecommerce")


@pytest.fixture
def api_client_for(db: None) -> Callable[..., APIClient]:
    """``api_client_for(tenant, scopes=("read",))`` → a DRF client sending a fresh key of that tenant."""

    def make(tenant: Tenant, scopes: Iterable[str] = ALL_SCOPES) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key_raw(tenant=tenant, scopes=scopes)}")
        return client

    return make


@pytest.fixture
def api_client(tenant: Tenant, api_client_for: Callable[..., APIClient]) -> APIClient:
    """Tenant A's client with every scope."""
    return api_client_for(tenant)


@pytest.fixture
def other_client(other_tenant: Tenant, api_client_for: Callable[..., APIClient]) -> APIClient:
    """Tenant B's client with every scope."""
    return api_client_for(other_tenant)


@pytest.fixture
def two_requests_a_minute() -> Iterator[None]:
    """API_THROTTLE_RATE at 2/min for one test (DRF reads the rates into a class attribute)."""
    from django.conf import settings as django_settings
    from django.test import override_settings
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    rates = {"DEFAULT_THROTTLE_RATES": {"api_key": "2/min"}}
    with override_settings(REST_FRAMEWORK={**django_settings.REST_FRAMEWORK, **rates}):
        original = SimpleRateThrottle.THROTTLE_RATES
        SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
        try:
            yield
        finally:
            SimpleRateThrottle.THROTTLE_RATES = original
