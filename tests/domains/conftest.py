"""Fixtures of the domain plugin tests (plain Python: no database needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domains.base import Candidate, EventRecord, RerankContext, UserRecord

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def event(user: str, item: str | None, type: str, ts: datetime = NOW, **context: Any) -> EventRecord:
    return EventRecord(user_id=user, item_id=item, type=type, timestamp=ts, context=context)


def cand(item_id: str, score: float = 1.0, **attributes: Any) -> Candidate:
    return Candidate(item_id=item_id, score=score, attributes=attributes)


def ctx(
    user: str = "u1",
    history: list[EventRecord] | None = None,
    attrs: dict | None = None,
    items: dict | None = None,
    now: datetime = NOW,
    **request: Any,
) -> RerankContext:
    return RerankContext(
        user=UserRecord(user, attrs or {}),
        history=history or [],
        now=now,
        request=request,
        item_attributes=items or {},
    )


@pytest.fixture
def now() -> datetime:
    return NOW
