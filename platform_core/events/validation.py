"""Plain-Python validation of event payloads, one pass, no serializer per event.

A DRF serializer per event costs ~100 µs; this costs a few µs, which is what
lets one web process take tens of thousands of events a second.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings

from domains.base import DomainPlugin
from platform_core.common.limits import control_search, id_problem, json_value_check, routed_id_ok

EVENT_FIELDS = frozenset({"event_id", "user_id", "item_id", "type", "timestamp", "value", "context"})
MAX_EVENT_ID = 128
MAX_EXTERNAL_ID = 255
MAX_TYPE = 64
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

Errors = dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class CleanEvent:
    """One valid event, ready to write (context already JSON-encoded)."""

    event_id: str
    user_id: str
    item_id: str | None
    type: str
    timestamp: dt.datetime
    value: float | None
    context_json: str


_json_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_orjson_dumps = orjson.dumps


def _context_dumps(context: dict[str, Any]) -> str:
    """Compact JSON text of a context; orjson is ~5× faster than the standard library."""
    try:
        return _orjson_dumps(context).decode()
    except TypeError:  # what orjson refuses (e.g. integers beyond 64 bits from Python callers)
        return _json_dumps(context)


_isfinite = math.isfinite
_fromisoformat = dt.datetime.fromisoformat


def _add(errors: Errors, path: str, rule: str) -> None:
    errors.setdefault(path, []).append(rule)


def _string(value: Any, path: str, max_len: int, errors: Errors, *, required: bool) -> str | None:
    if value is None:
        if required:
            _add(errors, path, "is required")
        return None
    if not isinstance(value, str):
        _add(errors, path, "must be a string")
        return None
    if not value:
        if required:
            _add(errors, path, "must not be empty")
        return None
    if len(value) > max_len:
        _add(errors, path, f"must be at most {max_len} characters")
        return None
    return value


def _id(raw: dict[str, Any], name: str, prefix: str, errors: Errors, *, required: bool = True) -> str | None:
    """``raw[name]`` as an id: a string as ``_string`` wants it that ``id_problem`` accepts.

    Users and items are read and erased by URL (``routed``); event ids only travel in bodies.
    """
    path, routed = f"{prefix}{name}", name != "event_id"
    text = _string(
        raw.get(name), path, MAX_EXTERNAL_ID if routed else MAX_EVENT_ID, errors, required=required
    )
    problem = id_problem(text, routed=routed) if text is not None else None
    if problem:
        _add(errors, path, problem)
        return None
    return text


def context_bounds_check(context: dict[str, Any], path: str, errors: Errors) -> None:
    """An event's context: EVENTS_MAX_CONTEXT_BYTES in all, each string ATTRIBUTE_MAX_VALUE_BYTES,
    no NUL, API_MAX_JSON_DEPTH levels (``common.limits.json_value_check``)."""
    json_value_check(context, path=path, max_total_bytes=settings.EVENTS_MAX_CONTEXT_BYTES, errors=errors)


def context_plain(context_json: str, context_limit: int) -> bool:
    """Whether a context's JSON text passes ``context_bounds_check`` with no walk (nearly all do)."""
    return (
        (len(context_json) <= context_limit // 4 or len(context_json.encode()) <= context_limit)
        and len(context_json) <= settings.ATTRIBUTE_MAX_VALUE_BYTES  # no string can be longer
        and "\\u0000" not in context_json  # the only spelling of NUL in JSON
        and context_json.count("{") + context_json.count("[") < settings.API_MAX_JSON_DEPTH
    )


def timestamp_parse(value: Any, path: str, errors: Errors, *, now: dt.datetime) -> dt.datetime | None:
    """An ISO 8601 timestamp with a time zone inside the accepted window."""
    if value is None:
        _add(errors, path, "is required")
        return None
    if not isinstance(value, str):
        _add(errors, path, "must be an ISO 8601 string")
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        _add(errors, path, "must be an ISO 8601 datetime, e.g. 2026-01-31T12:00:00Z")
        return None
    if parsed.tzinfo is None:
        _add(errors, path, "must include a time zone (Z or ±HH:MM)")
        return None
    if parsed < EPOCH:
        _add(errors, path, "must not be before 1970-01-01T00:00:00Z")
        return None
    limit = settings.EVENTS_MAX_FUTURE_SECONDS
    if parsed > now + dt.timedelta(seconds=limit):
        _add(errors, path, f"must not be more than {limit} seconds in the future")
        return None
    return parsed


def _domain_errors(
    plugin: DomainPlugin,
    type_: str,
    has_item: bool,
    context: dict[str, Any],
    context_json: str,
    path: str,
    cache: dict[tuple[str, bool, str], Errors] | None,
) -> Errors:
    """``plugin.validate_event`` for one row, memoised per batch on what it reads
    (type, whether there is an item, the context): most rows of a batch repeat."""
    if cache is None or len(context_json) > 256:
        return plugin.validate_event(
            {"type": type_, "item_id": "x" if has_item else None, "context": context}, path=path
        )
    key = (type_, has_item, context_json)
    found = cache.get(key)
    if found is None:
        found = cache[key] = plugin.validate_event(
            {"type": type_, "item_id": "x" if has_item else None, "context": context}, path=""
        )
    if not found or not path:
        return found
    return {f"{path}.{k}": v for k, v in found.items()}


def event_clean(
    raw: Any,
    path: str,
    errors: Errors,
    *,
    plugin: DomainPlugin,
    now: dt.datetime,
    cache: dict[tuple[str, bool, str], Errors] | None = None,
) -> CleanEvent | None:
    """Validate one event object; add every broken rule to ``errors`` under ``path``.

    Shape first (types, required, unknown fields, window, sizes), then the
    domain's own rules (``plugin.validate_event``) for rows whose shape allows it.
    """
    if not isinstance(raw, dict):
        _add(errors, path or "event", "must be an object")
        return None
    before = len(errors)
    prefix = f"{path}." if path else ""
    for key in raw.keys() - EVENT_FIELDS:
        _add(errors, f"{prefix}{key}", "is not a known field")
    event_id = _id(raw, "event_id", prefix, errors)
    user_id = _id(raw, "user_id", prefix, errors)
    item_id = _id(raw, "item_id", prefix, errors, required=False)
    type_ = _string(raw.get("type"), f"{prefix}type", MAX_TYPE, errors, required=True)
    timestamp = timestamp_parse(raw.get("timestamp"), f"{prefix}timestamp", errors, now=now)
    value = raw.get("value")
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    ):
        _add(errors, f"{prefix}value", "must be a finite number or null")
    context = raw.get("context")
    context_json = "{}"
    if context is None:
        context = {}
    elif not isinstance(context, dict):
        _add(errors, f"{prefix}context", "must be an object")
        context = None
    else:
        context_json = _context_dumps(context)
        context_bounds_check(context, f"{prefix}context", errors)
    if type_ is not None and context is not None:
        domain = _domain_errors(plugin, type_, item_id is not None, context, context_json, path, cache)
        for field_path, rules in domain.items():
            for rule in rules:
                if rule not in errors.get(field_path, ()):
                    _add(errors, field_path, rule)
    if len(errors) != before:
        return None
    return CleanEvent(
        event_id=event_id,  # type: ignore[arg-type]
        user_id=user_id,  # type: ignore[arg-type]
        item_id=item_id,
        type=type_,  # type: ignore[arg-type]
        timestamp=timestamp,  # type: ignore[arg-type]
        value=None if value is None else float(value),
        context_json=context_json,
    )


