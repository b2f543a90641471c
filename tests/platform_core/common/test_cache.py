"""cache_add_many: the same answers as cache.add key by key, on the local and the Redis cache."""

from __future__ import annotations

import time
import uuid

import pytest
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

from platform_core.common.cache import cache_add_many


def _caches():
    prefix = f"test-{uuid.uuid4().hex}"
    yield LocMemCache(prefix, {})
    # The Redis the test settings use for Celery (127.0.0.1:6379), under a prefix of its own.
    yield RedisCache("redis://127.0.0.1:6379/5", {"KEY_PREFIX": prefix})


@pytest.mark.parametrize("cache", list(_caches()), ids=["locmem", "redis"])
def test_adds_only_absent_keys_and_says_which(cache):
    cache.add("b", 7, timeout=60)
    assert cache_add_many(keys=["a", "b", "c"], value=1, timeout=60, cache=cache) == [True, False, True]
    assert [cache.get(k) for k in ("a", "b", "c")] == [1, 7, 1]
    assert cache_add_many(keys=["a", "c", "d"], value=1, timeout=60, cache=cache) == [False, False, True]
    cache.delete_many(["a", "b", "c", "d"])


@pytest.mark.parametrize("cache", list(_caches()), ids=["locmem", "redis"])
def test_keys_expire_after_the_timeout(cache):
    assert cache_add_many(keys=["x", "y"], value=1, timeout=1, cache=cache) == [True, True]
    assert cache_add_many(keys=["x", "y"], value=1, timeout=1, cache=cache) == [False, False]
    time.sleep(1.2)
    assert cache_add_many(keys=["x", "y"], value=1, timeout=1, cache=cache) == [True, True]
    cache.delete_many(["x", "y"])
