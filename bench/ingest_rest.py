"""REST batch ingestion throughput: events/s through gunicorn on 127.0.0.1.

Each client process holds one keep-alive HTTP connection (``http.client``)
and posts pre-built batches of 1,000 events; the figure is events inserted
per second of wall time across all clients, after a warm-up that creates the
users and items. Runs on SQLite (a fresh VAR_DIR) and, with ``--pg``, on
PostgreSQL (a fresh database).

    nice -n 5 .venv/bin/python bench/ingest_rest.py --sqlite --pg
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import multiprocessing as mp
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._setup import ROOT, environment, pg_database_recreate, tenant_with_key  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def batch(client: int, n: int, size: int, rng: random.Random) -> bytes:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    events = []
    for k in range(size):
        purchase = rng.random() < 0.1
        event = {
            "event_id": f"c{client}-b{n}-{k}",
            "user_id": f"u{rng.randrange(20_000)}",
            "item_id": f"i{rng.randrange(5_000)}",
            "type": "purchase" if purchase else "view",
            "timestamp": (base + dt.timedelta(seconds=rng.randrange(30 * 86400))).isoformat(),
        }
        if purchase:
            event["value"] = round(rng.uniform(5, 200), 2)
            event["context"] = {"amount": event["value"], "quantity": rng.randrange(1, 4)}
        else:
            event["context"] = {"source": rng.choice(["search", "home", "category"])}
        events.append(event)
    return json.dumps({"events": events}).encode()


def client_run(
    client: int, port: int, key: str, warmup: int, batches: int, size: int, start_at: float, out: mp.Queue
) -> None:
    try:
        _client_run(client, port, key, warmup, batches, size, start_at, out)
    except Exception as exc:  # report instead of leaving the parent waiting
        out.put({"client": client, "error": repr(exc)})


def _client_run(
    client: int, port: int, key: str, warmup: int, batches: int, size: int, start_at: float, out: mp.Queue
) -> None:
    rng = random.Random(client)
    bodies = [batch(client, n, size, rng) for n in range(warmup + batches)]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}

    def post(body: bytes) -> dict:
        conn.request("POST", "/api/v1/events", body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        if resp.status not in (200, 201):
            raise RuntimeError(f"HTTP {resp.status}: {raw[:300]!r}")
        return json.loads(raw)

    for body in bodies[:warmup]:
        post(body)
    while time.time() < start_at:
        time.sleep(0.01)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    inserted = 0
    latencies = []
    for body in bodies[warmup:]:
        t = time.perf_counter()
        inserted += post(body)["inserted"]
        latencies.append(time.perf_counter() - t)
    out.put(
        {
            "client": client,
            "inserted": inserted,
            "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - cpu0,
            "latencies": latencies,
        }
    )


def _proc_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (fields 14 and 15 of /proc/<pid>/stat); 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                found.append(int(entry.name))
    return found


def _pg_backends(database_url: str | None) -> list[int]:
    if not database_url:
        return []
    import psycopg2

    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def _server_cpu(master: int, database_url: str | None) -> dict[str, dict[int, float]]:
    """CPU seconds so far of gunicorn (master and workers) and of the PostgreSQL backends serving it."""
    return {
        "gunicorn": {p: _proc_cpu_seconds(p) for p in [master, *_children(master)]},
        "postgres": {p: _proc_cpu_seconds(p) for p in _pg_backends(database_url)},
    }


def _cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], part: str) -> float:
    # Processes started during the run count from zero; ticks are 10 ms.
    return sum(t - before[part].get(p, 0.0) for p, t in after[part].items())


def run_backend(
    label: str, env: dict[str, str], *, port: int, workers: int, clients: int, batches: int, size: int
) -> dict:
    key = tenant_with_key(env, "bench")
    server = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "platform_core.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        queue: mp.Queue = mp.Queue()
        start_at = time.time() + 8  # every client has built its batches and warmed up by then
        procs = [
            mp.Process(target=client_run, args=(c, port, key, 2, batches, size, start_at, queue))
            for c in range(clients)
        ]
        for p in procs:
            p.start()
        while time.time() < start_at:
            time.sleep(0.005)
        cpu_before = _server_cpu(server.pid, env.get("DATABASE_URL"))
        results = [queue.get(timeout=900) for _ in procs]
        cpu_after = _server_cpu(server.pid, env.get("DATABASE_URL"))
        errors = [r["error"] for r in results if "error" in r]
        if errors:
            raise RuntimeError(f"client failed: {errors[0]}")
        for p in procs:
            p.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
    inserted = sum(r["inserted"] for r in results)
    wall = max(r["seconds"] for r in results)
    lat = sorted(x for r in results for x in r["latencies"])
    client_cpu = sum(r["cpu_seconds"] for r in results)
    per_1000 = 1000 / (inserted / 1000)
    gunicorn_ms = per_1000 * _cpu_used(cpu_before, cpu_after, "gunicorn")
    postgres_ms = per_1000 * _cpu_used(cpu_before, cpu_after, "postgres")
    cpu_ms_per_1000 = gunicorn_ms + postgres_ms
    return {
        "backend": label,
        "events_per_s": round(inserted / wall),
        "inserted": inserted,
        "seconds": round(wall, 2),
        "batch_size": size,
        "clients": clients,
        "gunicorn_workers": workers,
        "p50_batch_ms": round(1000 * lat[len(lat) // 2], 1),
        "p95_batch_ms": round(1000 * lat[int(len(lat) * 0.95)], 1),
        # The load generator's own CPU, as a share of the machine's cores over the run.
        "client_cpu_seconds": round(client_cpu, 2),
        "client_cpu_share": round(client_cpu / (wall * (os.cpu_count() or 1)), 3),
        # Server-side CPU (gunicorn + PostgreSQL backends) per 1,000 events, and the
        # events/s that much CPU allows on the machine's cores when nothing else runs:
        # a figure that load from other processes disturbs far less than events/s.
        "server_cpu_ms_per_1000": round(cpu_ms_per_1000, 1),
        "gunicorn_cpu_ms_per_1000": round(gunicorn_ms, 1),
        "postgres_cpu_ms_per_1000": round(postgres_ms, 1),
        "cpu_bound_events_per_s": round(1000 * 1000 * (os.cpu_count() or 1) / cpu_ms_per_1000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--pg", action="store_true")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/foundation_bench")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--out", default=str(RESULTS / "ingest_rest.json"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--batches", type=int, default=30, help="timed batches per client")
    parser.add_argument("--size", type=int, default=1000)
    args = parser.parse_args()
    rows = []
    if args.sqlite or not args.pg:
        var = tempfile.mkdtemp(prefix="bench-ingest-")
        try:
            rows.append(
                run_backend(
                    "sqlite",
                    environment(database_url=None, var_dir=var),
                    port=args.port,
                    workers=args.workers,
                    clients=args.clients,
                    batches=args.batches,
                    size=args.size,
                )
            )
        finally:
            shutil.rmtree(var, ignore_errors=True)
    if args.pg:
        pg_database_recreate(args.pg_url)
        var = tempfile.mkdtemp(prefix="bench-ingest-")
        try:
            rows.append(
                run_backend(
                    "postgresql",
                    environment(database_url=args.pg_url, var_dir=var),
                    port=args.port,
                    workers=args.workers,
                    clients=args.clients,
                    batches=args.batches,
                    size=args.size,
                )
            )
        finally:
            shutil.rmtree(var, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(
        "| backend | events/s | batches × size | clients | gunicorn workers | p50 / p95 per batch "
        "| client CPU share | server CPU per 1,000 (gunicorn + PostgreSQL) | CPU-bound events/s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['backend']} | {r['events_per_s']:,} | {r['inserted'] // r['batch_size']} × {r['batch_size']} | "
            f"{r['clients']} | {r['gunicorn_workers']} | {r['p50_batch_ms']} / {r['p95_batch_ms']} ms | "
            f"{100 * r['client_cpu_share']:.1f} % | {r['server_cpu_ms_per_1000']} ms "
            f"({r['gunicorn_cpu_ms_per_1000']} + {r['postgres_cpu_ms_per_1000']}) | "
            f"{r['cpu_bound_events_per_s']:,} |"
        )


if __name__ == "__main__":
    main()
