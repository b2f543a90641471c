"""Error codes of the tenancy app."""

from __future__ import annotations

import enum


class TenancyError(enum.StrEnum):
    SLUG_TAKEN = "tenant_slug_taken"
    UNKNOWN_DOMAIN = "unknown_domain"
    BAD_SCOPES = "bad_scopes"
