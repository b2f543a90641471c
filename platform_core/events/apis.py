"""``/api/v1/events``: POST ingests (scope ``ingest``), GET lists (scope ``read``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from domains.base import DomainPlugin
from platform_core.common.api import TenantListAPIView
from platform_core.common.params import query_datetime
from platform_core.events import selectors, services
from platform_core.events.models import Event
from platform_core.events.sensitive import REVEAL_SCOPE, context_for_reader
from platform_core.plugins.selectors import tenant_plugin_get

_EVENT = inline_serializer(
    "Event",
    {
        "event_id": serializers.CharField(help_text="The client's idempotency key, unique per tenant."),
        "user_id": serializers.CharField(),
        "item_id": serializers.CharField(required=False, allow_null=True),
        "type": serializers.CharField(help_text="An event type of the tenant's domain."),
        "timestamp": serializers.DateTimeField(help_text="ISO 8601 with a time zone."),
        "value": serializers.FloatField(required=False, allow_null=True),
        "context": serializers.DictField(
            required=False,
            help_text=(
                "Fields the domain marks sensitive are encrypted at rest and shown masked "
                "('•••') unless the key has the admin scope."
            ),
        ),
    },
)
_BATCH = inline_serializer("EventBatch", {"events": _EVENT.__class__(many=True)})
_RESULT = inline_serializer(
    "IngestResult",
    {
        "received": serializers.IntegerField(),
        "inserted": serializers.IntegerField(),
        "duplicates": serializers.IntegerField(),
        "users_created": serializers.IntegerField(),
        "items_created": serializers.IntegerField(),
    },
)


def _event_out(event: Event, *, plugin: DomainPlugin, reveal: bool) -> dict[str, Any]:
    context = event.context
    if context:
        context = context_for_reader(plugin=plugin, event_type=event.type, context=context, reveal=reveal)
    return {
        "event_id": event.event_id,
        "user_id": event.user.external_id,
        "item_id": event.item.external_id if event.item_id else None,
        "type": event.type,
        "timestamp": event.timestamp.isoformat(),
        "value": event.value,
        "context": context,
        "received_at": event.received_at.isoformat(),
    }


class EventCollectionApi(TenantListAPIView):
    required_scopes = {"GET": "read", "POST": "ingest"}

    @extend_schema(
        request=_BATCH,
        responses={201: _RESULT, 200: _RESULT},
        description=(
            'One event object, or {"events": [...]} with up to EVENTS_MAX_BATCH (10,000) events. '
            "The whole batch is validated first: any bad row gives 400 listing every bad field and "
            "nothing is written. A repeated event_id is stored once and counted as a duplicate. "
            "201 when something was inserted, 200 when everything was a duplicate."
        ),
    )
    def post(self, request: Request) -> Response:
        result = services.event_ingest(tenant=self.tenant, payload=request.data)
        return Response(result.as_dict(), status=201 if result.inserted else 200)

    def list_queryset(self, request: Request) -> Any:
        q = request.query_params
        return selectors.event_list(
            tenant=self.tenant,
            user_external_id=q.get("user_id") or None,
            item_external_id=q.get("item_id") or None,
            type=q.get("type") or None,
            since=query_datetime(request, "since"),
            until=query_datetime(request, "until"),
        ).select_related("user", "item")

    def serialize(self, rows: list[Any]) -> list[dict[str, Any]]:
        plugin = tenant_plugin_get(tenant=self.tenant)
        reveal = REVEAL_SCOPE in self.request.auth.scopes
        return [_event_out(e, plugin=plugin, reveal=reveal) for e in rows]

    @extend_schema(
        parameters=[
            OpenApiParameter("user_id", str),
            OpenApiParameter("item_id", str),
            OpenApiParameter("type", str),
            OpenApiParameter("since", str, description="ISO 8601, inclusive"),
            OpenApiParameter("until", str, description="ISO 8601, exclusive"),
            OpenApiParameter("limit", int),
            OpenApiParameter("cursor", str),
        ],
        responses=_EVENT.__class__(many=True),
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
