"""Segment endpoints: CRUD (``read`` to look, ``admin`` to change) and on-demand computation."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from platform_core.analytics import segments
from platform_core.analytics import validation as v
from platform_core.common.api import TenantAPIView


class SegmentInput(serializers.Serializer):
    name = serializers.CharField(max_length=64, help_text="Lowercase letters, digits, '-' and '_'.")
    kind = serializers.ChoiceField(choices=("rule", "cluster"), default="rule")
    definition = serializers.DictField(
        help_text='rule: {"match", "where", "events": [{"type", "days", "op", "count", "where"}]}; '
        'cluster: {"k", "seed", "describe_by"} (docs/analytics.md).'
    )


class TopValueOut(serializers.Serializer):
    value = serializers.CharField()
    events = serializers.IntegerField()
    share = serializers.FloatField()


class ClusterOut(serializers.Serializer):
    cluster = serializers.IntegerField(help_text="Address it as '<segment>:<cluster>'.")
    size = serializers.IntegerField()
    top_values = TopValueOut(many=True)


class SegmentOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    definition = serializers.DictField()
    size = serializers.IntegerField(help_text="Members at the last computation.")
    computed_at = serializers.DateTimeField(allow_null=True)
    clusters = ClusterOut(many=True)


class SegmentDeletedOut(serializers.Serializer):
    deleted = serializers.IntegerField(help_text="The id of the segment deleted.")


class SegmentListOut(serializers.Serializer):
    results = SegmentOut(many=True)


def _body(request: Request) -> dict[str, Any]:
    data = v.body_validate(SegmentInput, request.data)
    return {**data, "definition": dict(data["definition"])}


class SegmentCollectionApi(TenantAPIView):
    """GET: the tenant's segments. POST: create one (computed by the next schedule or ``/compute``)."""

    required_scopes = {"GET": "read", "POST": "admin"}

    @extend_schema(responses=SegmentListOut, operation_id="analytics_segments_list")
    def get(self, request: Request) -> Response:
        return Response(
            {"results": [segments.segment_out(s) for s in segments.segment_list(tenant=self.tenant)]}
        )

    @extend_schema(
        request=SegmentInput, responses={201: SegmentOut}, operation_id="analytics_segments_create"
    )
    def post(self, request: Request) -> Response:
        segment = segments.segment_create(tenant=self.tenant, data=_body(request))
        segments.segment_compute_request(segment=segment)
        return Response(segments.segment_out(segment), status=status.HTTP_201_CREATED)


class SegmentDetailApi(TenantAPIView):
    """GET / PUT (replace name, kind, definition) / DELETE one segment."""

    required_scopes = {"GET": "read", "PUT": "admin", "DELETE": "admin"}

    @extend_schema(responses=SegmentOut, operation_id="analytics_segments_retrieve")
    def get(self, request: Request, segment_id: int) -> Response:
        segment = segments.segment_get_for_tenant(tenant=self.tenant, segment_id=segment_id)
        return Response(segments.segment_out(segment))

    @extend_schema(request=SegmentInput, responses=SegmentOut, operation_id="analytics_segments_update")
    def put(self, request: Request, segment_id: int) -> Response:
        segment = segments.segment_get_for_tenant(tenant=self.tenant, segment_id=segment_id)
        segment = segments.segment_update(segment=segment, data=_body(request))
        segments.segment_compute_request(segment=segment)
        return Response(segments.segment_out(segment))

    @extend_schema(responses={200: SegmentDeletedOut}, operation_id="analytics_segments_destroy")
    def delete(self, request: Request, segment_id: int) -> Response:
        segment = segments.segment_get_for_tenant(tenant=self.tenant, segment_id=segment_id)
        segments.segment_delete(segment=segment)
        return Response({"deleted": segment_id})


class SegmentComputeApi(TenantAPIView):
    """POST: recompute the segment in the worker now; answers 202 with its current state."""

    required_scope = "admin"

    @extend_schema(request=None, responses={202: SegmentOut}, operation_id="analytics_segments_compute")
    def post(self, request: Request, segment_id: int) -> Response:
        segment = segments.segment_get_for_tenant(tenant=self.tenant, segment_id=segment_id)
        segments.segment_compute_request(segment=segment)
        return Response(segments.segment_out(segment), status=status.HTTP_202_ACCEPTED)
