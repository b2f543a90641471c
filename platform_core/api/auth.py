"""``Authorization: Api-Key <key>`` authentication, scopes and the tenant of a request.

Key → (tenant, scopes) lookups are cached in process for HOT_CACHE_SECONDS,
so a revocation takes effect within that time on every process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from platform_core.api.rate import rate_hit
from platform_core.tenancy.keys import key_hash, key_prefix
from platform_core.tenancy.models import ApiKey, Tenant

KEYWORD = "Api-Key"


@dataclass(frozen=True)
class ApiPrincipal:
    """Who is calling: the key's id, its tenant and scopes."""

    key_id: int
    prefix: str
    tenant: Tenant
    scopes: frozenset[str]
    is_authenticated: bool = True


_cache: dict[str, tuple[float, ApiPrincipal | None]] = {}
_LAST_USED_EVERY = 60.0  # seconds between last_used_at writes per key
_last_used: dict[int, float] = {}


def principal_for_key(raw_key: str) -> ApiPrincipal | None:
    """The principal of a raw key, or None for an unknown or revoked key (cached briefly)."""
    digest = key_hash(raw_key)
    now = time.monotonic()
    hit = _cache.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1]
    prefix = key_prefix(raw_key)
    principal = None
    if prefix is not None:
        key = (
            ApiKey.objects.select_related("tenant")
            .filter(prefix=prefix, secret_hash=digest, revoked_at__isnull=True)
            .first()
        )
        if key is not None:
            principal = ApiPrincipal(
                key_id=key.pk, prefix=key.prefix, tenant=key.tenant, scopes=frozenset(key.scopes)
            )
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[digest] = (now + settings.HOT_CACHE_SECONDS, principal)
    return principal


def principal_cache_clear() -> None:
    _cache.clear()


def touch_last_used(principal: ApiPrincipal) -> None:
    """Note the key's use (at most once a minute per key and process)."""
    now = time.monotonic()
    if now - _last_used.get(principal.key_id, 0.0) < _LAST_USED_EVERY:
        return
    _last_used[principal.key_id] = now
    ApiKey.objects.filter(pk=principal.key_id).update(last_used_at=timezone.now())


_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def auth_failure_count(request: Request) -> None:
    """Count a failed authentication of the request's client address (API_AUTH_FAILURE_RATE).

    Only failures count: a valid key from the same address is never held back.

    Raises:
        Throttled: the address is over its budget; it gets 429 with Retry-After
            instead of 401, so keys cannot be guessed at speed.
    """
    rate = settings.API_AUTH_FAILURE_RATE
    if not rate:
        return
    count, _, period = rate.partition("/")
    wait = rate_hit(
        key=f"throttle:auth_failure:{BaseThrottle().get_ident(request)}",  # REMOTE_ADDR unless NUM_PROXIES
        limit=int(count),
        duration=_PERIODS[period[:1]],
        now=time.time(),
        cache=caches[DEFAULT_CACHE_ALIAS],
    )
    if wait is not None:
        raise exceptions.Throttled(
            wait=max(wait, 1.0), detail="Too many failed authentications from this address."
        )


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiPrincipal, ApiPrincipal] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None  # HasApiKey refuses (and counts) it where a key is needed
        keyword, _, raw_key = header.partition(" ")
        if keyword != KEYWORD or not raw_key.strip():
            auth_failure_count(request)
            raise exceptions.AuthenticationFailed(f"Authorization header must be '{KEYWORD} <key>'.")
        principal = principal_for_key(raw_key.strip())
        if principal is None:
            auth_failure_count(request)
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        touch_last_used(principal)
        return principal, principal

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class HasApiKey(permissions.BasePermission):
    """Any valid key; views narrow it with ``required_scope``."""

    message = "This endpoint needs an API key."

    def has_permission(self, request: Request, view: object) -> bool:
        principal = request.auth
        if not isinstance(principal, ApiPrincipal):
            auth_failure_count(request)
            return False
        scope = _required_scope(request, view)
        if scope and scope not in principal.scopes and "admin" not in principal.scopes:
            raise exceptions.PermissionDenied(
                f"This API key lacks the '{scope}' scope (it has: {', '.join(sorted(principal.scopes))})."
            )
        return True


def _required_scope(request: Request, view: object) -> str | None:
    """``required_scopes = {"GET": "read", "POST": "ingest"}`` or ``required_scope = "read"`` on the view."""
    by_method = getattr(view, "required_scopes", None)
    if by_method:
        return by_method.get(request.method, by_method.get("*"))
    return getattr(view, "required_scope", None)


def request_tenant(request: Request) -> Tenant:
    """The tenant of an authenticated API request."""
    principal = request.auth
    if not isinstance(principal, ApiPrincipal):
        raise exceptions.NotAuthenticated()
    return principal.tenant
