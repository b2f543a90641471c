"""Profile-building throughput: ``profile_build_bulk`` over 100,000 users (goal ≥ 5,000 users/s on 2 cores).

Creates (once) a tenant of the ecommerce domain with ``--users`` users, ``--items``
products in 40 categories and 20 brands, and ``--events-per-user`` events per user
on average (views, carts, purchases over 90 days), written straight with
``bulk_create`` (ingestion has its own benchmark). Then times the bulk build,
which streams the events ordered by user, computes every persona (interests,
sessions, activity, segment, the plugin's ``profile_features``) and upserts in
batches. The build is run twice: the first creates the rows, the second updates them.

    VAR_DIR=/tmp/var-bench-profiles nice -n 10 .venv/bin/python bench/profiles.py --json bench/results/profiles.json
    # PostgreSQL: add DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_profiles
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_core.settings")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--events-per-user", type=int, default=10)
    parser.add_argument("--slug", default="bench-profiles")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        from bench._setup import pg_database_ensure

        pg_database_ensure(os.environ["DATABASE_URL"])

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)

    from django.db import connection

    from platform_core.profiles.models import UserProfile
    from platform_core.profiles.services import profile_build_bulk
    from platform_core.tenancy.models import Tenant

    tenant, created = Tenant.objects.get_or_create(
        slug=args.slug, defaults={"name": args.slug, "domain": "ecommerce"}
    )
    if created:
        t0 = time.perf_counter()
        _seed(tenant, args.users, args.items, args.events_per_user)
        print(f"seeded in {time.perf_counter() - t0:.1f}s", flush=True)
    from platform_core.events.models import Event

    n_events = Event.objects.for_tenant(tenant).count()
    runs = []
    plan = [("create", 1), ("update", 1)]
    UserProfile.objects.for_tenant(tenant).delete()
    for label, workers in plan:
        t0, c0 = time.perf_counter(), _cpu()
        n = profile_build_bulk(tenant=tenant)
        seconds, cpu = time.perf_counter() - t0, _cpu() - c0
        runs.append(
            {
                "run": label,
                "workers": workers,
                "users": n,
                "seconds": round(seconds, 2),
                "users_per_second": round(n / seconds),
                # CPU seconds of this process and its worker processes (the database is SQLite in
                # process; on PostgreSQL the server's share is not counted).
                "cpu_seconds": round(cpu, 2),
                "users_per_cpu_second": round(n / cpu),
            }
        )
        print(
            f"{label} ({workers} worker(s)): {n} profiles in {seconds:.1f}s wall, {cpu:.1f}s CPU = {n / seconds:,.0f} users/s "
            f"({n / cpu:,.0f} per CPU second)",
            flush=True,
        )
    result = {
        "benchmark": "profile_build_bulk",
        "command": "VAR_DIR=/tmp/var-bench-profiles nice -n 10 .venv/bin/python bench/profiles.py "
        + " ".join(sys.argv[1:]),
        "database": connection.vendor,
        "users": args.users,
        "events": n_events,
        "items": args.items,
        "runs": runs,
        "profiles": UserProfile.objects.for_tenant(tenant).count(),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_mb_worker": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "cpus": os.cpu_count(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def _cpu() -> float:
    """CPU seconds of this process plus its finished children (the forked build workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _seed(tenant, n_users: int, n_items: int, per_user: int) -> None:
    from platform_core.catalog.models import EndUser, Item
    from platform_core.events.models import Event

    rng = random.Random(0)
    Item.unscoped.bulk_create(
        [
            Item(
                tenant=tenant,
                external_id=f"p{i}",
                attributes={
                    "title": f"Product {i}",
                    "category": f"c{i % 40}",
                    "brand": f"b{i % 20}",
                    "price": 10.0 + i % 90,
                },
            )
            for i in range(n_items)
        ],
        batch_size=2000,
    )
    item_pks = list(Item.objects.for_tenant(tenant).values_list("pk", flat=True))
    EndUser.unscoped.bulk_create(
        [EndUser(tenant=tenant, external_id=f"u{u}") for u in range(n_users)], batch_size=5000
    )
    user_pks = list(EndUser.objects.for_tenant(tenant).values_list("pk", flat=True))
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=90)
    types = ["view"] * 7 + ["add_to_cart"] * 2 + ["purchase"]
    batch: list[Event] = []
    n = 0
    for upk in user_pks:
        k = max(1, int(rng.expovariate(1 / per_user)))
        t = start + dt.timedelta(seconds=rng.randrange(80 * 86400))
        for _ in range(k):
            t += dt.timedelta(seconds=rng.choice((30, 90, 600, 86400)))
            etype = rng.choice(types)
            batch.append(
                Event(
                    tenant=tenant,
                    event_id=f"e{n}",
                    user_id=upk,
                    item_id=rng.choice(item_pks),
                    type=etype,
                    timestamp=t,
                    context={"amount": 25.0, "currency": "EUR"} if etype == "purchase" else {},
                )
            )
            n += 1
        if len(batch) >= 20_000:
            Event.unscoped.bulk_create(batch, batch_size=5000)
            batch.clear()
    Event.unscoped.bulk_create(batch, batch_size=5000)


if __name__ == "__main__":
    main()
