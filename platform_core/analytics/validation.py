"""Input of the analytics queries: shape (DRF serializers, also the OpenAPI request bodies)
and meaning (event types and attributes of the tenant's domain), checked before any query runs.

Every refusal is a 400 in the one error shape naming the field, e.g.
``steps[2].type`` or ``breakdown``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from domains.base import DomainPlugin, Field
from platform_core.analytics.errors import AnalyticsError
from platform_core.common.errors import ValidationFailed
from platform_core.common.limits import json_object_text_problem

MAX_STEPS = 10
MAX_RANGE = dt.timedelta(days=3 * 366)  # bounds the work of one query and the size of its answer
MAX_WINDOW = dt.timedelta(days=366)
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)
DEFAULT_RANGE = dt.timedelta(days=30)
_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: Attribute types a breakdown may group by (a float or datetime would give a group per user).
BREAKDOWN_TYPES = ("string", "choice", "bool", "int")


def fail(field: str, rule: str) -> ValidationFailed:
    return ValidationFailed(
        f"Invalid input: {field}: {rule}", code=AnalyticsError.INVALID_QUERY, fields={field: [rule]}
    )


def duration_parse(raw: Any, *, field: str, maximum: dt.timedelta = MAX_WINDOW) -> dt.timedelta:
    """``"7d"``, ``"24h"``, ``"30m"``, ``"45s"``, ``"2w"`` → a positive timedelta up to ``maximum``."""
    m = _DURATION.match(raw) if isinstance(raw, str) else None
    if m is None:
        raise fail(field, "must be a positive duration such as 30m, 24h, 7d or 2w")
    seconds = int(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if seconds <= 0:
        raise fail(field, "must be greater than zero")
    if seconds > maximum.total_seconds():  # compared before a timedelta is built: it could overflow
        raise fail(field, f"must be at most {maximum.days} days")
    return dt.timedelta(seconds=seconds)


def range_check(start: dt.datetime | None, stop: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    """``from``/``to`` (defaults: the last 30 days), in UTC, ordered and bounded."""
    stop = (stop or timezone.now()).astimezone(dt.UTC)
    # Checked before the default 'from' is computed: year 1 minus 30 days overflows.
    if not EARLIEST <= stop <= LATEST:
        raise fail("to", f"must lie between {EARLIEST.date()} and {LATEST.date()}")
    start = (start or stop - DEFAULT_RANGE).astimezone(dt.UTC)
    for name, value in (("from", start), ("to", stop)):
        if not EARLIEST <= value <= LATEST:
            raise fail(name, f"must lie between {EARLIEST.date()} and {LATEST.date()}")
    if start >= stop:
        raise fail("from", "must be before 'to'")
    if stop - start > MAX_RANGE:
        raise fail("to", f"the range from 'from' to 'to' may span at most {MAX_RANGE.days} days")
    return start, stop


def event_type_check(plugin: DomainPlugin, value: str | None, *, field: str) -> None:
    if value is not None and value not in {t.name for t in plugin.event_types}:
        known = ", ".join(t.name for t in plugin.event_types)
        raise fail(field, f"{value!r} is not an event type of domain {plugin.id!r} (known: {known})")


@dataclass(frozen=True)
class Breakdown:
    """``user.<name>``, ``item.<name>`` (the item of the user's first step) or ``segment``."""

    entity: str  # "user" | "item" | "segment"
    name: str

    @property
    def label(self) -> str:
        return self.entity if self.entity == "segment" else f"{self.entity}.{self.name}"


def breakdown_parse(
    plugin: DomainPlugin, raw: str | None, *, entities: tuple[str, ...] = ("user", "item")
) -> Breakdown | None:
    """A breakdown: ``segment`` (each segment a user is in; clusters as ``name:n``) or an attribute."""
    if raw in (None, ""):
        return None
    if raw == "segment":
        return Breakdown(entity="segment", name="")
    entity, _, name = str(raw).partition(".")
    schemas: dict[str, Sequence[Field]] = {"user": plugin.user_schema, "item": plugin.item_schema}
    schemas = {e: s for e, s in schemas.items() if e in entities}
    fields = {f.name: f for f in schemas.get(entity, ())}
    spec = fields.get(name)
    if spec is None or spec.sensitive:
        choices = sorted(
            f"{e}.{f.name}"
            for e, s in schemas.items()
            for f in s
            if not f.sensitive and f.type in BREAKDOWN_TYPES
        )
        raise fail(
            "breakdown",
            f"{raw!r} is not 'segment' or a {' or '.join(entities)} attribute of domain {plugin.id!r} "
            f"(known: segment, {', '.join(choices)})",
        )
    if spec.type not in BREAKDOWN_TYPES:
        raise fail(
            "breakdown", f"{raw!r} is {spec.type}; a breakdown needs one of {', '.join(BREAKDOWN_TYPES)}"
        )
    return Breakdown(entity=entity, name=name)


# ---------------------------------------------------------------- request bodies
class _RangeInput(serializers.Serializer):
    # "from" is a Python keyword: the serializer field is declared under that name below.
    to = serializers.DateTimeField(
        required=False, default=None, allow_null=True, help_text="End (exclusive), ISO 8601; default now."
    )


_RangeInput._declared_fields["from"] = serializers.DateTimeField(
    required=False,
    default=None,
    allow_null=True,
    help_text="Start (inclusive), ISO 8601; default 30 days before 'to'.",
)


class StepInput(serializers.Serializer):
    type = serializers.CharField(max_length=64, help_text="An event type of the tenant's domain.")
    where = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=2000,
        help_text="Serving filter language over item attributes and context_<field> of the event.",
    )


