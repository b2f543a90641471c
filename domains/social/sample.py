"""Synthetic feed: topic clusters, authors who are users, dwell, reactions, follows."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from domains.base import SampleData
from domains.synth import ANCHOR, EventSink, Synth, iso

TOPICS = (
    "football",
    "cooking",
    "politics",
    "travel",
    "gaming",
    "music",
    "science",
    "fashion",
    "pets",
    "film",
)
LANGS = ("en", "en", "en", "es", "de", "fr")
DAYS = 45


def sample_data(seed: int, n_users: int) -> SampleData:
    s = Synth(seed, "social")
    n_items = max(80, int(n_users * 1.5))
    catalog = s.catalog(n_items, len(TOPICS), zipf_a=1.0)
    user_ids = [f"u{u:05d}" for u in range(n_users)]
    # Prolific authors: a Zipf share of posts goes to a few users.
    author_w = s.zipf(n_users, 0.9)
    start = ANCHOR - timedelta(days=DAYS)
    items, created = [], []
    for i in range(n_items):
        when = (
            start - timedelta(hours=s.uniform(0, 24 * 20))
            if s.chance(0.6)
            else start + timedelta(hours=s.uniform(0, 24 * (DAYS - 2)))
        )
        created.append(when)
        items.append(
            {
                "item_id": f"post{i:05d}",
                "attributes": {
                    "author_id": s.choice(user_ids, p=author_w),
                    "topic": TOPICS[int(catalog.cluster_of[i])],
                    "language": s.choice(LANGS),
                    "created_at": iso(when),
                    "media_type": s.choice(("text", "image", "video", "link"), p=[0.35, 0.35, 0.2, 0.1]),
                },
            }
        )
    users = [
        {
            "user_id": uid,
            "attributes": {
                "language": s.choice(LANGS),
                "country": s.choice(("US", "GB", "ES", "DE", "FR", "MX")),
                "joined_at": iso(ANCHOR - timedelta(days=s.integers(50, 2000))),
                "followers_count": int(s.rng.zipf(1.8)) - 1,
            },
        }
        for uid in user_ids
    ]
    sink = EventSink(f"so{seed}")
    for uid in user_ids:
        plan = s.user_plan(catalog.n_clusters, activity=6.0)
        affinity: Counter[str] = Counter()
        follows: set[str] = set()
        for sess in s.sessions(catalog, plan, days=DAYS, mean_length=4.0, gap_seconds=40):
            for pos, (idx, ts) in enumerate(zip(sess.items, sess.times, strict=True)):
                post = items[idx]
                author = post["attributes"]["author_id"]
                if ts < created[idx] or author == uid:
                    continue  # a post can't be seen before it exists; own posts aren't in the feed
                iid = post["item_id"]
                sink.add(uid, iid, "impression", ts, context={"position": pos, "surface": "feed"})
                in_taste = plan.prefs_start[int(catalog.cluster_of[idx])] > 0.2 or author in follows
                if s.chance(0.04) and not in_taste:
                    if s.chance(0.8):
                        sink.add(uid, iid, "hide", ts + timedelta(seconds=3))
                    else:
                        sink.add(
                            uid,
                            iid,
                            "report",
                            ts + timedelta(seconds=3),
                            context={"reason": s.choice(("spam", "abuse", "other"))},
                        )
                    continue
                dwell = round(float(s.rng.gamma(2.0, 12.0 if in_taste else 4.0)), 1)
                sink.add(uid, iid, "view", ts + timedelta(seconds=2), context={"dwell_seconds": dwell})
                if s.chance(0.3 if in_taste else 0.05):
                    sink.add(uid, iid, "like", ts + timedelta(seconds=dwell + 3))
                    affinity[author] += 1
                if s.chance(0.06 if in_taste else 0.01):
                    sink.add(
                        uid,
                        iid,
                        "comment",
                        ts + timedelta(seconds=dwell + 20),
                        context={"length": s.integers(5, 400)},
                    )
                if s.chance(0.04 if in_taste else 0.005):
                    sink.add(
                        uid,
                        iid,
                        "share",
                        ts + timedelta(seconds=dwell + 30),
                        context={"channel": s.choice(("repost", "message", "external"))},
                    )
                if author not in follows and affinity[author] >= 2 and s.chance(0.5):
                    follows.add(author)
                    sink.add(
                        uid, iid, "follow", ts + timedelta(seconds=dwell + 40), context={"author_id": author}
                    )
    return SampleData(users=users, items=items, events=sink.sorted())
