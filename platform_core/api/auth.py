"""``Authorization: Api-Key <key>`` authentication, scopes and the tenant of a request.

Key → (tenant, scopes) lookups are cached in process for HOT_CACHE_SECONDS,
so a revocation takes effect within that time on every process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.metadata import BaseMetadata
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
    """A valid key holding the scope the view declares for the request's method.

    The rules (docs/api.md, "Methods and scopes"), failing closed:

    - HEAD needs GET's scope: it answers the same status and headers as GET.
    - OPTIONS needs a valid key of the tenant and nothing more: it answers only the
      methods the endpoint allows (:class:`AllowedMethodsMetadata`), no object lookup,
      no field descriptions, so it shows nothing the public OpenAPI document does not.
    - A method the view does not implement passes here and DRF answers 405.
    - A method the view implements but declares no scope for is refused (403).
    """

    message = "This endpoint needs an API key."

    def has_permission(self, request: Request, view: object) -> bool:
        principal = request.auth
        if not isinstance(principal, ApiPrincipal):
            auth_failure_count(request)
            return False
        if not _implements(view, request.method or ""):
            return True  # dispatch answers 405 (the allowed methods are public anyway)
        scopes = required_scopes_for(view, request.method or "")
        if not scope_allows(principal, scopes):
            raise exceptions.PermissionDenied(_lacking_message(request.method or "", scopes, principal))
        return True


ANY_VALID_KEY: tuple[str, ...] = ()  # OPTIONS: no scope, but a valid key


def required_scopes_for(view: object, method: str) -> tuple[str, ...] | None:
    """The scopes (any one suffices) ``method`` needs on ``view``; None: nothing declared.

    Views declare ``required_scopes = {"GET": "read", "POST": "ingest"}`` (a value may be
    a tuple of alternatives; ``"*"`` covers the methods not named) or one
    ``required_scope`` for every method. HEAD is looked up as GET.
    """
    method = method.upper()
    if method == "OPTIONS":
        return ANY_VALID_KEY
    if method == "HEAD":
        method = "GET"
    by_method = getattr(view, "required_scopes", None)
    spec = by_method.get(method, by_method.get("*")) if by_method else getattr(view, "required_scope", None)
    if spec is None or spec == ():
        return None  # an undeclared method or an explicit None: refused, never "any key"
    return (spec,) if isinstance(spec, str) else tuple(spec)


def scope_allows(principal: ApiPrincipal, scopes: tuple[str, ...] | None) -> bool:
    """Whether the key may call a method needing ``scopes`` (``admin`` holds every scope)."""
    if scopes is None:
        return False
    return not scopes or "admin" in principal.scopes or bool(principal.scopes.intersection(scopes))


def _implements(view: object, method: str) -> bool:
    # Django's View.setup() gives a view with ``get`` a ``head`` too; APIView has ``options``.
    name = method.lower()
    return name in getattr(view, "http_method_names", ()) and hasattr(view, name)


def _lacking_message(method: str, scopes: tuple[str, ...] | None, principal: ApiPrincipal) -> str:
    held = ", ".join(sorted(principal.scopes))
    if scopes is None:
        return f"No scope is declared for {method} on this endpoint, so no key may call it."
    wanted = " or ".join(f"'{s}'" for s in scopes)
    return f"This API key lacks the {wanted} scope (it has: {held})."


class AllowedMethodsMetadata(BaseMetadata):
    """OPTIONS answers the allowed methods only (DRF's default adds names, descriptions, fields)."""

    def determine_metadata(self, request: Request, view: Any) -> dict[str, Any]:
        return {"methods": list(view.allowed_methods)}


def request_tenant(request: Request) -> Tenant:
    """The tenant of an authenticated API request."""
    principal = request.auth
    if not isinstance(principal, ApiPrincipal):
        raise exceptions.NotAuthenticated()
    return principal.tenant
