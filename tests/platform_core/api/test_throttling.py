"""Failed authentications throttled per client address; per-key counts shared through Redis.

The Redis tests run where the default cache is Redis (CACHE_URL=redis://…, as
in the PostgreSQL stage of .ci/run) and are skipped elsewhere: they need a
real server, since sharing between clients is what they prove.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from django.conf import settings as django_settings
from django.core.cache.backends.redis import RedisCache

from platform_core.api.auth import ApiPrincipal
from platform_core.api.rate import rate_hit
from platform_core.api.throttles import ApiKeyRateThrottle
from tests.factories import EndUserFactory

pytestmark = pytest.mark.django_db
BAD = {"HTTP_AUTHORIZATION": "Api-Key pk_nope.nothing"}


@pytest.fixture
def three_failures_a_minute(settings):  # noqa: ANN001, ANN201
    settings.API_AUTH_FAILURE_RATE = "3/min"


def test_failed_authentications_are_throttled_per_client_address(
    client, api_client_for, tenant, three_failures_a_minute
):
    EndUserFactory(tenant=tenant, external_id="alice")
    path = "/api/v1/users/alice"
    # A bad key, a malformed header and no header at all: each one counts.
    answers = [
        client.get(path, **BAD).status_code,
        client.get(path, HTTP_AUTHORIZATION="Bearer x").status_code,
        client.get(path).status_code,
    ]
    assert answers == [401, 401, 401]
    r = client.get(path, **BAD)
    assert r.status_code == 429 and r.json()["error"]["code"] == "throttled"
    assert 1 <= int(r["Retry-After"]) <= 60
    assert client.get(path).status_code == 429
    # The hot GET path (recommendations) answers failures through DRF: the same 429.
    assert client.get("/api/v1/users/alice/recommendations", **BAD).status_code == 429
    # A valid key from the same address is not held back; another address has its own budget.
    assert api_client_for(tenant, scopes=["read"]).get(path).status_code == 200
    assert client.get(path, REMOTE_ADDR="10.0.0.2", **BAD).status_code == 401
    # X-Forwarded-For is not believed without API_NUM_PROXIES: a client cannot pick its address.
    assert client.get(path, HTTP_X_FORWARDED_FOR="10.9.9.9", **BAD).status_code == 429


def test_the_failed_authentication_throttle_can_be_turned_off(client, settings):
    settings.API_AUTH_FAILURE_RATE = ""
    assert {client.get("/api/v1/models", **BAD).status_code for _ in range(70)} == {401}


def test_the_default_allows_sixty_failures_a_minute(client):
    assert django_settings.API_AUTH_FAILURE_RATE == "60/min"
    codes = [client.get("/api/v1/models", **BAD).status_code for _ in range(61)]
    assert codes == [401] * 60 + [429]


# --------------------------------------------------------------------------- shared counts (Redis)
def _redis_location() -> str:
    default = django_settings.CACHES["default"]
    if not default["BACKEND"].endswith("RedisCache"):
        pytest.skip("needs CACHE_URL=redis://… (the PostgreSQL + Redis stage of .ci/run)")
    return default["LOCATION"]


def _client(location: str, prefix: str) -> RedisCache:
    """A cache with its own connection pool: what another web process would hold."""
    return RedisCache(location, {"KEY_PREFIX": prefix})


def _request(key_id: int):  # noqa: ANN202
    from rest_framework.test import APIRequestFactory

    request = APIRequestFactory().get("/api/v1/popular")
    request.auth = ApiPrincipal(key_id=key_id, prefix="p", tenant=None, scopes=frozenset({"read"}))  # type: ignore[arg-type]
    return request


def _throttle(cache: RedisCache, rate: str) -> ApiKeyRateThrottle:
    throttle = ApiKeyRateThrottle.__new__(ApiKeyRateThrottle)
    throttle.rate = rate
    throttle.num_requests, throttle.duration = throttle.parse_rate(rate)
    throttle.cache = cache
    return throttle


def test_per_key_counts_are_shared_by_separate_redis_clients():
    location, prefix = _redis_location(), f"t-{uuid.uuid4().hex}"
    first, second = _client(location, prefix), _client(location, prefix)
    assert first._cache._get_connection_pool(True) is not second._cache._get_connection_pool(True)
    allowed = [_throttle(c, "10/min").allow_request(_request(7), None) for c in (first, second) * 6]
    assert allowed == [True] * 10 + [False] * 2  # one budget for the key, whichever client counts
    refused = _throttle(second, "10/min")
    assert not refused.allow_request(_request(7), None) and refused.wait() >= 1.0
    assert _throttle(first, "10/min").allow_request(_request(8), None)  # another key: its own budget


def test_concurrent_requests_through_two_clients_never_exceed_the_limit():
    """The check and the count are one Lua script: no two clients take the same last request."""
    location, prefix = _redis_location(), f"t-{uuid.uuid4().hex}"
    caches = [_client(location, prefix), _client(location, prefix)]
    allowed: list[bool] = []
    lock = threading.Lock()

    def hammer(cache: RedisCache) -> None:
        mine = [rate_hit(key="k", limit=100, duration=60, now=120.0, cache=cache) is None for _ in range(40)]
        with lock:
            allowed.extend(mine)

    threads = [threading.Thread(target=hammer, args=(caches[n % 2],)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 240 and sum(allowed) == 100
