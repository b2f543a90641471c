from __future__ import annotations

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from platform_core.api.auth import ApiPrincipal


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
