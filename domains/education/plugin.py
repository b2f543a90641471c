"""Education: courses, lessons and exercises on skills; mastery, prerequisites, pacing."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from domains.base import (
    Candidate,
    ConfigParam,
    ConfigValues,
    DomainPlugin,
    EventRecord,
    EventType,
    Field,
    RerankContext,
    RerankResult,
    SampleData,
    UserRecord,
    remove,
)

RULE_COMPLETED = "education.completed"
RULE_PREREQUISITES = "education.prerequisites_unmet"
RULE_DIFFICULTY = "education.difficulty_match"


def completed_items(history: Sequence[EventRecord], pass_score: float) -> set[str]:
    """Items finished: a ``complete`` event, or an exercise attempt passed."""
    done: set[str] = set()
    for e in history:
        if not e.item_id:
            continue
        if e.type == "complete" or e.type == "attempt" and float(e.context.get("score", 0)) >= pass_score:
            done.add(e.item_id)
    return done


def mastery_by_skill(
    history: Sequence[EventRecord], items: Mapping[str, Mapping[str, Any]], pass_score: float
) -> dict[str, int]:
    """Per skill, the highest difficulty (1–5) passed in an attempt; skills tried but never passed are 0."""
    mastery: dict[str, int] = {}
    for e in history:
        if e.type != "attempt":
            continue
        attrs = items.get(e.item_id or "", {})
        skill = attrs.get("skill") or e.context.get("skill")
        difficulty = attrs.get("difficulty") or e.context.get("difficulty")
        if skill is None or difficulty is None:
            continue
        level = int(difficulty) if float(e.context.get("score", 0)) >= pass_score else 0
        mastery[str(skill)] = max(mastery.get(str(skill), 0), level)
    return mastery


class EducationPlugin(DomainPlugin):
    id = "education"
    rerank_reads_clock = False  # its rules read the history and attributes, never the clock
    label = "Education"
    description = "Learning platform: courses, lessons, exercises; mastery-based sequencing."

    item_schema = (
        Field("kind", "choice", required=True, choices=("course", "lesson", "exercise")),
        Field("title", "string", max_length=300),
        Field("subject", "string", required=True, max_length=100),
        Field("skill", "string", required=True, max_length=100),
        Field("difficulty", "int", required=True, min=1, max=5),
        Field("prerequisites", "list", max_length=50, help="Item ids that must be completed first."),
        Field("duration_minutes", "int", min=1, max=1_000_000),
        Field("course_id", "string", max_length=255, help="The course a lesson or exercise belongs to."),
    )
    user_schema = (
        Field(
            "education_level",
            "choice",
            choices=("primary", "secondary", "undergraduate", "postgraduate", "other"),
        ),
        Field("age_band", "choice", choices=("<18", "18-24", "25-34", "35-54", "55+")),
        Field("goal", "string", max_length=200),
        Field("registered_at", "datetime"),
    )
    event_types = (
        EventType("enroll", 2.0),
        EventType("view", 1.0, (Field("seconds", "float", min=0, max=86_400),)),
        EventType(
            "attempt",
            2.0,
            (
                Field("score", "float", required=True, min=0, max=1, help="Fraction of marks, 0–1."),
                Field("correct", "bool", required=True),
                Field("hints", "int", min=0, max=100),
                Field("skill", "string", max_length=100),
                Field("difficulty", "int", min=1, max=5),
            ),
        ),
        EventType("complete", 4.0, (Field("score", "float", min=0, max=1),)),
        EventType("drop", 0.0, is_label=True, help="Left a course: the dropout label."),
    )
    config = (
        ConfigParam("pass_score", "float", 0.6, min=0, max=1, help="Attempt score that counts as passed."),
        ConfigParam(
            "difficulty_weight",
            "float",
            0.2,
            min=0,
            max=2,
            help="Boost at the target difficulty (mastery + 1), falling to a penalty away from it.",
        ),
        ConfigParam(
            "difficulty_tolerance",
            "float",
            1.0,
            min=0.5,
            max=4,
            help="Gap from the target difficulty at which the adjustment is zero.",
        ),
        ConfigParam("enforce_prerequisites", "bool", True),
        ConfigParam(
            "inactivity_days", "int", 14, min=1, max=365, help="Idle days that push the dropout risk up."
        ),
    )

    def rerank(
        self, candidates: list[Candidate], context: RerankContext, config: ConfigValues
    ) -> RerankResult:
        done = completed_items(context.history, config["pass_score"])
        mastery = mastery_by_skill(context.history, context.item_attributes, config["pass_score"])
        weight, tol = config["difficulty_weight"], config["difficulty_tolerance"]
        kept: list[Candidate] = []
        removed: list[Candidate] = []
        for c in candidates:
            attrs = c.attributes
            if c.item_id in done:
                removed.append(remove(c, RULE_COMPLETED, "already completed"))
                continue
            missing = [p for p in attrs.get("prerequisites") or [] if p not in done]
            if missing and config["enforce_prerequisites"]:
                removed.append(remove(c, RULE_PREREQUISITES, f"complete {', '.join(missing[:3])} first"))
                continue
            difficulty = attrs.get("difficulty")
            skill = attrs.get("skill")
            if difficulty is not None and skill is not None and attrs.get("kind") != "course":
                target = min(5, mastery.get(str(skill), 0) + 1)
                gap = abs(int(difficulty) - target)
                delta = max(-weight, weight * (1 - gap / tol))
                c.adjust(
                    RULE_DIFFICULTY, round(delta, 6), f"difficulty {difficulty}, target {target} for {skill}"
                )
            kept.append(c)
        kept.sort(key=lambda c: -c.score)
        return RerankResult(candidates=kept, removed=removed)

    def profile_features(
        self,
        events: Sequence[EventRecord],
        user: UserRecord,
        config: ConfigValues,
        item_attributes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        items = item_attributes or {}
        pass_score = config["pass_score"]
        counts = Counter(e.type for e in events)
        scores: dict[str, list[float]] = defaultdict(list)
        for e in events:
            if e.type == "attempt":
                skill = items.get(e.item_id or "", {}).get("skill") or e.context.get("skill") or "unknown"
                scores[str(skill)].append(float(e.context.get("score", 0)))
        completions = [e.timestamp for e in events if e.type == "complete"]
        weeks = max(1.0, (events[-1].timestamp - events[0].timestamp).days / 7) if events else 1.0
        attempts = [float(e.context.get("score", 0)) for e in events if e.type == "attempt"]
        return {
            "event_counts": dict(counts),
            "mastery": mastery_by_skill(events, items, pass_score),
            "mean_score_by_skill": {k: round(sum(v) / len(v), 3) for k, v in scores.items()},
            "pace_completions_per_week": round(len(completions) / weeks, 3),
            "dropout_risk": dropout_risk(events, config),
            "pass_rate": round(sum(s >= pass_score for s in attempts) / len(attempts), 3)
            if attempts
            else None,
        }

    def sample_data(self, seed: int, n_users: int) -> SampleData:
        from domains.education.sample import sample_data

        return sample_data(seed, n_users)

    @classmethod
    def dataset_adapters(cls) -> dict[str, Callable[..., SampleData]]:
        from domains.education.adapters import oulad

        return {"oulad": oulad}


def dropout_risk(events: Sequence[EventRecord], config: ConfigValues) -> float | None:
    """A logistic score from drops, failing attempts and idle time since the last event.

    z = −1.5 + 1.2·drops + 2·(fail share − 0.3) + (idle days / inactivity_days − 1); risk = σ(z).
    Idle time is measured to the latest event of the whole history passed in.
    """
    if not events:
        return None
    drops = sum(e.type == "drop" for e in events)
    attempts = [float(e.context.get("score", 0)) for e in events if e.type == "attempt"]
    fail_share = sum(s < config["pass_score"] for s in attempts) / len(attempts) if attempts else 0.3
    last_learning = max((e.timestamp for e in events if e.type != "drop"), default=events[-1].timestamp)
    idle_days = (events[-1].timestamp - last_learning).total_seconds() / 86400
    z = -1.5 + 1.2 * drops + 2 * (fail_share - 0.3) + (idle_days / config["inactivity_days"] - 1)
    return round(1 / (1 + math.exp(-z)), 4)