def batch_clean(payload: Any, *, plugin: DomainPlugin, now: dt.datetime) -> tuple[list[CleanEvent], Errors]:
    """One event object or ``{"events": [...]}`` → clean events and every error found."""
    errors: Errors = {}
    if isinstance(payload, dict) and "events" in payload:
        for key in payload.keys() - {"events"}:
            _add(errors, key, "is not a known field (a batch holds only 'events')")
        rows = payload["events"]
        if not isinstance(rows, list):
            _add(errors, "events", "must be a list of event objects")
            return [], errors
        if not rows:
            _add(errors, "events", "must hold at least one event")
            return [], errors
        limit = settings.EVENTS_MAX_BATCH
        if len(rows) > limit:
            _add(errors, "events", f"must hold at most {limit} events (got {len(rows)})")
            return [], errors
        paths = [f"events[{i}]" for i in range(len(rows))]
    elif isinstance(payload, dict):
        rows, paths = [payload], [""]
    else:
        _add(errors, "non_field_errors", 'must be an event object or {"events": [...]}')
        return [], errors
    clean: list[CleanEvent] = []
    cache: dict[tuple[str, bool, str], Errors] = {}
    limit = settings.EVENTS_MAX_FUTURE_SECONDS
    latest = now + dt.timedelta(seconds=limit)
    # A context this short (in characters) is within every byte limit, so no UTF-8 encoding is needed.
    plain_limit = min(settings.EVENTS_MAX_CONTEXT_BYTES // 4, settings.ATTRIBUTE_MAX_VALUE_BYTES)
    depth = settings.API_MAX_JSON_DEPTH
    for raw, path in zip(rows, paths, strict=True):
        event = _event_fast(raw, plugin, cache, latest, plain_limit, depth)
        if event is None:
            # Anything unusual, or invalid: the full check, which lists every broken rule.
            event = event_clean(raw, path, errors, plugin=plugin, now=now, cache=cache)
        if event is not None:
            clean.append(event)
    return clean, errors


def _event_fast(
    raw: Any,
    plugin: DomainPlugin,
    cache: dict[tuple[str, bool, str], Errors],
    latest: dt.datetime,
    plain_limit: int,
    depth: int,
) -> CleanEvent | None:
    """The common case in one pass: a well-formed, valid event → ``CleanEvent``; anything else → None.

    Accepts exactly what ``event_clean`` accepts without errors (it only
    returns None where ``event_clean`` must decide, so error messages stay
    the same); a few times faster because it builds no paths and no error dicts.
    """
    if type(raw) is not dict or not raw.keys() <= EVENT_FIELDS:
        return None
    get = raw.get
    event_id, user_id, item_id, type_ = get("event_id"), get("user_id"), get("item_id"), get("type")
    ts, value, context = get("timestamp"), get("value"), get("context")
    if (
        type(event_id) is not str
        or not 0 < len(event_id) <= MAX_EVENT_ID
        or not (event_id.isalnum() or control_search(event_id) is None)
        or type(user_id) is not str
        or not 0 < len(user_id) <= MAX_EXTERNAL_ID
        or not (user_id.isalnum() or routed_id_ok(user_id))
        or type(type_) is not str
        or not 0 < len(type_) <= MAX_TYPE
        or type(ts) is not str
    ):
        return None
    if item_id is not None and (
        type(item_id) is not str
        or not 0 < len(item_id) <= MAX_EXTERNAL_ID
        or not (item_id.isalnum() or routed_id_ok(item_id))
    ):
        return None
    if value is not None:
        kind = type(value)
        if kind is int:
            value = float(value)
        elif kind is not float or not _isfinite(value):
            return None
    try:
        timestamp = _fromisoformat(ts)
    except ValueError:
        return None
    if timestamp.tzinfo is None or timestamp < EPOCH or timestamp > latest:
        return None
    if context is None:
        context = {}
        context_json = "{}"
    elif type(context) is dict:
        context_json = _context_dumps(context) if context else "{}"
        # Past these cheap tests (size, NUL, nesting) the full check decides and names the rule.
        if len(context_json) > plain_limit or "\\u0000" in context_json:
            return None
        nested = "[" in context_json or context_json.find("{", 1) > 0  # flat contexts skip the counts
        if nested and context_json.count("{") + context_json.count("[") >= depth:
            return None
    else:
        return None
    if _domain_errors(plugin, type_, item_id is not None, context, context_json, "", cache):
        return None
    return CleanEvent(event_id, user_id, item_id, type_, timestamp, value, context_json)
