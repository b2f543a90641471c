"""Sliding-window request counters, the core of every API throttle.

The cache holds one counter per key and fixed window; the estimate weights
the previous window by the part of it still inside the sliding one
(``previous × (1 − elapsed) + current``). Where the counts live depends on
the default cache (``CACHE_URL``):

- a ``LocMemCache`` (the default) holds one process's counts anyway: they
  live in a dict of this module (the cache's pickling and key checks cost
  ≈ 20 µs a request, the dict ≈ 2 µs). Each web process counts alone.
- Redis: check and count in one Lua script, so one round trip a request and
  no two processes can both take the last request of a budget. Every web
  process shares the counts.
- any other shared cache: ``get_many`` then ``incr`` (two operations).
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

#: Counts of this process when the cache is a LocMemCache: key → (window, its count, the previous one's).
_counts: dict[str, tuple[int, int, int]] = {}
_counts_lock = threading.Lock()
_COUNTS_MAX = 100_000

# KEYS: this window's counter, the previous one's. ARGV: limit, elapsed share, expiry seconds.
# Returns {allowed, current, previous} (counts before this request).
_REDIS_HIT = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
if prev * (1 - tonumber(ARGV[2])) + cur >= tonumber(ARGV[1]) then
  return {0, cur, prev}
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return {1, cur, prev}
"""
_redis_script: list[Any] = []  # the registered script (it keeps its SHA; EVALSHA after the first call)


def _wait_for(*, limit: int, duration: int, cur: int, prev: int, elapsed: float) -> float:
    """Seconds until the estimate falls below the limit again, if no request comes meanwhile."""
    if cur < limit and prev > 0:
        share = 1.0 - (limit - cur) / prev  # elapsed share at which prev's weight is small enough
        return max(share - elapsed, 0.0) * duration
    # The current window alone is over: it becomes the previous one and must fade enough.
    return ((1.0 - elapsed) + max(1.0 - limit / max(cur, 1), 0.0)) * duration


def _hit_in_process(key: str, limit: int, window: int, elapsed: float) -> tuple[bool, int, int]:
    with _counts_lock:
        seen, cur, prev = _counts.get(key, (window, 0, 0))
        if seen != window:  # a new window: the last one seen is the previous one, or long gone
            cur, prev = 0, (cur if seen == window - 1 else 0)
        if prev * (1.0 - elapsed) + cur >= limit:
            return False, cur, prev
        if len(_counts) >= _COUNTS_MAX:
            _counts.clear()
        _counts[key] = (window, cur + 1, prev)
        return True, cur, prev


def _hit_redis(
    cache: RedisCache, current: str, previous: str, limit: int, elapsed: float, expiry: int
) -> tuple[bool, int, int]:
    keys = [cache.make_and_validate_key(current), cache.make_and_validate_key(previous)]
    client = cache._cache.get_client(keys[0], write=True)
    if not _redis_script:
        _redis_script.append(client.register_script(_REDIS_HIT))
    allowed, cur, prev = _redis_script[0](keys=keys, args=[limit, repr(elapsed), expiry], client=client)
    return bool(allowed), int(cur), int(prev)


def _hit_cache(
    cache: BaseCache, current: str, previous: str, limit: int, elapsed: float, expiry: int
) -> tuple[bool, int, int]:
    counts = cache.get_many([current, previous])
    cur, prev = int(counts.get(current, 0)), int(counts.get(previous, 0))
    if prev * (1.0 - elapsed) + cur >= limit:
        return False, cur, prev
    try:
        cache.incr(current)
    except ValueError:  # first request of the window (or the entry expired meanwhile)
        if not cache.add(current, 1, timeout=expiry):
            cache.incr(current)
    return True, cur, prev


def rate_hit(*, key: str, limit: int, duration: int, now: float, cache: BaseCache) -> float | None:
    """Count one request under ``key`` unless its sliding-window estimate has reached ``limit``.

    Args:
        key: what is limited (an API key's id, a client address), with the throttle's scope.
        limit, duration: ``limit`` requests per ``duration`` seconds.
        now: the clock, in seconds.
        cache: the backend itself (not the ``django.core.cache.cache`` proxy).

    Returns:
        None when the request is allowed (and counted); else the seconds to wait (not counted).
    """
    position = now / duration
    window = int(position)
    elapsed = position - window  # share of the current window gone
    if isinstance(cache, LocMemCache):
        allowed, cur, prev = _hit_in_process(key, limit, window, elapsed)
    else:
        hit = _hit_redis if isinstance(cache, RedisCache) else _hit_cache
        allowed, cur, prev = hit(
            cache, f"{key}:{window}", f"{key}:{window - 1}", limit, elapsed, 2 * duration
        )
    if allowed:
        return None
    return _wait_for(limit=limit, duration=duration, cur=cur, prev=prev, elapsed=elapsed)


def rate_counts_clear() -> None:
    """Forget this process's counts (tests; as ``cache.clear()`` does for the shared ones)."""
    with _counts_lock:
        _counts.clear()
