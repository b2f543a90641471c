"""Error codes of the events app."""

from __future__ import annotations

import enum


class EventError(enum.StrEnum):
    INVALID_BATCH = "invalid_events"
    BATCH_TOO_LARGE = "batch_too_large"
    UNKNOWN_ENTITY = "unknown_entity"
    IMPORT_FILE = "import_file_error"
