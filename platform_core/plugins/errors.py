"""Error codes of the plugins app."""

from __future__ import annotations

import enum


class PluginsError(enum.StrEnum):
    INVALID_CONFIG = "invalid_config"
    UNKNOWN_DATASET = "unknown_dataset"
    DATASET_UNREADABLE = "dataset_unreadable"
    UNKNOWN_DOMAIN = "tenant_domain_unknown"
