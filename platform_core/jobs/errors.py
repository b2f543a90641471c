"""Error codes of the jobs app."""

from __future__ import annotations

import enum


class JobsError(enum.StrEnum):
    JOB_IN_PROGRESS = "job_in_progress"
    NOT_ENOUGH_DATA = "not_enough_data"
    BAD_STATE = "bad_state"
    ARTIFACT = "artifact_error"
    NO_PREVIOUS_VERSION = "no_previous_version"


class JobCancelled(Exception):
    """Raised inside a running job when an operator cancelled it."""
