"""Typed results. Each keeps the answer's JSON in ``raw`` for fields newer than this client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class IngestResult:
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    users_created: int = 0
    items_created: int = 0

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> IngestResult:
        return cls(**{k: int(body.get(k, 0)) for k in cls.__dataclass_fields__})

    def __add__(self, other: IngestResult) -> IngestResult:
        return IngestResult(*(getattr(self, k) + getattr(other, k) for k in self.__dataclass_fields__))


@dataclass(frozen=True)
class UpsertResult:
    created: int
    updated: int

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> UpsertResult:
        return cls(created=int(body.get("created", 0)), updated=int(body.get("updated", 0)))


@dataclass(frozen=True)
class RecommendedItem:
    item_id: str
    score: float
    rank: int
    explanation: dict[str, Any] | None = None
    flags: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecommendationList:
    """A served list (recommendations or similar items); send feedback with its ``recommendation_id``."""

    recommendation_id: str
    items: list[RecommendedItem]
    model_version: int | None
    strategy: str
    generated_at: str
    user_id: str | None = None
    item_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RecommendationList:
        items = [
            RecommendedItem(
                item_id=i["item_id"],
                score=float(i["score"]),
                rank=int(i["rank"]),
                explanation=i.get("explanation"),
                flags=i.get("flags") or {},
            )
            for i in body.get("items", [])
        ]
        return cls(
            recommendation_id=body.get("recommendation_id", ""),
            items=items,
            model_version=body.get("model_version"),
            strategy=body.get("strategy", ""),
            generated_at=body.get("generated_at", ""),
            user_id=body.get("user_id"),
            item_id=body.get("item_id"),
            raw=body,
        )


@dataclass(frozen=True)
class PopularItem:
    item_id: str
    score: float
    rank: int

    @classmethod
    def list_from_json(cls, body: dict[str, Any]) -> list[PopularItem]:
        return [
            cls(item_id=i["item_id"], score=float(i["score"]), rank=int(i["rank"])) for i in body["items"]
        ]


@dataclass(frozen=True)
class RiskScore:
    user_id: str
    score: float
    reasons: list[dict[str, Any]]
    model_version: int | None
    computed_at: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> RiskScore:
        return cls(
            user_id=body["user_id"],
            score=float(body["score"]),
            reasons=list(body.get("reasons", [])),
            model_version=body.get("model_version"),
            computed_at=body.get("computed_at", ""),
            raw=body,
        )


@dataclass(frozen=True)
class FeedbackResult:
    item_id: str
    action: str
    rank: int | None
    model_version: int | None
    recorded: bool

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> FeedbackResult:
        return cls(
            item_id=body["item_id"],
            action=body["action"],
            rank=body.get("rank"),
            model_version=body.get("model_version"),
            recorded=bool(body.get("recorded")),
        )


@dataclass(frozen=True)
class EraseResult:
    """What erasing a user removed, per kind (``{"events.Event": 12, …}``)."""

    deleted: dict[str, int]
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> EraseResult:
        return cls(deleted=dict(body.get("deleted", {})), raw=body)


@dataclass(frozen=True)
class Job:
    job_id: int
    kind: str
    status: str
    progress: dict[str, Any]
    result: dict[str, Any]
    error: str
    created_at: str
    finished_at: str | None
    duration_seconds: float | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Job:
        return cls(
            job_id=int(body["job_id"]),
            kind=body.get("kind", ""),
            status=body["status"],
            progress=body.get("progress") or {},
            result=body.get("result") or {},
            error=body.get("error") or "",
            created_at=body.get("created_at", ""),
            finished_at=body.get("finished_at"),
            duration_seconds=body.get("duration_seconds"),
            raw=body,
        )
