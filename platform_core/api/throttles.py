from __future__ import annotations

import threading

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache import cache as default_cache
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from platform_core.api.auth import ApiPrincipal

#: Counts of this process when the cache is a LocMemCache: throttle key → (window, its count,
#: the previous window's count).
_counts: dict[str, tuple[int, int, int]] = {}
_counts_lock = threading.Lock()
_COUNTS_MAX = 100_000


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Rate limit per API key (rate from settings API_THROTTLE_RATE): a sliding-window counter.

    DRF's ``SimpleRateThrottle`` keeps the timestamp of every request of the
    window in one cache entry and reads and writes the whole list on each
    request, so its cost grows with the rate (≈ 18,000 entries a minute at
    300 requests/s: a large share of a recommendation's CPU). Here the cache
    holds one counter per key and fixed window; the estimate weights the
    previous window by the part of it still inside the sliding one
    (``previous × (1 − elapsed) + current``): two cache operations per
    request whatever the rate, on whichever cache backend is configured.

    A ``LocMemCache`` holds this process's counts only anyway; with it the
    counts live in a dict of this module instead (the cache's pickling and
    key checks cost ≈ 20 µs a request, the dict ≈ 2 µs): the same counts and
    answers.
    """

    scope = "api_key"

    def get_cache_key(self, request: Request, view: object) -> str | None:
        principal = request.auth
        if not isinstance(principal, ApiPrincipal):
            return self.get_ident(request)
        return f"throttle:{self.scope}:{principal.key_id}"

    def allow_request(self, request: Request, view: object) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        position = self.timer() / self.duration
        window = int(position)
        elapsed = position - window  # share of the current window gone
        backend = caches[DEFAULT_CACHE_ALIAS] if self.cache is default_cache else self.cache
        if isinstance(backend, LocMemCache):
            return self._allow_in_process(window, elapsed)
        current, previous = f"{self.key}:{window}", f"{self.key}:{window - 1}"
        counts = self.cache.get_many([current, previous])
        cur, prev = int(counts.get(current, 0)), int(counts.get(previous, 0))
        if prev * (1.0 - elapsed) + cur >= self.num_requests:
            self._retry_after = self._wait_for(cur=cur, prev=prev, elapsed=elapsed)
            return False
        try:
            self.cache.incr(current)
        except ValueError:  # first request of the window (or the entry expired meanwhile)
            if not self.cache.add(current, 1, timeout=2 * self.duration):
                self.cache.incr(current)
        return True

    def _allow_in_process(self, window: int, elapsed: float) -> bool:
        with _counts_lock:
            seen, cur, prev = _counts.get(self.key, (window, 0, 0))  # type: ignore[arg-type]
            if seen != window:  # a new window: the last one seen is the previous one, or long gone
                cur, prev = 0, (cur if seen == window - 1 else 0)
            if prev * (1.0 - elapsed) + cur >= self.num_requests:
                self._retry_after = self._wait_for(cur=cur, prev=prev, elapsed=elapsed)
                return False
            if len(_counts) >= _COUNTS_MAX:
                _counts.clear()
            _counts[self.key] = (window, cur + 1, prev)  # type: ignore[index]
            return True

    def _wait_for(self, *, cur: int, prev: int, elapsed: float) -> float:
        """Seconds until the estimate falls below the limit again, if no request comes meanwhile."""
        limit = self.num_requests
        if cur < limit and prev > 0:
            share = 1.0 - (limit - cur) / prev  # elapsed share at which prev's weight is small enough
            return max(share - elapsed, 0.0) * self.duration
        # The current window alone is over: it becomes the previous one and must fade enough.
        return ((1.0 - elapsed) + max(1.0 - limit / max(cur, 1), 0.0)) * self.duration

    def wait(self) -> float | None:
        return max(getattr(self, "_retry_after", 0.0), 1.0)


def throttle_counts_clear() -> None:
    """Forget this process's counts (tests; as ``cache.clear()`` does for the shared ones)."""
    with _counts_lock:
        _counts.clear()
