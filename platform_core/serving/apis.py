"""Serving endpoints: thin views over the serving selectors and services.

Scopes: every GET needs ``read``; ``POST /feedback`` takes a key with
``ingest`` or ``read`` (client apps that only read recommendations report
clicks with the same key).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.http import QueryDict
from drf_spectacular.utils import extend_schema_view
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from platform_core.api.lean import LeanGetMixin
from platform_core.api.renderers import JsonOnlyNegotiation, OrjsonRenderer
from platform_core.common.api import TenantAPIView
from platform_core.common.errors import ValidationFailed
from platform_core.common.limits import json_object_text_problem
from platform_core.serving import openapi, selectors, services
from platform_core.serving.errors import ServingError
from platform_core.serving.models import FeedbackAction
from platform_core.serving.selectors import RecommendationList
from platform_core.tenancy.models import Tenant

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}
#: Query parameters copied into the rerank context (e.g. transport's location and time).
CONTEXT_PARAMS = ("lat", "lon", "hour", "weekday", "congestion", "time", "location", "device")
_FLOAT_PARAMS = ("lat", "lon", "congestion")
_INT_PARAMS = ("hour", "weekday")


def _param(query: QueryDict, name: str) -> str | None:
    # QueryDict.get raises and catches a KeyError for an absent name; most are absent.
    return query.get(name) if name in query else None


def _bool_param(query: QueryDict, name: str, default: bool) -> bool:
    raw = _param(query, name)
    if raw is None or raw == "":
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValidationFailed(
        f"{name} must be true or false; got {raw!r}.",
        code=ServingError.INVALID_PARAMETER,
        fields={name: ["must be true or false"]},
    )


def _json_object_param(query: QueryDict, name: str) -> dict[str, Any] | None:
    raw = _param(query, name)
    if raw is None or raw == "":
        return None
    value, rule = json_object_text_problem(raw)
    if rule is not None:
        example = ', e.g. {"max_price": 50}' if rule == "must be a JSON object" else ""
        raise ValidationFailed(
            f"{name} {rule}{example}.", code=ServingError.INVALID_PARAMETER, fields={name: [rule]}
        )
    return value


def _request_context(query: QueryDict) -> dict[str, Any]:
    """``context`` (a JSON object) plus the plain shortcuts in CONTEXT_PARAMS, numbers parsed."""
    context = _json_object_param(query, "context") or {}
    for name in CONTEXT_PARAMS:
        raw = _param(query, name)
        if raw is None:
            continue
        try:
            context[name] = float(raw) if name in _FLOAT_PARAMS else int(raw) if name in _INT_PARAMS else raw
        except ValueError:
            raise ValidationFailed(
                f"{name} must be a number; got {raw!r}.",
                code=ServingError.INVALID_PARAMETER,
                fields={name: ["must be a number"]},
            ) from None
    return context


def _list_body(result: RecommendationList, explain: bool) -> dict[str, Any]:
    items = []
    for item in result.items:
        row: dict[str, Any] = {"item_id": item.item_id, "score": item.score, "rank": item.rank}
        if explain:
            row["explanation"] = {
                "source": item.source,
                "model_score": item.model_score,
                "events": item.events,
                "rules": item.rules,
            }
        if item.flags:
            row["flags"] = item.flags
        items.append(row)
    return {
        "recommendation_id": result.recommendation_id,
        "user_id": result.user_id,
        "model_version": result.model_version,
        "strategy": result.strategy,
        "generated_at": result.generated_at.isoformat(),
        "items": items,
    }


@extend_schema_view(**openapi.recommendations())
class RecommendationsApi(LeanGetMixin, TenantAPIView):
    """GET /users/{id}/recommendations?k=&filter=&filter_params=&explain=&explore=&context=."""

    required_scope = "read"
    renderer_classes = [OrjsonRenderer]
    content_negotiation_class = JsonOnlyNegotiation

    def answer(self, query: QueryDict, tenant: Tenant, external_id: str) -> dict[str, Any]:
        explain = _bool_param(query, "explain", False)
        result = selectors.recommendation_list(
            tenant=tenant,
            external_id=external_id,
            k=query.get("k", 10),
            filter_expression=_param(query, "filter"),
            filter_params=_json_object_param(query, "filter_params"),
            explain=explain,
            explore=_param(query, "explore"),
            context=_request_context(query),
        )
        return _list_body(result, explain)


@extend_schema_view(**openapi.similar_items())
class SimilarItemsApi(LeanGetMixin, TenantAPIView):
    """GET /items/{id}/similar?k=&filter=&filter_params=&user=."""

    required_scope = "read"
    renderer_classes = [OrjsonRenderer]
    content_negotiation_class = JsonOnlyNegotiation

    def answer(self, query: QueryDict, tenant: Tenant, external_id: str) -> dict[str, Any]:
        explain = _bool_param(query, "explain", True)
        result = selectors.item_similar_list(
            tenant=tenant,
            external_id=external_id,
            k=query.get("k", 10),
            filter_expression=query.get("filter"),
            filter_params=_json_object_param(query, "filter_params"),
            user_external_id=query.get("user") or None,
        )
        body = _list_body(result, explain)
        body["item_id"] = external_id
        return body


@extend_schema_view(**openapi.popular())
class PopularApi(TenantAPIView):
    """GET /popular?window=7d&k=&filter=&filter_params=&segment=."""

    required_scope = "read"

    def get(self, request: Request) -> Response:
        q = request.query_params
        window = q.get("window", "7d")
        items = selectors.item_popular_list(
            tenant=self.tenant,
            k=q.get("k", 10),
            window=window,
            filter_expression=q.get("filter"),
            filter_params=_json_object_param(q, "filter_params"),
            segment=q.get("segment") or None,
        )
        return Response({"window": window, "items": [asdict(i) for i in items]})


@extend_schema_view(**openapi.profile())
class ProfileApi(TenantAPIView):
    """GET /users/{id}/profile?embedding=true."""

    required_scope = "read"

    def get(self, request: Request, external_id: str) -> Response:
        body = selectors.user_persona_get(
            tenant=self.tenant,
            external_id=external_id,
            with_embedding=_bool_param(request.query_params, "embedding", False),
        )
        if body["computed_at"] is not None:
            body["computed_at"] = body["computed_at"].isoformat()
        return Response(body)


@extend_schema_view(**openapi.risk())
class RiskApi(TenantAPIView):
    """GET /users/{id}/risk."""

    required_scope = "read"

    def get(self, request: Request, external_id: str) -> Response:
        risk = selectors.risk_score_get(tenant=self.tenant, external_id=external_id)
        body = asdict(risk)
        body["computed_at"] = risk.computed_at.isoformat()
        return Response(body)


class FeedbackInput(serializers.Serializer):
    recommendation_id = serializers.CharField(max_length=8192)
    item_id = serializers.CharField(max_length=255)
    action = serializers.ChoiceField(choices=FeedbackAction.values)


@extend_schema_view(**openapi.feedback(FeedbackInput))
class FeedbackApi(TenantAPIView):
    """POST /feedback {recommendation_id, item_id, action: click|convert|dismiss}."""

    required_scopes = {"POST": ("ingest", "read")}  # either will do (admin holds both)

    def post(self, request: Request) -> Response:
        data = FeedbackInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.feedback_record(tenant=self.tenant, **data.validated_data)
        fb = result.feedback
        return Response(
            {
                "item_id": fb.item_external_id,
                "action": fb.action,
                "rank": fb.rank,
                "model_version": fb.model_version_id,
                "recorded": result.created,
            },
            status=201 if result.created else 200,
        )
