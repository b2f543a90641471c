"""Exceptions raised by mlcore (no heavy imports)."""

from __future__ import annotations


class MlcoreError(Exception):
    """Base class of mlcore's errors."""


class NotEnoughData(MlcoreError):
    """The events cannot train a model; the message says how much is needed."""


class ArtifactError(MlcoreError):
    """An artifact directory is missing, corrupt, of another format version or inconsistent."""
