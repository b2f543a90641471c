"""Error codes of the serving app (rendered in the one error shape)."""

from __future__ import annotations

import enum


class ServingError(enum.StrEnum):
    INVALID_FILTER = "invalid_filter"
    INVALID_PARAMETER = "invalid_parameter"
    NO_MODEL = "no_active_model"
    RISK_NOT_SUPPORTED = "risk_not_supported"
    NO_PROFILE = "no_profile"
    INVALID_RECOMMENDATION = "invalid_recommendation_id"
