"""Profile-building throughput over 100,000 users (goal ≥ 5,000 users/s on 2 cores).

Creates (once) a tenant of the ecommerce domain with ``--users`` users, ``--items``
products in 40 categories and 20 brands, and ``--events-per-user`` events per user
on average (views, carts, purchases over 90 days), written straight with
``bulk_create`` (ingestion has its own benchmark). Then, back to back on the same
data (every run after the first is a rebuild: upserts over existing rows):

1. ``after, 1 process, create``: ``profile_build_bulk`` in this process, no profiles yet;
2. ``before, 1 process``: the same call by an older checkout (``--before DIR``, e.g. a
   ``git worktree`` of the previous commit), in a subprocess on the same database;
3. ``after, 1 process``: this checkout, in this process;
4. ``after, N parts``: the real path end to end: a Celery worker
   (``-Q profiles,default --concurrency N``, prefork) is started, a profiles job is
   requested like the API does, the ``jobs.build_profiles`` task splits the users into
   N pk ranges and the worker's N children build them in parallel. Wall time runs from
   the request to the job's SUCCEEDED status (worker start-up excluded).

The load average (``os.getloadavg``) is recorded with every run: the machine is shared.

    VAR_DIR=/tmp/var-bench-profiles DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_profiles \
      CELERY_BROKER_URL=redis://127.0.0.1:6379/3 nice -n 10 .venv/bin/python bench/profiles.py \
      --before /tmp/before --json bench/results/profiles.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_core.settings")

# Run by ``--before DIR``'s interpreter with DIR as the working directory: its own code, same database.
_BEFORE_CODE = """
import json, os, resource, sys, time
sys.path.insert(0, os.getcwd())
import django
django.setup()
from platform_core.common.scoping import tenant_scope
from platform_core.profiles.services import profile_build_bulk
from platform_core.tenancy.models import Tenant
from django.db import connection
tenant = Tenant.objects.get(slug=sys.argv[1])
def db_cpu():
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        f = open(f"/proc/{cursor.fetchone()[0]}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
with tenant_scope(tenant):
    d0 = db_cpu()
    t0, c0 = time.perf_counter(), time.process_time()
    n = profile_build_bulk(tenant=tenant)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    d1 = db_cpu()
    print(json.dumps({"users": n, "seconds": seconds, "cpu": cpu, "db_cpu": None if d0 is None else d1 - d0}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--events-per-user", type=int, default=10)
    parser.add_argument("--slug", default="bench-profiles")
    parser.add_argument("--parts", type=int, default=2, help="worker concurrency = user ranges")
    parser.add_argument("--before", type=Path, help="an older checkout for the 'before' single-process run")
    parser.add_argument("--skip-single", action="store_true", help="only the worker run")
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

    from platform_core.catalog.models import EndUser
    from platform_core.common.scoping import tenant_scope
    from platform_core.events.models import Event
    from platform_core.profiles.models import UserProfile
    from platform_core.tenancy.models import Tenant

    tenant, created = Tenant.objects.get_or_create(
        slug=args.slug, defaults={"name": args.slug, "domain": "ecommerce"}
    )
    if created:
        t0 = time.perf_counter()
        _seed(tenant, args.users, args.items, args.events_per_user)
        print(f"seeded in {time.perf_counter() - t0:.1f}s", flush=True)
    with tenant_scope(tenant):
        n_events = Event.objects.for_tenant(tenant).count()
        n_users = EndUser.objects.for_tenant(tenant).count()
        runs = []
        if not args.skip_single:
            UserProfile.objects.for_tenant(tenant).delete()
            runs.append(_single(tenant, "after, 1 process, create"))
            if args.before:
                runs.append(_before(args.before, args.slug))
            runs.append(_single(tenant, "after, 1 process"))
        runs.append(_worker_run(tenant, args.parts))
        for r in runs:
            print(
                f"{r['run']}: {r['users']} profiles in {r['seconds']:.1f}s wall = {r['users_per_second']:,} users/s;"
                f" CPU {r['cpu_seconds']}s + database {r['db_cpu_seconds'] if r['db_cpu_seconds'] is not None else 'n/a '}s"
                f" = {r['users_per_cpu_second']} users"
                f" per CPU second (load {r['load_before']} → {r['load_after']})",
                flush=True,
            )
        base = {r["run"]: r for r in runs}
        ratios = {}
        if "before, 1 process" in base and "after, 1 process" in base:
            b, a = base["before, 1 process"], base["after, 1 process"]
            ratios["after/before, 1 process, wall"] = round(a["users_per_second"] / b["users_per_second"], 2)
            ratios["after/before, 1 process, CPU"] = round(
                a["users_per_cpu_second"] / b["users_per_cpu_second"], 2
            )
        parted = next((r for r in runs if "parts" in r["run"]), None)
        if parted and "after, 1 process" in base:
            ratios[f"{args.parts} parts / 1 process, wall"] = round(
                parted["users_per_second"] / base["after, 1 process"]["users_per_second"], 2
            )
        if parted and "before, 1 process" in base:
            ratios[f"{args.parts} parts / before 1 process, wall"] = round(
                parted["users_per_second"] / base["before, 1 process"]["users_per_second"], 2
            )
        result = {
            "benchmark": "profile_build_bulk",
            "command": "nice -n 10 .venv/bin/python bench/profiles.py " + " ".join(sys.argv[1:]),
            "database": connection.vendor,
            "users": n_users,
            "events": n_events,
            "items": args.items,
            "runs": runs,
            "ratios": ratios,
            "profiles": UserProfile.objects.for_tenant(tenant).count(),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "cpus": os.cpu_count(),
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _proc_cpu(pid: int) -> float:
    """utime + stime of a live process in seconds (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _db_backend_pids(*, own: bool) -> list[int]:
    """PostgreSQL server processes serving this database (or only this connection): their CPU is ours too."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        if own:
            cursor.execute("SELECT pg_backend_pid()")
        else:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        return [r[0] for r in cursor.fetchall()]


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _row(label: str, n: int, seconds: float, cpu: float, db_cpu: float | None, load_before: float) -> dict:
    """One run's figures; CPU = the Python process(es) plus, on PostgreSQL, the server processes serving them."""
    total = cpu + (db_cpu or 0.0)
    return {
        "run": label,
        "users": n,
        "seconds": round(seconds, 2),
        "users_per_second": round(n / seconds),
        "cpu_seconds": round(cpu, 2),
        "db_cpu_seconds": round(db_cpu, 2) if db_cpu is not None else None,
        "users_per_cpu_second": round(n / total) if total else None,
        # What 2 otherwise idle cores would allow at this CPU cost (an upper bound, no contention).
        "projected_users_per_second_2_idle_cores": round(2 * n / total) if total else None,
        "load_before": load_before,
        "load_after": _load(),
    }


def _single(tenant, label: str) -> dict:
    from platform_core.profiles.services import profile_build_bulk

    backends = _db_backend_pids(own=True)
    load = _load()
    d0 = sum(_proc_cpu(p) for p in backends)
    t0, c0 = time.perf_counter(), time.process_time()
    n = profile_build_bulk(tenant=tenant)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    db_cpu = sum(_proc_cpu(p) for p in backends) - d0 if backends else None
    return _row(label, n, seconds, cpu, db_cpu, load)


def _before(root: Path, slug: str) -> dict:
    load = _load()
    py = root / ".venv" / "bin" / "python"
    out = subprocess.run(
        [str(py if py.exists() else Path(sys.executable)), "-c", _BEFORE_CODE, slug],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return _row("before, 1 process", r["users"], r["seconds"], r["cpu"], r.get("db_cpu"), load)


def _worker_run(tenant, parts: int) -> dict:
    """Start a real worker, request a profiles job, time it to SUCCEEDED, stop the worker."""
    from django.conf import settings

    from platform_core.jobs.models import JobKind, JobStatus
    from platform_core.jobs.services import training_job_request

    log = Path(settings.VAR_DIR) / "bench-profiles-worker.log"
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "platform_core",
            "worker",
            "-Q",
            "profiles,default",
            "--concurrency",
            str(parts),
            "--pool",
            "prefork",
            "--loglevel",
            "INFO",
            "--hostname",
            f"bench-profiles-{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while b"ready." not in log.read_bytes():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start; see {log}")
            time.sleep(0.2)
        children = _children(worker.pid)
        # Server processes of this database other than this process's own connection: sampled while
        # the job runs (the pool children's connections may close when their task ends).
        ours = set(_db_backend_pids(own=True))
        db_start = {p: _proc_cpu(p) for p in _db_backend_pids(own=False) if p not in ours}
        db_last = dict(db_start)
        load = _load()
        c0 = sum(_proc_cpu(p) for p in children)
        t0 = time.perf_counter()
        job = training_job_request(tenant=tenant, kind=JobKind.PROFILES, requested_by="bench/profiles.py")
        while True:
            for pid in _db_backend_pids(own=False):
                if pid not in ours:
                    db_last[pid] = _proc_cpu(pid) or db_last.get(pid, 0.0)
            job.refresh_from_db()
            if job.status not in (JobStatus.PENDING, JobStatus.RUNNING):
                break
            time.sleep(0.25)
        seconds = time.perf_counter() - t0
        cpu = sum(_proc_cpu(p) for p in children) - c0
        db_cpu = sum(v - db_start.get(pid, 0.0) for pid, v in db_last.items())
        if job.status != JobStatus.SUCCEEDED:
            raise RuntimeError(f"job {job.pk} {job.status}: {job.error[:2000]}")
        label = f"after, {parts} parts (worker -c {parts})"
        row = _row(label, job.result["profiles"], seconds, cpu, db_cpu or None, load)
        row["parts"] = job.result["parts"]
        row["job_seconds"] = job.result["seconds"]  # claim → last part done
        return row
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


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