class ExclusionInput(StepInput):
    after_step = serializers.IntegerField(required=False, default=0, min_value=0, max_value=MAX_STEPS - 1)
    before_step = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=MAX_STEPS - 1
    )


class FunnelInput(_RangeInput):
    steps = StepInput(many=True, allow_empty=False, max_length=MAX_STEPS)
    window = serializers.CharField(required=False, default="7d", max_length=32)
    exclusions = ExclusionInput(many=True, required=False, default=list, max_length=MAX_STEPS)
    breakdown = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=200,
        help_text="'segment', 'user.<attribute>' or 'item.<attribute>'.",
    )
    filter_params = serializers.DictField(
        required=False, default=dict, help_text="Values of $name in 'where'."
    )


class RetentionInput(_RangeInput):
    period = serializers.ChoiceField(choices=("day", "week", "month"), default="week")
    start_type = serializers.CharField(required=False, allow_null=True, default=None, max_length=64)
    return_type = serializers.CharField(required=False, allow_null=True, default=None, max_length=64)
    breakdown = serializers.CharField(
        required=False, allow_null=True, max_length=200, help_text="'segment' or 'user.<attribute>'."
    )


class PathsInput(_RangeInput):
    event = serializers.CharField(max_length=64, help_text="The event type paths start (or end) at.")
    direction = serializers.ChoiceField(choices=("after", "before"), default="after")
    steps = serializers.IntegerField(required=False, default=3, min_value=1, max_value=MAX_STEPS)
    k = serializers.IntegerField(required=False, default=10, min_value=1, max_value=100)
    session_gap = serializers.CharField(required=False, default="30m", max_length=32)
    by = serializers.CharField(
        required=False, default="type", max_length=200, help_text="'type' or 'item.<attribute>'."
    )


class JsonObjectText(serializers.CharField):
    """A query parameter holding a JSON object (``filter_params={"max_price": 50}``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=4000, **kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value, rule = json_object_text_problem(super().to_internal_value(data))
        if rule is not None:
            raise serializers.ValidationError(rule)
        return value


class TrendingInput(serializers.Serializer):
    window = serializers.CharField(required=False, default="24h", max_length=32)
    k = serializers.IntegerField(required=False, default=10, min_value=1, max_value=100)
    periods = serializers.IntegerField(
        required=False, default=3, min_value=1, max_value=12, help_text="Preceding windows compared against."
    )
    min_count = serializers.IntegerField(required=False, default=5, min_value=1, max_value=1_000_000)
    type = serializers.CharField(required=False, allow_null=True, default=None, max_length=64)
    category = serializers.CharField(required=False, allow_null=True, default=None, max_length=200)
    segment = serializers.CharField(
        required=False,
        allow_null=True,
        default=None,
        max_length=80,
        help_text="Only events of this segment's members (name or id; name:n: one cluster).",
    )
    filter = serializers.CharField(required=False, allow_null=True, default=None, max_length=2000)
    filter_params = JsonObjectText(
        required=False, default=dict, help_text="A JSON object: values of $name in 'filter'."
    )


def body_validate(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """The request body through ``serializer_class``; a 400 naming each bad field otherwise."""
    if not isinstance(data, dict):
        raise fail("non_field_errors", "the body must be a JSON object")
    s = serializer_class(data=data)
    if not s.is_valid():
        raise serializers.ValidationError(_indexed(s.errors))
    return dict(s.validated_data)


def _indexed(detail: Any) -> Any:
    """DRF keys a list's errors by index (``{"steps": {1: …}}``); as a list they are named
    ``steps[1].type`` like the rest of the API's errors."""
    if isinstance(detail, dict):
        if detail and all(isinstance(k, int) for k in detail):
            out: list[Any] = [{} for _ in range(max(detail) + 1)]
            for k, value in detail.items():
                out[k] = _indexed(value)
            return out
        return {k: _indexed(value) for k, value in detail.items()}
    return detail
