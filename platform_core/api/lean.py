"""A lean GET path for the hottest read endpoints (recommendations, similar items).

DRF's dispatch (wrapping the request, content negotiation, the
authentication, permission and throttle loops, the ``Response`` and its
rendering) costs about as much as serving a kept recommendation list. Views
with :class:`LeanGetMixin` answer an ordinary GET through the same steps
called directly: the ``Api-Key`` header through the same cached lookup, the
view's scope, the view's throttles; their body is rendered with orjson.

Anything out of the ordinary goes through DRF's own dispatch, which answers
it as every other endpoint does: no or a malformed ``Authorization`` header,
an unknown or revoked key, a missing scope, a throttled key, other
authentication or permission classes than the API-key ones, and every other
method. Errors the view raises go through the project's exception handler:
the same body, status and headers as through DRF.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from rest_framework.request import Request
from rest_framework.response import Response

from platform_core.api.auth import (
    KEYWORD,
    ApiKeyAuthentication,
    ApiPrincipal,
    HasApiKey,
    principal_for_key,
    required_scopes_for,
    scope_allows,
    touch_last_used,
)
from platform_core.api.renderers import OrjsonRenderer
from platform_core.common.errors import api_exception_handler
from platform_core.tenancy.models import Tenant


class _ThrottleRequest:
    """What throttles read of a request (DRF sets ``user`` and ``auth`` to the principal)."""

    __slots__ = ("META", "auth", "method", "user")

    def __init__(self, request: HttpRequest, principal: ApiPrincipal) -> None:
        self.META = request.META
        self.method = request.method
        self.auth = self.user = principal


def _json(data: Any, status: int = 200, headers: Any = None) -> HttpResponse:
    # The DRF path's renderer, so both paths write the same bytes (and fall back alike).
    body = OrjsonRenderer().render(data)
    return HttpResponse(body, status=status, headers=headers, content_type="application/json")


class LeanGetMixin:
    """Put before ``TenantAPIView``; implement :meth:`answer` (``get`` is derived from it)."""

    def answer(self, query: QueryDict, tenant: Tenant, *args: Any, **kwargs: Any) -> Any:
        """The body of a GET (JSON-serialisable); raise the usual errors."""
        raise NotImplementedError

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(self.answer(request.query_params, self.tenant, *args, **kwargs))  # type: ignore[attr-defined]

    def _lean_principal(self, request: HttpRequest) -> ApiPrincipal | None:
        """The caller when DRF would let this GET through to ``get``; None: let DRF decide."""
        view: Any = self
        if view.authentication_classes != [ApiKeyAuthentication] or view.permission_classes != [HasApiKey]:
            return None
        keyword, _, raw_key = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        raw_key = raw_key.strip()
        if keyword != KEYWORD or not raw_key:
            return None
        principal = principal_for_key(raw_key)
        if principal is None:
            return None
        if not scope_allows(principal, required_scopes_for(view, "GET")):
            return None
        throttle_request = _ThrottleRequest(request, principal)
        # A refusal leaves the count as it was, so DRF, asked next, refuses too and answers 429
        # with Retry-After (with several throttles, those before the refusing one count twice).
        if not all(t.allow_request(throttle_request, view) for t in view.get_throttles()):
            return None
        touch_last_used(principal)
        return principal

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Only GET: HEAD, OPTIONS and every other method go through DRF's dispatch and its checks.
        if request.method != "GET":
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        principal = self._lean_principal(request)
        if principal is None:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        try:
            body = self.answer(request.GET, principal.tenant, *args, **kwargs)
        except Exception as exc:
            response = api_exception_handler(exc, {"view": self, "request": request})
            if response is None:
                raise  # a server error: Django logs it and answers 500, as through DRF
            headers = {k: v for k, v in response.items() if k.lower() != "content-type"}
            return _json(response.data, response.status_code, headers)
        return _json(body)
