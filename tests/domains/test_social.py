from __future__ import annotations

from datetime import timedelta

import pytest

from domains.social.plugin import SocialPlugin
from tests.domains.conftest import NOW, cand, ctx, event

P = SocialPlugin()
CFG = P.default_config()
FRESH = (NOW).isoformat()


def post(pid: str, author: str, score: float = 1.0, age_h: float = 0.0) -> object:
    return cand(
        pid, score, author_id=author, topic="t", created_at=(NOW - timedelta(hours=age_h)).isoformat()
    )


def test_a_followed_author_is_lifted() -> None:
    history = [event("u1", None, "follow", author_id="alice")]
    result = P.rerank([post("p1", "bob", 1.1), post("p2", "alice", 1.0)], ctx(history=history), CFG)
    assert [c.item_id for c in result.candidates] == ["p2", "p1"]
    assert result.candidates[0].score == pytest.approx(1.3)
    assert result.candidates[0].adjustments[-1].rule == "social.followed_author"


def test_unfollow_cancels_the_boost() -> None:
    history = [
        event("u1", None, "follow", author_id="alice"),
        event("u1", None, "follow", author_id="alice", unfollow=True),
    ]
    result = P.rerank([post("p2", "alice")], ctx(history=history), CFG)
    assert result.candidates[0].score == pytest.approx(1.0)


def test_own_hidden_and_reported_posts_never_appear() -> None:
    history = [event("u1", "p3", "hide"), event("u1", "p4", "report", reason="spam")]
    result = P.rerank(
        [post("p1", "u1"), post("p3", "x"), post("p4", "y"), post("p5", "z")], ctx(history=history), CFG
    )
    assert [c.item_id for c in result.candidates] == ["p5"]
    assert {c.item_id: c.adjustments[-1].rule for c in result.removed} == {
        "p1": "social.own_post",
        "p3": "social.hidden_or_reported",
        "p4": "social.hidden_or_reported",
    }


def test_freshness_decays_with_the_half_life() -> None:
    # half-life 48 h: a 48 h old post loses 0.5 × (1 − 0.5) = 0.25; 96 h: 0.5 × 0.75 = 0.375.
    result = P.rerank(
        [post("new", "a"), post("day2", "b", age_h=48), post("day4", "c", age_h=96)], ctx(), CFG
    )
    assert {c.item_id: round(c.score, 6) for c in result.candidates} == {
        "new": 1.0,
        "day2": 0.75,
        "day4": 0.625,
    }


def test_per_author_cap_keeps_the_best_two() -> None:
    result = P.rerank(
        [post("a1", "a", 0.9), post("a2", "a", 0.8), post("a3", "a", 0.95), post("b1", "b", 0.1)], ctx(), CFG
    )
    assert [c.item_id for c in result.candidates] == ["a3", "a1", "b1"]
    assert result.removed[0].item_id == "a2" and result.removed[0].adjustments[-1].rule == "social.author_cap"


def test_profile_topics_engagement_and_graph() -> None:
    history = [
        event("u1", "p1", "impression"),
        event("u1", "p1", "view", dwell_seconds=10.0),
        event("u1", "p1", "like"),
        event("u1", "p2", "impression"),
        event("u1", None, "follow", author_id="a"),
    ]
    f = P.profile_features(
        history, ctx().user, CFG, item_attributes={"p1": {"topic": "music"}, "p2": {"topic": "film"}}
    )
    assert f["engagement_rate"] == 0.5  # 1 like over 2 impressions
    assert f["following_count"] == 1
    # music: 0.1 + 1 + 3 = 4.1; film: 0.1 → shares of 4.2
    assert f["topic_interests"] == {"music": round(4.1 / 4.2, 4), "film": round(0.1 / 4.2, 4)}
