"""REST endpoint of the profiles app: ``GET /api/v1/profiles/{user_id}`` (scope ``read``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from platform_core.common.api import TenantAPIView
from platform_core.profiles.models import UserProfile
from platform_core.profiles.selectors import profile_get_for_tenant

_PROFILE_OUT = inline_serializer(
    "UserProfile",
    {
        "user_id": serializers.CharField(),
        "segment": serializers.CharField(),
        "interests": serializers.ListField(child=serializers.DictField()),
        "trajectory": serializers.DictField(),
        "activity": serializers.DictField(),
        "features": serializers.DictField(),
        "n_events": serializers.IntegerField(),
        "has_embedding": serializers.BooleanField(),
        "model_version_id": serializers.IntegerField(allow_null=True),
        "computed_at": serializers.DateTimeField(allow_null=True),
    },
)


def profile_out(profile: UserProfile) -> dict[str, Any]:
    return {
        "user_id": profile.user.external_id,
        "segment": profile.segment,
        "interests": profile.interests,
        "trajectory": profile.trajectory,
        "activity": profile.activity,
        "features": profile.features,
        "n_events": profile.n_events,
        # The vector itself is not served: it is an internal representation.
        "has_embedding": profile.embedding is not None,
        "model_version_id": profile.model_version_id,
        "computed_at": profile.computed_at.isoformat() if profile.computed_at else None,
    }


class ProfileDetailApi(TenantAPIView):
    required_scope = "read"

    @extend_schema(responses={200: _PROFILE_OUT}, operation_id="profiles_retrieve")
    def get(self, request: Request, user_id: str) -> Response:
        return Response(profile_out(profile_get_for_tenant(tenant=self.tenant, external_id=user_id)))
