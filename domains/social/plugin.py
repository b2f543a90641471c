"""Social feed: posts by authors on topics; impressions, dwell, reactions, follows, hides, reports."""

from __future__ import annotations

import math
from collections import Counter
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
    parse_datetime,
    remove,
)

RULE_OWN_POST = "social.own_post"
RULE_HIDDEN = "social.hidden_or_reported"
RULE_AUTHOR_CAP = "social.author_cap"
RULE_FRESHNESS = "social.freshness"
RULE_FOLLOWED = "social.followed_author"

ENGAGEMENTS = ("like", "comment", "share")


def followed_authors(history: Sequence[EventRecord]) -> set[str]:
    """Authors the user follows now (a later unfollow cancels a follow)."""
    follows: set[str] = set()
    for e in history:
        author = e.context.get("author_id")
        if not author:
            continue
        if e.type == "follow":
            if e.context.get("unfollow"):
                follows.discard(author)
            else:
                follows.add(author)
    return follows


class SocialPlugin(DomainPlugin):
    id = "social"
    label = "Social network"
    description = "A feed of posts: freshness, follows, per-author diversity, hides and reports."

    item_schema = (
        Field("author_id", "string", required=True, max_length=255, help="The user who wrote the post."),
        Field("topic", "string", required=True, max_length=100),
        Field("language", "string", max_length=8, help="BCP 47 language tag, e.g. 'en' or 'pt-BR'."),
        Field("created_at", "datetime", required=True),
        Field("media_type", "choice", choices=("text", "image", "video", "link", "audio")),
        Field("text", "string", max_length=5000),
        Field("tags", "list", max_length=30),
    )
    user_schema = (
        Field("language", "string", max_length=8),
        Field("country", "string", max_length=2),
        Field("joined_at", "datetime"),
        Field("followers_count", "int", min=0),
    )
    event_types = (
        EventType(
            "impression",
            0.1,
            (
                Field("position", "int", min=0, max=10_000),
                Field("surface", "choice", choices=("feed", "search", "profile", "notification")),
            ),
            help="The post was shown; weak evidence alone.",
        ),
        EventType("view", 1.0, (Field("dwell_seconds", "float", required=True, min=0, max=86_400),)),
        EventType("like", 3.0),
        EventType("comment", 4.0, (Field("length", "int", min=0, max=100_000),)),
        EventType("share", 5.0, (Field("channel", "choice", choices=("repost", "message", "external")),)),
        EventType(
            "follow",
            2.0,
            (Field("author_id", "string", required=True, max_length=255), Field("unfollow", "bool")),
            requires_item=False,
            help="Follows an author (context.author_id); item_id is the post that led to it, if any.",
        ),
        EventType("hide", 0.0, is_label=True, help="Hidden by the user: never shown again."),
        EventType(
            "report",
            0.0,
            (Field("reason", "choice", choices=("spam", "abuse", "misinformation", "nudity", "other")),),
            is_label=True,
        ),
    )
    config = (
        ConfigParam(
            "freshness_half_life_hours",
            "float",
            48.0,
            min=1,
            max=24 * 90,
            label="Freshness half-life (hours)",
        ),
        ConfigParam(
            "freshness_weight",
            "float",
            0.5,
            min=0,
            max=5,
            help="Largest penalty, reached by a very old post: weight × (1 − 0.5^(age/half-life)).",
        ),
        ConfigParam(
            "max_per_author", "int", 2, min=1, max=50, help="At most this many posts by one author in a list."
        ),
        ConfigParam("followed_boost", "float", 0.3, min=0, max=5),
    )

    def rerank(
        self, candidates: list[Candidate], context: RerankContext, config: ConfigValues
    ) -> RerankResult:
        me = context.user.user_id if context.user else None
        blocked = {e.item_id for e in context.history if e.type in ("hide", "report") and e.item_id}
        follows = followed_authors(context.history)
        half_life = config["freshness_half_life_hours"]
        kept: list[Candidate] = []
        removed: list[Candidate] = []
        for c in candidates:
            author = c.attributes.get("author_id")
            if me is not None and author == me:
                removed.append(remove(c, RULE_OWN_POST, "the user's own post"))
                continue
            if c.item_id in blocked:
                removed.append(remove(c, RULE_HIDDEN, "hidden or reported by the user"))
                continue
            created = parse_datetime(c.attributes.get("created_at"))
            if created is not None:
                age_h = max(0.0, (context.now - created).total_seconds() / 3600)
                decay = 1 - 0.5 ** (age_h / half_life)
                c.adjust(RULE_FRESHNESS, -config["freshness_weight"] * decay, f"{age_h:.0f} h old")
            if author in follows:
                c.adjust(RULE_FOLLOWED, config["followed_boost"], f"you follow {author}")
            kept.append(c)
        kept.sort(key=lambda c: -c.score)
        # The cap runs after scoring so an author's best posts are the ones kept.
        per_author: Counter[str] = Counter()
        final: list[Candidate] = []
        for c in kept:
            author = str(c.attributes.get("author_id"))
            per_author[author] += 1
            if per_author[author] > config["max_per_author"]:
                removed.append(
                    remove(c, RULE_AUTHOR_CAP, f"more than {config['max_per_author']} posts by {author}")
                )
            else:
                final.append(c)
        return RerankResult(candidates=final, removed=removed)

    def profile_features(
        self,
        events: Sequence[EventRecord],
        user: UserRecord,
        config: ConfigValues,
        item_attributes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        items = item_attributes or {}
        counts = Counter(e.type for e in events)
        engaged = sum(counts[t] for t in ENGAGEMENTS)
        seen = counts["impression"] or counts["view"]
        hours = Counter(e.timestamp.hour for e in events)
        dwell = [
            float(e.context["dwell_seconds"])
            for e in events
            if e.type == "view" and "dwell_seconds" in e.context
        ]
        weights = self.event_weights()
        topics: Counter[str] = Counter()
        for e in events:
            topic = items.get(e.item_id or "", {}).get("topic")
            if topic is not None:
                topics[str(topic)] += weights.get(e.type, 0.0)
        total = sum(topics.values())
        out: dict[str, Any] = {
            "event_counts": dict(counts),
            "engagement_rate": round(engaged / seen, 4) if seen else None,
            "mean_dwell_seconds": round(sum(dwell) / len(dwell), 1) if dwell else None,
            "active_hours": [h for h, _ in hours.most_common(3)],
            "following_count": len(followed_authors(events)),
            "hidden_or_reported": counts["hide"] + counts["report"],
        }
        if total:
            out["topic_interests"] = {k: round(v / total, 4) for k, v in topics.most_common(10)}
        return out

    def sample_data(self, seed: int, n_users: int) -> SampleData:
        from domains.social.sample import sample_data

        return sample_data(seed, n_users)

    @classmethod
    def dataset_adapters(cls) -> dict[str, Callable[..., SampleData]]:
        from domains.social.adapters import lastfm_hetrec2011

        return {"lastfm-hetrec2011": lastfm_hetrec2011}


def freshness_penalty(age_hours: float, half_life: float, weight: float) -> float:
    """The freshness rule's penalty, exposed for tests and docs."""
    return -weight * (1 - math.pow(0.5, age_hours / half_life))
