"""The DomainPlugin contract: what a domain declares as data, and its hooks.

Plain Python (no Django): the platform core, the Celery jobs and third-party
packages all use this module. A plugin subclasses :class:`DomainPlugin`,
declares its schemas, event types and config as class attributes, and
implements the hooks it needs. The core never imports a particular domain.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, Literal, NamedTuple

FieldType = Literal["string", "int", "float", "bool", "datetime", "list", "choice"]
FIELD_TYPES: tuple[str, ...] = ("string", "int", "float", "bool", "datetime", "list", "choice")


# --------------------------------------------------------------------------- schema
@dataclass(frozen=True)
class Field:
    """One typed attribute of an item, a user, or an event's context."""

    name: str
    type: FieldType
    required: bool = False
    choices: tuple[Any, ...] = ()
    min: float | None = None
    max: float | None = None
    sensitive: bool = False  # encrypted at rest, never listed or logged
    max_length: int | None = None  # strings and lists
    help: str = ""


@dataclass(frozen=True)
class EventType:
    """A kind of event the domain understands."""

    name: str
    weight: float  # training weight of this event type
    context: tuple[Field, ...] = ()
    is_label: bool = False  # an outcome (e.g. fraud_report), not an interaction to learn from
    requires_item: bool = True
    help: str = ""


@dataclass(frozen=True)
class ConfigParam:
    """A tunable parameter, stored per tenant and edited in the console."""

    name: str
    type: Literal["int", "float", "bool", "choice", "string"]
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    label: str = ""
    help: str = ""


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class UserRecord:
    """A user as the hooks see it (attributes already decrypted)."""

    user_id: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


class EventRecord(NamedTuple):
    """One event as the hooks see it (immutable).

    A named tuple rather than a frozen dataclass: profile builds make millions of
    these, and a frozen dataclass's ``__init__`` (one ``object.__setattr__`` per
    field) cost several times the tuple's construction.
    """

    user_id: str
    item_id: str | None
    type: str
    timestamp: datetime
    value: float | None = None
    context: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Adjustment:
    """One rule's effect on one candidate, kept for explanations.

    ``effect`` is ``"filter"`` (the candidate was removed), ``"boost"`` or
    ``"penalty"``; ``delta`` is the change to the score it made (0 for filters).
    """

    rule: str
    effect: Literal["filter", "boost", "penalty", "flag"]
    delta: float = 0.0
    detail: str = ""


@dataclass
class Candidate:
    """An item proposed by the model, with its running score."""

    item_id: str
    score: float
    attributes: Mapping[str, Any] = field(default_factory=dict)
    adjustments: list[Adjustment] = field(default_factory=list)
    flags: dict[str, Any] = field(default_factory=dict)  # e.g. requires_clinician_review

    def adjust(self, rule: str, delta: float, detail: str = "") -> None:
        """Add ``delta`` to the score and record why."""
        if delta == 0:
            return
        self.score += delta
        self.adjustments.append(
            Adjustment(rule=rule, effect="boost" if delta > 0 else "penalty", delta=delta, detail=detail)
        )


@dataclass(frozen=True)
class RerankContext:
    """What rerank knows about the request."""

    user: UserRecord | None
    history: Sequence[EventRecord]  # the user's events, oldest first
    now: datetime
    request: Mapping[str, Any] = field(default_factory=dict)  # e.g. lat, lon, hour
    item_attributes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # history items


@dataclass
class RerankResult:
    """Kept candidates (best first) and the removed ones with their filter reason."""

    candidates: list[Candidate]
    removed: list[Candidate] = field(default_factory=list)


@dataclass(frozen=True)
class RiskReason:
    code: str
    weight: float  # contribution to the score
    detail: str = ""


@dataclass(frozen=True)
class RiskResult:
    score: float  # 0..1
    reasons: tuple[RiskReason, ...] = ()


@dataclass
class SampleData:
    """Synthetic data in the REST API's own shapes (so it goes through validation)."""

    users: list[dict[str, Any]]  # {"user_id", "attributes"}
    items: list[dict[str, Any]]  # {"item_id", "attributes"}
    events: list[
        dict[str, Any]
    ]  # {"event_id", "user_id", "item_id", "type", "timestamp", "value", "context"}


