from __future__ import annotations

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from platform_core.api.auth import ApiPrincipal


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Rate limit per API key (rate from settings API_THROTTLE_RATE)."""

    scope = "api_key"

    def get_cache_key(self, request: Request, view: object) -> str | None:
        principal = request.auth
        if not isinstance(principal, ApiPrincipal):
            return self.get_ident(request)
        return f"throttle:{self.scope}:{principal.key_id}"
