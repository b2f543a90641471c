"""Error codes of the analytics app (rendered in the one error shape)."""

from __future__ import annotations

import enum


class AnalyticsError(enum.StrEnum):
    INVALID_QUERY = "invalid_analytics_query"