class ConfigValues(Mapping[str, Any]):
    """A tenant's validated config: read-only, by key or attribute."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


Errors = dict[str, list[str]]


# --------------------------------------------------------------------------- validation
def _add(errors: Errors, path: str, message: str) -> None:
    errors.setdefault(path, []).append(message)


def parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 string → aware datetime, or None if it is not one."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def validate_value(spec: Field, value: Any, path: str, errors: Errors) -> None:
    """Check one value against its field spec, adding messages to ``errors``."""
    t = spec.type
    if t == "string":
        if not isinstance(value, str):
            return _add(errors, path, "must be a string")
        if spec.max_length is not None and len(value) > spec.max_length:
            _add(errors, path, f"must be at most {spec.max_length} characters")
    elif t == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return _add(errors, path, "must be an integer")
    elif t == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return _add(errors, path, "must be a finite number")
    elif t == "bool":
        if not isinstance(value, bool):
            return _add(errors, path, "must be true or false")
    elif t == "datetime":
        if parse_datetime(value) is None:
            return _add(errors, path, "must be an ISO 8601 datetime with a time zone")
    elif t == "list":
        if not isinstance(value, list):
            return _add(errors, path, "must be a list")
        if spec.max_length is not None and len(value) > spec.max_length:
            _add(errors, path, f"must have at most {spec.max_length} entries")
        if spec.choices:
            bad = [v for v in value if v not in spec.choices]
            if bad:
                # A sensitive value is never echoed: error messages end up in logs.
                shown = f"{len(bad)} entries" if spec.sensitive else f"entries {bad[:5]!r}"
                _add(errors, path, f"{shown} are not among {list(spec.choices)!r}")
        return None
    elif t == "choice":
        if value not in spec.choices:
            return _add(errors, path, f"must be one of {list(spec.choices)!r}")
        return None
    if t in ("int", "float"):
        if spec.min is not None and value < spec.min:
            _add(errors, path, f"must be ≥ {spec.min}")
        if spec.max is not None and value > spec.max:
            _add(errors, path, f"must be ≤ {spec.max}")
    return None


def validate_fields(schema: Sequence[Field], values: Any, path: str, *, partial: bool = False) -> Errors:
    """Check a mapping against a schema: types, required, bounds, unknown keys.

    Args:
        schema: the declared fields.
        values: the mapping to check (anything else is an error).
        path: the field path prefix used in messages, e.g. ``events[3].context``.
        partial: if True, missing required fields are allowed (a PATCH).
    """
    errors: Errors = {}
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        _add(errors, path, "must be an object")
        return errors
    by_name = {f.name: f for f in schema}
    for key, value in values.items():
        spec = by_name.get(key)
        sub = f"{path}.{key}" if path else key
        if spec is None:
            _add(errors, sub, "is not a declared field of this domain")
        elif value is None:
            if spec.required:
                _add(errors, sub, "is required and may not be null")
        else:
            validate_value(spec, value, sub, errors)
    if not partial:
        for spec in schema:
            if spec.required and spec.name not in values:
                _add(errors, f"{path}.{spec.name}" if path else spec.name, "is required")
    return errors


# --------------------------------------------------------------------------- the contract
class DomainPlugin:
    """Base class of every domain plugin.

    Subclasses declare ``id``, ``label``, ``item_schema``, ``user_schema``,
    ``event_types`` and ``config`` as class attributes and override the hooks
    they need. Hooks receive plain records, never Django models.
    """

    id: ClassVar[str] = ""
    label: ClassVar[str] = ""
    description: ClassVar[str] = ""
    item_schema: ClassVar[tuple[Field, ...]] = ()
    user_schema: ClassVar[tuple[Field, ...]] = ()
    event_types: ClassVar[tuple[EventType, ...]] = ()
    config: ClassVar[tuple[ConfigParam, ...]] = ()
    # Keys of profile_features() that reveal sensitive attributes (sealed at rest like them).
    sensitive_profile_features: ClassVar[tuple[str, ...]] = ()
    # Whether rerank's result depends on the clock (``RerankContext.now``), e.g. a freshness decay.
    # Serving reuses a computed list until one of its inputs changes; a clock-dependent one for
    # at most SERVING_LIST_CACHE_CLOCK_SECONDS. True is the safe default for a new plugin.
    rerank_reads_clock: ClassVar[bool] = True

    # ------------------------------------------------------------ derived data
    @classmethod
    def event_type(cls, name: str) -> EventType | None:
        return next((e for e in cls.event_types if e.name == name), None)

    @classmethod
    def event_weights(cls) -> dict[str, float]:
        """Training weight per event type (labels weigh 0: they are outcomes)."""
        return {e.name: (0.0 if e.is_label else e.weight) for e in cls.event_types}

    @classmethod
    def sensitive_fields(cls, kind: Literal["user", "item"]) -> tuple[str, ...]:
        schema = cls.user_schema if kind == "user" else cls.item_schema
        return tuple(f.name for f in schema if f.sensitive)

    @classmethod
    def sensitive_context_fields(cls, event_type: str) -> tuple[str, ...]:
        """Context fields of ``event_type`` marked ``sensitive`` (encrypted at rest, masked in reads)."""
        spec = cls.event_type(event_type)
        return tuple(f.name for f in spec.context if f.sensitive) if spec is not None else ()

    @classmethod
    def sensitive_event_types(cls) -> dict[str, tuple[str, ...]]:
        """``{event type: its sensitive context fields}`` for the types that have any."""
        return {e.name: names for e in cls.event_types if (names := cls.sensitive_context_fields(e.name))}

    @classmethod
    def has_risk_score(cls) -> bool:
        return cls.risk_score is not DomainPlugin.risk_score

    # ------------------------------------------------------------ validation
    @classmethod
    def validate_item(cls, attributes: Any, path: str = "attributes", *, partial: bool = False) -> Errors:
        return validate_fields(cls.item_schema, attributes, path, partial=partial)

    @classmethod
    def validate_user(cls, attributes: Any, path: str = "attributes", *, partial: bool = False) -> Errors:
        return validate_fields(cls.user_schema, attributes, path, partial=partial)

    @classmethod
    def validate_event(cls, event: Mapping[str, Any], path: str = "") -> Errors:
        """Domain checks of one event already valid in shape (type, item, context)."""
        errors: Errors = {}
        prefix = f"{path}." if path else ""
        spec = cls.event_type(event.get("type"))
        if spec is None:
            names = [e.name for e in cls.event_types]
            _add(
                errors, f"{prefix}type", f"unknown event type for domain {cls.id!r}; expected one of {names}"
            )
            return errors
        if spec.requires_item and not event.get("item_id"):
            _add(errors, f"{prefix}item_id", f"is required for event type {spec.name!r}")
        errors.update(validate_fields(spec.context, event.get("context") or {}, f"{prefix}context"))
        return errors

    @classmethod
    def config_clean(cls, raw: Mapping[str, Any] | None) -> tuple[ConfigValues, Errors]:
        """Raw JSON → validated values with defaults filled in, plus any errors."""
        errors: Errors = {}
        raw = dict(raw or {})
        values: dict[str, Any] = {}
        by_name = {p.name: p for p in cls.config}
        for key in raw:
            if key not in by_name:
                _add(errors, key, "is not a parameter of this domain")
        for param in cls.config:
            value = raw.get(param.name, param.default)
            spec = Field(
                name=param.name,
                type="choice" if param.type == "choice" else param.type,  # type: ignore[arg-type]
                choices=param.choices,
                min=param.min,
                max=param.max,
            )
            if param.type == "float" and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            validate_value(spec, value, param.name, errors)
            values[param.name] = value
        return ConfigValues(values), errors

    @classmethod
    def default_config(cls) -> ConfigValues:
        values, _ = cls.config_clean({})
        return values

    # ------------------------------------------------------------ hooks
    def profile_features(
        self,
        events: Sequence[EventRecord],
        user: UserRecord,
        config: ConfigValues,
        item_attributes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Domain aggregates for the persona (JSON-serialisable).

        Args:
            events: the user's events, oldest first.
            user: the user with decrypted attributes.
            config: the tenant's config.
            item_attributes: optional ``{item_id: attributes}`` of the items in
                ``events``; features that need item data (categories, topics,
                skills) are left out without it.
        """
        return {}

    def rerank(
        self, candidates: list[Candidate], context: RerankContext, config: ConfigValues
    ) -> RerankResult:
        """Filter and boost candidates; record every change on the candidate."""
        return RerankResult(candidates=sorted(candidates, key=lambda c: -c.score))

    def risk_score(self, events: Sequence[EventRecord], user: UserRecord, config: ConfigValues) -> RiskResult:
        """Optional: a 0–1 risk score with reasons. Domains without one don't override it."""
        raise NotImplementedError

    def sample_data(self, seed: int, n_users: int) -> SampleData:
        """A realistic synthetic data set, identical for the same seed."""
        raise NotImplementedError

    @classmethod
    def dataset_adapters(cls) -> dict[str, Callable[..., SampleData]]:
        """Real data sets this domain can load: ``{name: adapter(path, *, limit=None)}``.

        An adapter reads the files under ``path`` (a file or a folder in the
        data set's published format) and returns them as :class:`SampleData`
        in the REST API's shapes; ``limit`` caps the number of events.
        """
        return {}


def remove(candidate: Candidate, rule: str, detail: str = "") -> Candidate:
    """Mark a candidate as filtered out by ``rule`` (helper for rerank hooks)."""
    candidate.adjustments.append(Adjustment(rule=rule, effect="filter", detail=detail))
    return candidate


def as_dict(obj: Any) -> Any:
    """Dataclass → plain JSON-able dict (for APIs and the `domains` command)."""
    return dataclasses.asdict(obj)
