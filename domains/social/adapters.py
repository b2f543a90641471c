"""Real data for the social domain: Last.fm hetrec2011-lastfm-2k.

Artists become the "posts" (authored by the artist, topic = the tag users
gave them most), tag assignments become likes on the day they were made,
listening counts become one view whose dwell is the play count × 210 s
(an average track), dated at the user's first tag of that artist (else the
end of the collection, 2011-05-01), and friendships become follows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from domains.base import SampleData
from domains.datasets import DatasetError, csv_rows, dataset_file, optional_file, utc_iso

END = datetime(2011, 5, 1, 12, tzinfo=UTC)
# Last.fm started in 2002; the collection's tags run from 2005-08 on.
COLLECTION_START = datetime(2002, 1, 1, tzinfo=UTC)
TRACK_SECONDS = 210


def _day(row: dict[str, str]) -> datetime | None:
    """The tag's day; None for the few bogus rows the original has (1956, 1957, 1979)."""
    try:
        day = datetime(int(row["year"]), int(row["month"]), int(row["day"]), 12, tzinfo=UTC)
    except (KeyError, ValueError):
        return None
    return day if day >= COLLECTION_START else None


def lastfm_hetrec2011(path: str | Path, *, limit: int | None = None) -> SampleData:
    """The tab-separated files of hetrec2011-lastfm-2k (user_artists.dat is required)."""
    plays = dataset_file(path, "user_artists.dat")
    base = plays.parent
    tagged_file = optional_file(base, "user_taggedartists.dat")
    tags_file = optional_file(base, "tags.dat")
    artists_file = optional_file(base, "artists.dat")
    friends_file = optional_file(base, "user_friends.dat")

    tag_names = (
        {r["tagID"]: r["tagValue"] for r in csv_rows(tags_file, delimiter="\t", encoding="iso-8859-1")}
        if tags_file
        else {}
    )
    names = {r["id"]: r["name"] for r in csv_rows(artists_file, delimiter="\t")} if artists_file else {}
    likes: dict[tuple[str, str], datetime] = {}
    artist_tags: dict[str, Counter[str]] = defaultdict(Counter)
    first_seen: dict[str, datetime] = {}
    if tagged_file:
        for r in csv_rows(tagged_file, delimiter="\t"):
            day = _day(r)
            if day is None:
                continue
            key = (r["userID"], r["artistID"])
            likes[key] = min(day, likes.get(key, day))
            artist_tags[r["artistID"]][tag_names.get(r["tagID"], r["tagID"])] += 1
            first_seen[r["artistID"]] = min(day, first_seen.get(r["artistID"], day))

    events: list[dict] = []
    users: dict[str, dict] = {}
    artists: set[str] = set()
    for r in csv_rows(plays, delimiter="\t"):
        try:
            user, artist, weight = r["userID"], r["artistID"], int(r["weight"])
        except (KeyError, ValueError) as exc:
            raise DatasetError(f"{plays.name}: bad row {r!r}") from exc
        if limit is not None and len(events) >= limit and user not in users:
            break  # whole users only, so a slice keeps complete histories
        users.setdefault(user, {"user_id": user, "attributes": {}})
        artists.add(artist)
        when = likes.get((user, artist), END)
        events.append(
            _event(
                f"lfm-play-{user}-{artist}",
                user,
                artist,
                "view",
                when,
                {"dwell_seconds": float(min(86_400, weight * TRACK_SECONDS))},
            )
        )
        if (user, artist) in likes:
            events.append(_event(f"lfm-like-{user}-{artist}", user, artist, "like", when, {}))
    if friends_file:
        for r in csv_rows(friends_file, delimiter="\t"):
            if r["userID"] in users and r["friendID"] in users:
                events.append(
                    _event(
                        f"lfm-follow-{r['userID']}-{r['friendID']}",
                        r["userID"],
                        None,
                        "follow",
                        END,
                        {"author_id": r["friendID"]},
                    )
                )
    items = []
    for artist in sorted(artists, key=lambda a: int(a) if a.isdigit() else a):
        top = artist_tags[artist].most_common(1)
        attrs = {
            "author_id": f"artist{artist}",
            "topic": (top[0][0] if top else "untagged")[:100],
            "created_at": utc_iso(first_seen.get(artist, END)),
            "media_type": "audio",
        }
        if artist in names:
            attrs["text"] = names[artist][:5000]
        items.append({"item_id": artist, "attributes": attrs})
    events.sort(key=lambda e: (e["timestamp"], e["event_id"]))
    return SampleData(users=list(users.values()), items=items, events=events)


def _event(eid: str, user: str, item: str | None, kind: str, when: datetime, context: dict) -> dict:
    return {
        "event_id": eid,
        "user_id": user,
        "item_id": item,
        "type": kind,
        "timestamp": utc_iso(when),
        "value": None,
        "context": context,
    }
