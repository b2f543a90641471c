"""REST endpoints of the catalog: ``/api/v1/users`` and ``/api/v1/items``.

Scopes: reads need ``read``; upserts need ``ingest``; deletes (erasure) and erasure receipts
(``/api/v1/erasures/{id}``) need ``admin``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from platform_core.catalog import selectors, services
from platform_core.catalog.models import EndUser, ErasureReceipt, Item
from platform_core.common.api import TenantAPIView, TenantListAPIView
from platform_core.common.params import query_bool, query_datetime

_ATTRS = serializers.DictField(help_text="Attributes declared by the tenant's domain plugin.")
_USER_OUT = inline_serializer(
    "User",
    {
        "user_id": serializers.CharField(),
        "attributes": _ATTRS,
        "created_at": serializers.DateTimeField(),
        "updated_at": serializers.DateTimeField(),
    },
)
_ITEM_OUT = inline_serializer(
    "Item",
    {
        "item_id": serializers.CharField(),
        "attributes": _ATTRS,
        "active": serializers.BooleanField(),
        "created_at": serializers.DateTimeField(),
        "updated_at": serializers.DateTimeField(),
    },
)
_UPSERT_OUT = inline_serializer(
    "UpsertResult", {"created": serializers.IntegerField(), "updated": serializers.IntegerField()}
)
_DELETED_OUT = inline_serializer(
    "Deleted", {"deleted": serializers.DictField(child=serializers.IntegerField())}
)
_COUNTS = serializers.DictField(
    child=serializers.IntegerField(),
    help_text='Rows removed (or scrubbed) per model, e.g. {"events.Event": 12}.',
)
_ERASED_OUT = inline_serializer(
    "UserErased",
    {"deleted": _COUNTS, "erasure_id": serializers.IntegerField(help_text="GET /api/v1/erasures/{id}")},
)
_RECEIPT_OUT = inline_serializer(
    "ErasureReceipt",
    {
        "erasure_id": serializers.IntegerField(),
        "erased_at": serializers.DateTimeField(),
        "subject_hash": serializers.CharField(
            help_text="HMAC-SHA256 (hex) of the user's id under a per-tenant server key; never the id."
        ),
        "counts": _COUNTS,
        "model_versions": serializers.ListField(
            child=serializers.IntegerField(), help_text="Model versions trained while the user had events."
        ),
        "retrain_due_by": serializers.DateTimeField(
            allow_null=True, help_text="Null when no serving version was trained on the user."
        ),
        "retrain_job_id": serializers.IntegerField(allow_null=True),
        "retrained_at": serializers.DateTimeField(
            allow_null=True, help_text="When a version trained without the user went live."
        ),
        "retrained_version_id": serializers.IntegerField(allow_null=True),
        "retrain_pending": serializers.BooleanField(),
    },
)
_LIST_PARAMS = [
    OpenApiParameter("external_id_prefix", str),
    OpenApiParameter("updated_since", str, description="ISO 8601 with a time zone"),
    OpenApiParameter("limit", int, description="page size, at most 1000"),
    OpenApiParameter("cursor", str, description="from the previous page's `next`"),
]


def _user_out(user: EndUser, *, listing: bool) -> dict[str, Any]:
    return {
        "user_id": user.external_id,
        "attributes": selectors.attributes_for_reading(
            tenant=user.tenant, kind="user", attributes=user.attributes, listing=listing
        ),
        "created_at": user.created_at.isoformat(),
        "updated_at": user.updated_at.isoformat(),
    }


def _item_out(item: Item, *, listing: bool) -> dict[str, Any]:
    return {
        "item_id": item.external_id,
        "attributes": selectors.attributes_for_reading(
            tenant=item.tenant, kind="item", attributes=item.attributes, listing=listing
        ),
        "active": item.active,
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
    }


def _body(request: Request) -> dict[str, Any]:
    return request.data if isinstance(request.data, dict) else {"__body__": request.data}


class UserCollectionApi(TenantListAPIView):
    """GET: list users (cursor pagination). POST: bulk upsert ``{"users": [...]}``."""

    required_scopes = {"GET": "read", "POST": "ingest"}

    def list_queryset(self, request: Request) -> Any:
        return selectors.enduser_list(
            tenant=self.tenant,
            external_id_prefix=request.query_params.get("external_id_prefix") or None,
            updated_since=query_datetime(request, "updated_since"),
        ).select_related("tenant")

    def serialize(self, rows: list[Any]) -> list[dict[str, Any]]:
        return [_user_out(u, listing=True) for u in rows]

    @extend_schema(parameters=_LIST_PARAMS, responses=_USER_OUT.__class__(many=True))
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=inline_serializer(
            "UserBulk", {"users": serializers.ListField(child=serializers.DictField())}
        ),
        responses=_UPSERT_OUT,
    )
    def post(self, request: Request) -> Response:
        data = _body(request)
        if set(data) != {"users"}:
            return _shape_error("users")
        result = services.enduser_bulk_upsert(tenant=self.tenant, rows=data["users"])
        return Response({"created": result.created, "updated": result.updated})


class UserDetailApi(TenantAPIView):
    """GET / PUT (create or replace) / DELETE (erase) one user by the tenant's own id."""

    required_scopes = {"GET": "read", "PUT": "ingest", "DELETE": "admin"}

    @extend_schema(responses=_USER_OUT)
    def get(self, request: Request, external_id: str) -> Response:
        user = selectors.enduser_get_for_tenant(tenant=self.tenant, external_id=external_id)
        return Response(_user_out(user, listing=False))

    @extend_schema(
        request=inline_serializer("UserPut", {"attributes": _ATTRS}),
        responses={200: _USER_OUT, 201: _USER_OUT},
    )
    def put(self, request: Request, external_id: str) -> Response:
        data = _body(request)
        extra = set(data) - {"attributes"}
        if extra:
            return _unknown(extra)
        user, created = services.enduser_upsert(
            tenant=self.tenant, external_id=external_id, attributes=data.get("attributes", {})
        )
        return Response(_user_out(user, listing=False), status=201 if created else 200)

    @extend_schema(
        responses={200: _ERASED_OUT},
        description="Erase the user and everything derived from them; the answer names the stored receipt.",
    )
    def delete(self, request: Request, external_id: str) -> Response:
        receipt = services.enduser_erase(tenant=self.tenant, external_id=external_id)
        return Response({"deleted": receipt.counts, "erasure_id": receipt.pk})


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _receipt_out(receipt: ErasureReceipt) -> dict[str, Any]:
    return {
        "erasure_id": receipt.pk,
        "erased_at": receipt.erased_at.isoformat(),
        "subject_hash": receipt.subject_hash,
        "counts": receipt.counts,
        "model_versions": receipt.model_versions,
        "retrain_due_by": _iso(receipt.retrain_due_by),
        "retrain_job_id": receipt.retrain_job_id,
        "retrained_at": _iso(receipt.retrained_at),
        "retrained_version_id": receipt.retrained_version_id,
        "retrain_pending": receipt.retrain_pending,
    }


