from __future__ import annotations

import pytest

from domains.education.plugin import EducationPlugin
from tests.domains.conftest import cand, ctx, event

P = EducationPlugin()
CFG = P.default_config()
ITEMS = {
    "alg-E1": {"kind": "exercise", "skill": "algebra", "difficulty": 1, "subject": "math"},
    "alg-E2": {"kind": "exercise", "skill": "algebra", "difficulty": 2, "subject": "math"},
}


def ex(iid: str, difficulty: int, prerequisites: list[str] | None = None, score: float = 1.0) -> object:
    return cand(
        iid,
        score,
        kind="exercise",
        skill="algebra",
        subject="math",
        difficulty=difficulty,
        prerequisites=prerequisites or [],
    )


def test_an_unmet_prerequisite_blocks_an_exercise() -> None:
    result = P.rerank([ex("alg-E3", 3, ["alg-L3"])], ctx(), CFG)
    assert result.candidates == []
    assert result.removed[0].adjustments[-1].rule == "education.prerequisites_unmet"
    done = [event("u1", "alg-L3", "complete")]
    assert [
        c.item_id for c in P.rerank([ex("alg-E3", 3, ["alg-L3"])], ctx(history=done), CFG).candidates
    ] == ["alg-E3"]


def test_completed_items_are_excluded_and_a_passed_attempt_counts() -> None:
    history = [event("u1", "alg-E1", "attempt", score=0.8, correct=True)]
    result = P.rerank([ex("alg-E1", 1), ex("alg-E2", 2, ["alg-E1"])], ctx(history=history, items=ITEMS), CFG)
    assert [c.item_id for c in result.candidates] == ["alg-E2"]
    assert result.removed[0].adjustments[-1].rule == "education.completed"


def test_difficulty_close_to_mastery_is_preferred() -> None:
    # Passed difficulty 2 → mastery 2, target 3. weight 0.2, tolerance 1:
    # gap 0 → +0.2; gap 1 → 0 (no adjustment); gap 2 → −0.2; gap 3 → max(−0.2, −0.4) = −0.2.
    history = [event("u1", "alg-E2", "attempt", score=0.9, correct=True)]
    items = [ex("d1", 1), ex("d3", 3), ex("d4", 4), ex("d5", 5)]
    result = P.rerank(items, ctx(history=history, items=ITEMS), CFG)
    assert {c.item_id: round(c.score, 6) for c in result.candidates} == {
        "d1": 0.8,
        "d3": 1.2,
        "d4": 1.0,
        "d5": 0.8,
    }
    assert result.candidates[0].item_id == "d3"


def test_profile_mastery_pace_and_dropout() -> None:
    history = [
        event("u1", "alg-E1", "attempt", score=0.9, correct=True),
        event("u1", "alg-E2", "attempt", score=0.3, correct=False),
        event("u1", "alg-E1", "complete"),
    ]
    f = P.profile_features(history, ctx().user, CFG, item_attributes=ITEMS)
    assert f["mastery"] == {"algebra": 1}
    assert f["mean_score_by_skill"] == {"algebra": 0.6}
    assert f["pass_rate"] == 0.5
    # z = −1.5 + 0 + 2·(0.5 − 0.3) + (0/14 − 1) = −2.1 → σ = 0.1091
    assert f["dropout_risk"] == pytest.approx(0.1091, abs=1e-4)


def test_bad_attempt_is_refused() -> None:
    assert P.validate_event({"type": "attempt", "item_id": "x", "context": {"score": 1.5}}) == {
        "context.score": ["must be ≤ 1"],
        "context.correct": ["is required"],
    }
    assert P.validate_item({"kind": "exercise", "subject": "m", "skill": "s", "difficulty": 6}) == {
        "attributes.difficulty": ["must be ≤ 5"]
    }
