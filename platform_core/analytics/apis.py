"""Analytics endpoints (scope ``read``): thin views over the analytics selectors.

Each validates its input with the serializers of ``validation`` (also the
OpenAPI request bodies), calls one selector and returns its answer.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from platform_core.analytics import selectors
from platform_core.analytics import validation as v
from platform_core.common.api import TenantAPIView


# ---------------------------------------------------------------- answers (OpenAPI only)
class _RangeOut(serializers.Serializer):
    to = serializers.DateTimeField()


_RangeOut._declared_fields["from"] = serializers.DateTimeField()


class FunnelStepOut(serializers.Serializer):
    step = serializers.IntegerField()
    users = serializers.IntegerField(help_text="Users who reached this step.")
    conversion = serializers.FloatField(help_text="users / users of step 0 (0 when step 0 has none).")
    median_seconds = serializers.FloatField(allow_null=True, help_text="Median time from the previous step.")


class FunnelGroupOut(serializers.Serializer):
    value = serializers.CharField(allow_null=True, help_text="The attribute's value as text; null: missing.")
    steps = FunnelStepOut(many=True)


class FunnelOut(_RangeOut):
    window = serializers.CharField()
    steps = FunnelStepOut(many=True)
    breakdown = serializers.CharField(required=False)
    groups = FunnelGroupOut(many=True, required=False)
    groups_truncated = serializers.BooleanField(required=False)


class CohortOut(serializers.Serializer):
    start = serializers.DateTimeField()
    users = serializers.IntegerField()
    retained = serializers.ListField(
        child=serializers.IntegerField(), help_text="Entry n: users back n periods later; entry 0 = users."
    )


class RetentionGroupOut(serializers.Serializer):
    value = serializers.CharField(
        allow_null=True, help_text="The segment (name:n for a cluster) or attribute; null: none."
    )
    cohorts = CohortOut(many=True)


class RetentionOut(_RangeOut):
    period = serializers.CharField()
    cohorts = CohortOut(many=True)
    breakdown = serializers.CharField(required=False)
    groups = RetentionGroupOut(many=True, required=False)
    groups_truncated = serializers.BooleanField(required=False)


class PathOut(serializers.Serializer):
    path = serializers.ListField(child=serializers.CharField())
    sessions = serializers.IntegerField()


class PathsOut(_RangeOut):
    event = serializers.CharField()
    direction = serializers.CharField()
    by = serializers.CharField()
    paths = PathOut(many=True)


class TrendingItemOut(serializers.Serializer):
    item_id = serializers.CharField()
    count = serializers.IntegerField(help_text="Events in the window.")
    previous_mean = serializers.FloatField(help_text="Mean events per preceding window.")
    growth = serializers.FloatField(help_text="(count + 1) / (previous_mean + 1).")


class TrendingOut(serializers.Serializer):
    window = serializers.CharField()
    periods = serializers.IntegerField()
    min_count = serializers.IntegerField()
    items = TrendingItemOut(many=True)


# ---------------------------------------------------------------- views
class FunnelApi(TenantAPIView):
    """POST /analytics/funnel."""

    required_scope = "read"

    @extend_schema(request=v.FunnelInput, responses=FunnelOut)
    def post(self, request: Request) -> Response:
        query = v.body_validate(v.FunnelInput, request.data)
        return Response(selectors.funnel_compute(tenant=self.tenant, query=query))


class RetentionApi(TenantAPIView):
    """POST /analytics/retention."""

    required_scope = "read"

    @extend_schema(request=v.RetentionInput, responses=RetentionOut)
    def post(self, request: Request) -> Response:
        query = v.body_validate(v.RetentionInput, request.data)
        return Response(selectors.retention_compute(tenant=self.tenant, query=query))


class PathsApi(TenantAPIView):
    """POST /analytics/paths."""

    required_scope = "read"

    @extend_schema(request=v.PathsInput, responses=PathsOut)
    def post(self, request: Request) -> Response:
        query = v.body_validate(v.PathsInput, request.data)
        return Response(selectors.paths_compute(tenant=self.tenant, query=query))


class TrendingApi(TenantAPIView):
    """GET /trending?window=24h&k=&periods=&min_count=&type=&category=&segment=&filter=&filter_params=."""

    required_scope = "read"

    @extend_schema(
        parameters=[v.TrendingInput],  # each field one query parameter
        responses=TrendingOut,
    )
    def get(self, request: Request) -> Response:
        query = v.body_validate(v.TrendingInput, request.query_params.dict())
        return Response(selectors.trending_list(tenant=self.tenant, query=query))
