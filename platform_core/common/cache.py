"""Cache helpers the hot paths need beyond Django's per-key API."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache


def cache_add_many(
    *, keys: Sequence[str], value: Any, timeout: int, cache: BaseCache | None = None
) -> list[bool]:
    """``cache.add`` for many keys: which ones were absent (and are now set).

    On Redis all the ``SET NX EX`` commands go in one pipelined round trip:
    ingestion asks for up to one key per user of a batch, and one round trip
    each cost more than the rest of a 1,000-event request.
    """
    cache = cache or caches["default"]  # the backend itself: django.core.cache.cache is a proxy
    if not isinstance(cache, RedisCache) or len(keys) < 2 or timeout <= 0:
        return [cache.add(key, value, timeout=timeout) for key in keys]
    client = cache._cache  # Django's RedisCacheClient: its serializer keeps values readable by cache.get
    backend_timeout = cache.get_backend_timeout(timeout)
    raw = client._serializer.dumps(value)
    pipe = client.get_client(None, write=True).pipeline(transaction=False)
    for key in keys:
        pipe.set(cache.make_and_validate_key(key), raw, nx=True, ex=backend_timeout)
    return [bool(ok) for ok in pipe.execute()]
