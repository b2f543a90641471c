"""Query-parameter parsing for list endpoints, with errors in the one shape."""

from __future__ import annotations

import datetime as dt

from rest_framework.request import Request

from platform_core.common.errors import ValidationFailed


def query_datetime(request: Request, name: str) -> dt.datetime | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ValidationFailed(
            f"Invalid input: {name}: must be an ISO 8601 datetime with a time zone",
            fields={name: ["must be an ISO 8601 datetime with a time zone"]},
        )
    return value


def query_bool(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ValidationFailed(
        f"Invalid input: {name}: must be true or false", fields={name: ["must be true or false"]}
    )
