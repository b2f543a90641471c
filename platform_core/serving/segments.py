"""Segment membership as serving sees it: a small interface that serving owns.

Segments are computed and stored by the analytics app, which sits *above*
serving (it reads serving's filter language), so serving cannot import it.
Instead serving declares what it needs here — resolve a segment reference,
tell whether a user is a member, limit events to members — and analytics
registers its implementation in ``AnalyticsConfig.ready()``
(docs/architecture.md, "Layers"). Nothing here runs unless a request names
a segment (``segment=`` or a ``user.segment`` filter term).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from platform_core.common.errors import ValidationFailed
from platform_core.serving.errors import ServingError
from platform_core.tenancy.models import Tenant


@dataclass(frozen=True)
class SegmentRef:
    """One resolved segment (or one cluster of a cluster segment)."""

    segment_id: int
    cluster: int | None
    label: str  # "big-spenders" or "taste:2"
    version: str  # changes with each recomputation: part of cache keys
    event_lookup: Mapping[str, Any]  # an Event queryset filter limiting events to the members'


class SegmentDirectory(Protocol):
    def resolve(self, *, tenant: Tenant, ref: str, field: str) -> SegmentRef:
        """The tenant's segment named or numbered ``ref``; a 400 naming ``field`` when none."""

    def is_member(self, *, tenant: Tenant, segment: SegmentRef, user_external_id: str) -> bool: ...


_directory: list[SegmentDirectory] = []


def segment_directory_register(directory: SegmentDirectory) -> None:
    """Called once by the app that stores segments (analytics) in its ``ready()``."""
    _directory[:] = [directory]


def segment_directory(*, field: str) -> SegmentDirectory:
    if not _directory:
        raise ValidationFailed(
            f"Invalid {field}: segments are not available on this server",
            code=ServingError.INVALID_PARAMETER,
            fields={field: ["segments are not available on this server"]},
        )
    return _directory[0]


def segment_resolve(*, tenant: Tenant, ref: str, field: str) -> SegmentRef:
    return segment_directory(field=field).resolve(tenant=tenant, ref=ref, field=field)


def segment_test_for(*, tenant: Tenant, user_external_id: str | None) -> Callable[[str], bool] | None:
    """``test(ref)``: whether the requesting user is in segment ``ref`` (for ``user.segment`` terms);
    None without a requesting user. Built per request but queried only when a filter holds such a term.
    """
    if not user_external_id:
        return None

    def test(ref: str) -> bool:
        directory = segment_directory(field="filter")
        segment = directory.resolve(tenant=tenant, ref=ref, field="filter")
        return directory.is_member(tenant=tenant, segment=segment, user_external_id=user_external_id)

    return test
