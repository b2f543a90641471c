"""Error codes of the catalog app."""

from __future__ import annotations

import enum


class CatalogError(enum.StrEnum):
    INVALID_USER = "invalid_user"
    INVALID_ITEM = "invalid_item"
    BATCH_TOO_LARGE = "batch_too_large"
