"""Base classes of tenant-owned API views.

The tenant always comes from the caller's API key (never from the URL or the
body), so a view cannot forget to scope: ``self.tenant`` is all it gets.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import QuerySet
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from platform_core.api.auth import request_tenant
from platform_core.common.pagination import IdCursorPagination
from platform_core.tenancy.models import Tenant


class TenantAPIView(APIView):
    """An API view of one tenant's data; subclasses set ``required_scope(s)``."""

    required_scope: ClassVar[str | None] = "read"

    @property
    def tenant(self) -> Tenant:
        return request_tenant(self.request)


class TenantListAPIView(TenantAPIView):
    """A cursor-paginated list: subclasses give ``list_queryset`` and ``serialize``."""

    pagination_class = IdCursorPagination

    def list_queryset(self, request: Request) -> QuerySet[Any]:
        raise NotImplementedError

    def serialize(self, rows: list[Any]) -> list[dict[str, Any]]:
        raise NotImplementedError

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(self.list_queryset(request), request, view=self)
        return paginator.get_paginated_response(self.serialize(list(page or [])))