class ErasureDetailApi(TenantAPIView):
    """GET one erasure receipt of the caller's tenant (scope ``admin``, like the erasure itself)."""

    required_scopes = {"GET": "admin"}

    @extend_schema(responses=_RECEIPT_OUT)
    def get(self, request: Request, erasure_id: int) -> Response:
        receipt = selectors.erasure_receipt_get_for_tenant(tenant=self.tenant, erasure_id=erasure_id)
        return Response(_receipt_out(receipt))


class ItemCollectionApi(TenantListAPIView):
    """GET: list items (cursor pagination, ``active`` filter). POST: bulk upsert ``{"items": [...]}``."""

    required_scopes = {"GET": "read", "POST": "ingest"}

    def list_queryset(self, request: Request) -> Any:
        return selectors.item_list(
            tenant=self.tenant,
            external_id_prefix=request.query_params.get("external_id_prefix") or None,
            updated_since=query_datetime(request, "updated_since"),
            active=query_bool(request, "active"),
        ).select_related("tenant")

    def serialize(self, rows: list[Any]) -> list[dict[str, Any]]:
        return [_item_out(i, listing=True) for i in rows]

    @extend_schema(
        parameters=[*_LIST_PARAMS, OpenApiParameter("active", bool)], responses=_ITEM_OUT.__class__(many=True)
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=inline_serializer(
            "ItemBulk", {"items": serializers.ListField(child=serializers.DictField())}
        ),
        responses=_UPSERT_OUT,
    )
    def post(self, request: Request) -> Response:
        data = _body(request)
        if set(data) != {"items"}:
            return _shape_error("items")
        result = services.item_bulk_upsert(tenant=self.tenant, rows=data["items"])
        return Response({"created": result.created, "updated": result.updated})


class ItemDetailApi(TenantAPIView):
    """GET / PUT (create or replace) / DELETE one item by the tenant's own id."""

    required_scopes = {"GET": "read", "PUT": "ingest", "DELETE": "admin"}

    @extend_schema(responses=_ITEM_OUT)
    def get(self, request: Request, external_id: str) -> Response:
        item = selectors.item_get_for_tenant(tenant=self.tenant, external_id=external_id)
        return Response(_item_out(item, listing=False))

    @extend_schema(
        request=inline_serializer(
            "ItemPut", {"attributes": _ATTRS, "active": serializers.BooleanField(default=True)}
        ),
        responses={200: _ITEM_OUT, 201: _ITEM_OUT},
    )
    def put(self, request: Request, external_id: str) -> Response:
        data = _body(request)
        extra = set(data) - {"attributes", "active"}
        if extra:
            return _unknown(extra)
        item, created = services.item_upsert(
            tenant=self.tenant,
            external_id=external_id,
            attributes=data.get("attributes", {}),
            active=data.get("active", True),
        )
        return Response(_item_out(item, listing=False), status=201 if created else 200)

    @extend_schema(responses={200: _DELETED_OUT})
    def delete(self, request: Request, external_id: str) -> Response:
        deleted = services.item_delete(tenant=self.tenant, external_id=external_id)
        return Response({"deleted": deleted})


def _unknown(extra: set[str]) -> Response:
    from platform_core.common.errors import error_body

    fields = {k: ["is not a known field"] for k in sorted(extra)}
    first = next(iter(fields))
    return Response(
        error_body("validation_error", f"Invalid input: {first}: is not a known field", fields),
        status=status.HTTP_400_BAD_REQUEST,
    )


def _shape_error(key: str) -> Response:
    from platform_core.common.errors import error_body

    return Response(
        error_body(
            "validation_error",
            f'Invalid input: the body must be {{"{key}": [...]}}',
            {key: ["is required and must be the only field"]},
        ),
        status=status.HTTP_400_BAD_REQUEST,
    )
