"""OpenAPI description of the serving endpoints (their views build bodies by hand, so say them here).

The views answer plain dicts on the lean GET path; these serializers only
document those dicts for drf-spectacular and the fuzzer that checks answers
against them (tests/platform_core/api/test_fuzz.py).
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers

_ANY_LIST = serializers.ListField(child=serializers.DictField())


def _params() -> dict[str, OpenApiParameter]:
    max_k = settings.SERVING_MAX_K
    q = OpenApiParameter.QUERY
    return {
        "k": OpenApiParameter("k", int, q, description=f"How many items, 1 to {max_k} (default 10)."),
        "filter": OpenApiParameter(
            "filter",
            str,
            q,
            description="An item filter expression over the domain's item attributes, "
            "e.g. `price <= :max_price and category == 'shoes'` (docs/serving.md).",
        ),  # fmt: skip
        "filter_params": OpenApiParameter(
            "filter_params",
            str,
            q,
            description='A JSON object of the filter\'s `:names`, e.g. `{"max_price": 50}`.',
        ),
        "segment": OpenApiParameter(
            "segment",
            str,
            q,
            description="Only events of this segment's members (name or id; name:n: one cluster).",
        ),
        "explain": OpenApiParameter("explain", bool, q, description="Add each item's explanation."),
        "explore": OpenApiParameter(
            "explore", float, q, description="Share of slots (0 to 1) for long-tail or new items."
        ),
        "context": OpenApiParameter(
            "context", str, q, description="A JSON object passed to the domain's rules (e.g. a location)."
        ),
        "user": OpenApiParameter("user", str, q, description="Apply that user's rules too (their id)."),
        "window": OpenApiParameter(
            "window", str, q, description="`24h`, `7d`, `2w` (at most 365 days) or `all`; default `7d`."
        ),
        "embedding": OpenApiParameter("embedding", bool, q, description="Include the profile embedding."),
    }


def _context_shortcuts() -> list[OpenApiParameter]:
    """The plain query parameters copied into the rerank context (apis.CONTEXT_PARAMS)."""
    kinds = {"lat": float, "lon": float, "congestion": float, "hour": int, "weekday": int}
    return [
        OpenApiParameter(
            name, kinds.get(name, str), OpenApiParameter.QUERY, description="Copied into `context`."
        )
        for name in ("lat", "lon", "hour", "weekday", "congestion", "time", "location", "device")
    ]


_EXPLANATION = inline_serializer(
    "Explanation",
    {
        "source": serializers.CharField(help_text="Which path proposed the item: model, popular, …"),
        "model_score": serializers.FloatField(allow_null=True),
        "events": _ANY_LIST,
        "rules": _ANY_LIST,
    },
)
_RECOMMENDED = inline_serializer(
    "RecommendedItem",
    {
        "item_id": serializers.CharField(),
        "score": serializers.FloatField(),
        "rank": serializers.IntegerField(),
        "explanation": _EXPLANATION.__class__(required=False),
        "flags": serializers.DictField(required=False),
    },
)
_LIST_FIELDS = {
    "recommendation_id": serializers.CharField(help_text="Send it back with POST /feedback."),
    "user_id": serializers.CharField(allow_null=True),
    "model_version": serializers.IntegerField(allow_null=True),
    "strategy": serializers.CharField(help_text="`model`, or the cold-start source."),
    "generated_at": serializers.DateTimeField(),
    "items": _RECOMMENDED.__class__(many=True),
}
_SCORED = inline_serializer(
    "PopularItem",
    {
        "item_id": serializers.CharField(),
        "score": serializers.FloatField(),
        "rank": serializers.IntegerField(),
    },
)


def recommendations() -> dict:
    p = _params()
    return {
        "get": extend_schema(
            parameters=[p[n] for n in ("k", "filter", "filter_params", "explain", "explore", "context")]
            + _context_shortcuts(),
            responses=inline_serializer("RecommendationList", _LIST_FIELDS),
        )
    }


def similar_items() -> dict:
    p = _params()
    return {
        "get": extend_schema(
            parameters=[p[n] for n in ("k", "filter", "filter_params", "user", "explain")],
            responses=inline_serializer(
                "SimilarItemList", {**_LIST_FIELDS, "item_id": serializers.CharField()}
            ),
        )
    }


def popular() -> dict:
    p = _params()
    return {
        "get": extend_schema(
            parameters=[p[n] for n in ("window", "k", "filter", "filter_params", "segment")],
            responses=inline_serializer(
                "PopularList", {"window": serializers.CharField(), "items": _SCORED.__class__(many=True)}
            ),
        )
    }


def profile() -> dict:
    return {
        "get": extend_schema(
            parameters=[_params()["embedding"]],
            responses=inline_serializer(
                "UserProfile",
                {
                    "user_id": serializers.CharField(),
                    "interests": _ANY_LIST,
                    "trajectory": serializers.DictField(),
                    "activity": serializers.DictField(),
                    "segment": serializers.CharField(),
                    "features": serializers.DictField(),
                    "n_events": serializers.IntegerField(),
                    "model_version": serializers.IntegerField(allow_null=True),
                    "computed_at": serializers.DateTimeField(allow_null=True),
                    "embedding": serializers.ListField(
                        child=serializers.FloatField(), required=False, allow_null=True
                    ),
                },
            ),
        )
    }


def risk() -> dict:
    return {
        "get": extend_schema(
            responses=inline_serializer(
                "RiskScore",
                {
                    "user_id": serializers.CharField(),
                    "score": serializers.FloatField(help_text="0 to 1"),
                    "reasons": _ANY_LIST,
                    "model_version": serializers.IntegerField(allow_null=True),
                    "computed_at": serializers.DateTimeField(),
                },
            )
        )
    }


def feedback(request: type[serializers.Serializer]) -> dict:
    out = inline_serializer(
        "FeedbackRecorded",
        {
            "item_id": serializers.CharField(),
            "action": serializers.CharField(),
            "rank": serializers.IntegerField(),
            "model_version": serializers.IntegerField(allow_null=True),
            "recorded": serializers.BooleanField(help_text="false when this feedback was already recorded"),
        },
    )
    return {
        "post": extend_schema(
            request=request,
            responses={
                201: out,
                200: out,
                404: OpenApiResponse(OpenApiTypes.OBJECT, "The list's user was erased."),
            },
        )
    }
