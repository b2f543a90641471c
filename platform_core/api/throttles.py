"""API throttles: per API key on every endpoint, per client address for failed authentications.

Both count with :func:`platform_core.api.rate.rate_hit`: in this process with
the default local-memory cache, shared by every web process with Redis
(``CACHE_URL``). README, "Throttling".
"""

from __future__ import annotations

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache import cache as default_cache
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from platform_core.api.auth import ApiPrincipal
from platform_core.api.rate import rate_counts_clear, rate_hit


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Rate limit per API key (rate from settings API_THROTTLE_RATE): a sliding-window counter.

    DRF's ``SimpleRateThrottle`` keeps the timestamp of every request of the
    window in one cache entry and reads and writes the whole list on each
    request, so its cost grows with the rate (≈ 18,000 entries a minute at
    300 requests/s: a large share of a recommendation's CPU). ``rate_hit``
    does O(1) work per request whatever the rate.
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
        backend = caches[DEFAULT_CACHE_ALIAS] if self.cache is default_cache else self.cache
        wait = rate_hit(
            key=self.key, limit=self.num_requests, duration=self.duration, now=self.timer(), cache=backend
        )
        self._retry_after = wait or 0.0
        return wait is None

    def wait(self) -> float | None:
        return max(getattr(self, "_retry_after", 0.0), 1.0)


throttle_counts_clear = rate_counts_clear  # the name tests and conftest know
