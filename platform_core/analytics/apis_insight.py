"""Interest trajectories and recommendation impact (scope ``read``): thin views, their inputs and answers.

Kept apart from ``apis`` so the funnel/retention/paths/trending views and
these grow independently; the shapes follow the same rules (one error shape,
every field named, the serializers double as the OpenAPI description).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from platform_core.analytics import validation as v
from platform_core.analytics.impact import impact_compute
from platform_core.analytics.segments import segment_ref_resolve
from platform_core.analytics.trajectories import (
    MAX_MONTHS,
    MAX_USERS,
    UserSelection,
    trajectory_compute,
    user_selection_all,
    user_selection_ids,
    user_selection_one,
    user_selection_segment,
)
from platform_core.catalog.selectors import enduser_get_for_tenant
from platform_core.common.api import TenantAPIView
from platform_core.tenancy.models import Tenant


# ---------------------------------------------------------------- inputs
def _optional_text(max_length: int, help_text: str) -> serializers.CharField:
    """An optional text field where absent, null and "" all mean the default."""
    return serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        max_length=max_length,
        help_text=help_text,
    )


class TrajectoryInput(serializers.Serializer):
    months = serializers.IntegerField(required=False, default=6, min_value=2, max_value=MAX_MONTHS)
    to = serializers.DateTimeField(
        required=False,
        default=None,
        allow_null=True,
        help_text="The last month shown is the one holding 'to' (exclusive); default now.",
    )
    attribute = _optional_text(
        200, "Categorical item attribute; default 'category' (or the domain's first categorical one)."
    )
    compare_from = _optional_text(7, "YYYY-MM; default the month before compare_to.")
    compare_to = _optional_text(7, "YYYY-MM; default the last month.")
    k = serializers.IntegerField(
        required=False, default=5, min_value=1, max_value=50, help_text="Risers and fallers listed."
    )


class GroupTrajectoryInput(TrajectoryInput):
    users = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        allow_null=True,
        default=None,
        allow_empty=False,
        max_length=MAX_USERS,
        help_text="External user ids; null or absent (and no segment): every user of the tenant.",
    )
    segment = serializers.CharField(
        required=False,
        allow_null=True,
        default=None,
        max_length=80,
        help_text="A segment (name, id, or name:n for one cluster): its members, instead of users.",
    )


class ImpactInput(v._RangeInput):
    conversion_type = _optional_text(
        64,
        "The event type counted as a conversion; default 'purchase', else the domain's heaviest event type.",
    )


# ---------------------------------------------------------------- answers (OpenAPI only)
class ShareOut(serializers.Serializer):
    value = serializers.CharField()
    weight = serializers.FloatField()
    share = serializers.FloatField()


class MonthOut(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM (UTC).")
    users = serializers.IntegerField()
    total_weight = serializers.FloatField()
    shares = ShareOut(many=True)
    shares_truncated = serializers.BooleanField()


class ChangeOut(serializers.Serializer):
    value = serializers.CharField()
    share_from = serializers.FloatField()
    share_to = serializers.FloatField()
    delta = serializers.FloatField()


class ChangesOut(serializers.Serializer):
    to = serializers.CharField()
    risers = ChangeOut(many=True)
    fallers = ChangeOut(many=True)


ChangesOut._declared_fields["from"] = serializers.CharField()


class TrajectoryOut(serializers.Serializer):
    users = serializers.CharField(help_text="Whose events: a user id, 'all users' or 'N listed users'.")
    attribute = serializers.CharField()
    weights = serializers.DictField(child=serializers.FloatField(), help_text="Event type weights used.")
    months = MonthOut(many=True)
    changes = ChangesOut()


class RateOut(serializers.Serializer):
    users = serializers.IntegerField()
    converted = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)
    ci95 = serializers.ListField(
        child=serializers.FloatField(), allow_null=True, help_text="Wilson score interval."
    )


class VersionImpactOut(RateOut):
    model_version = serializers.IntegerField(allow_null=True)
    difference = serializers.FloatField(allow_null=True)
    difference_ci95 = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    ctr = serializers.FloatField(allow_null=True, help_text="Clicks per item shown, the version's lifetime.")


class ImpactOut(serializers.Serializer):
    to = serializers.DateTimeField()
    conversion_type = _optional_text(
        64,
        "The event type counted as a conversion; default 'purchase', else the domain's heaviest event type.",
    )
    versions = VersionImpactOut(many=True)


ImpactOut._declared_fields["from"] = serializers.DateTimeField()


# ---------------------------------------------------------------- views
class UserTrajectoryApi(TenantAPIView):
    """GET /users/{id}/trajectory?months=6."""

    required_scope = "read"

    @extend_schema(
        parameters=[TrajectoryInput, OpenApiParameter("external_id", str, OpenApiParameter.PATH)],
        responses=TrajectoryOut,
    )
    def get(self, request: Request, external_id: str) -> Response:
        query = v.body_validate(TrajectoryInput, request.query_params.dict())
        user = enduser_get_for_tenant(tenant=self.tenant, external_id=external_id)
        body = trajectory_compute(tenant=self.tenant, selection=user_selection_one(user=user), query=query)
        return Response(body)


def _selection(*, tenant: Tenant, ids: list[str] | None, segment: str | None) -> UserSelection:
    if segment is not None and ids is not None:
        raise v.fail("segment", "give users or a segment, not both")
    if segment is not None:
        ref = segment_ref_resolve(tenant=tenant, ref=segment, field="segment")
        return user_selection_segment(segment_id=ref.segment_id, cluster=ref.cluster, label=ref.label)
    return user_selection_all() if ids is None else user_selection_ids(external_ids=ids)


class GroupTrajectoryApi(TenantAPIView):
    """POST /analytics/trajectories {users: [...] | null, months, ...}."""

    required_scope = "read"

    @extend_schema(request=GroupTrajectoryInput, responses=TrajectoryOut)
    def post(self, request: Request) -> Response:
        query = v.body_validate(GroupTrajectoryInput, request.data)
        selection = _selection(tenant=self.tenant, ids=query.pop("users"), segment=query.pop("segment"))
        return Response(trajectory_compute(tenant=self.tenant, selection=selection, query=query))


class ImpactApi(TenantAPIView):
    """POST /analytics/impact {from, to, conversion_type}."""

    required_scope = "read"

    @extend_schema(request=ImpactInput, responses=ImpactOut)
    def post(self, request: Request) -> Response:
        query = v.body_validate(ImpactInput, request.data)
        return Response(impact_compute(tenant=self.tenant, query=query))
