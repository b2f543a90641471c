"""Domain plugin benchmark: sample-data generation, rerank, profile and risk latency (no database).

    nice -n 10 .venv/bin/python -m bench.domains [--users 300] [--candidates 200]

Writes bench/results/domains.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from domains.base import Candidate, EventRecord, RerankContext, UserRecord, parse_datetime  # noqa: E402
from domains.registry import plugins_load  # noqa: E402

BUILTIN = [
    "domains.ecommerce.plugin.EcommercePlugin",
    "domains.social.plugin.SocialPlugin",
    "domains.education.plugin.EducationPlugin",
    "domains.finance_risk.plugin.FinanceRiskPlugin",
    "domains.healthcare.plugin.HealthcarePlugin",
    "domains.transport.plugin.TransportPlugin",
]


def _timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Median seconds of ``repeat`` calls."""
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def learnability(plugin, data) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Next-item HR@10 on each user's last interaction: popularity vs "most frequent successor".

    Training pairs come from every user's sequence without its last item; a
    structured sequence shows as successor HR well above popularity HR.
    """
    from collections import Counter, defaultdict

    weights = plugin.event_weights()
    seqs: dict[str, list[str]] = defaultdict(list)
    for e in data.events:
        if (
            e["item_id"]
            and weights.get(e["type"], 0) > 0
            and (not seqs[e["user_id"]] or seqs[e["user_id"]][-1] != e["item_id"])
        ):
            seqs[e["user_id"]].append(e["item_id"])
    pop: Counter[str] = Counter()
    succ: dict[str, Counter[str]] = defaultdict(Counter)
    tests = []
    for seq in seqs.values():
        if len(seq) < 3:
            continue
        train, target = seq[:-1], seq[-1]
        pop.update(train)
        for a, b in zip(train, train[1:], strict=False):
            succ[a][b] += 1
        tests.append((train[-1], target))
    top = [i for i, _ in pop.most_common(10)]
    hit_pop = sum(t in top for _, t in tests) / len(tests)
    hit_seq = 0
    for last, t in tests:
        guess = [i for i, _ in succ[last].most_common(10)]
        guess += [i for i in top if i not in guess][: 10 - len(guess)]
        hit_seq += t in guess
    return round(hit_pop, 3), round(hit_seq / len(tests), 3)


def bench_plugin(plugin, users: int, n_candidates: int) -> dict:  # type: ignore[no-untyped-def]
    gen = _timed(lambda: plugin.sample_data(0, users), 3)
    data = plugin.sample_data(0, users)
    items = {i["item_id"]: i["attributes"] for i in data.items}
    by_user: dict[str, list[EventRecord]] = {}
    for e in data.events:
        by_user.setdefault(e["user_id"], []).append(
            EventRecord(
                e["user_id"],
                e["item_id"],
                e["type"],
                parse_datetime(e["timestamp"]),
                e["value"],
                e["context"],
            )
        )
    uid, history = max(by_user.items(), key=lambda kv: len(kv[1]))
    user = UserRecord(uid, next(u["attributes"] for u in data.users if u["user_id"] == uid))
    first = history[0].context
    ctx = RerankContext(
        user=user,
        history=history,
        now=history[-1].timestamp,
        request={"lat": first.get("lat", 48.137), "lon": first.get("lon", 11.575), "hour": 8},
        item_attributes={i: items[i] for i in {e.item_id for e in history if e.item_id}},
    )
    pool = [Candidate(i, 1.0 - n / 1e4, a) for n, (i, a) in enumerate(list(items.items())[:n_candidates])]
    config = plugin.default_config()
    # Fresh candidates each run (rerank mutates them); building 200 costs ~40 µs of the figure.
    rerank = _timed(
        lambda: plugin.rerank([Candidate(c.item_id, c.score, c.attributes) for c in pool], ctx, config), 200
    )
    profile = _timed(lambda: plugin.profile_features(history, user, config, item_attributes=items), 200)
    risk = _timed(lambda: plugin.risk_score(history, user, config), 200) if plugin.has_risk_score() else None
    hr_pop, hr_seq = learnability(plugin, data)
    return {
        "hr10_popularity": hr_pop,
        "hr10_successor": hr_seq,
        "domain": plugin.id,
        "users": len(data.users),
        "items": len(data.items),
        "events": len(data.events),
        "sample_seconds": round(gen, 3),
        "candidates": len(pool),
        "history_len": len(history),
        "rerank_us": round(rerank * 1e6, 1),
        "profile_us": round(profile * 1e6, 1),
        "risk_us": None if risk is None else round(risk * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--candidates", type=int, default=200)
    args = parser.parse_args()
    rows = [bench_plugin(p, args.users, args.candidates) for p in plugins_load(paths=BUILTIN).values()]
    out = ROOT / "bench" / "results" / "domains.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"date": time.strftime("%Y-%m-%d"), "args": vars(args), "rows": rows}, indent=2)
    )
    print(
        "| domain | users | items | events | sample_data (s) | rerank of N candidates (µs) "
        "| profile (µs, history) | risk (µs) | next-item HR@10 popularity / successor |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['domain']} | {r['users']} | {r['items']} | {r['events']} | {r['sample_seconds']} "
            f"| {r['rerank_us']} (N={r['candidates']}) | {r['profile_us']} ({r['history_len']} events) "
            f"| {r['risk_us'] or '—'} | {r['hr10_popularity']} / {r['hr10_successor']} |"
        )


if __name__ == "__main__":
    main()
