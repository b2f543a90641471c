"""Cost of one 1,000-event ``POST /api/v1/events`` in process (Django test client, PostgreSQL).

No HTTP server and no load generator: wall and Python CPU time per request,
so the Python side and the database side can be told apart (wall − CPU ≈
time waiting for PostgreSQL), and the CPU time of the PostgreSQL backend
serving the connection (``/proc/<pid>/stat``; the server must run on this
machine): Python CPU + PostgreSQL CPU per request is what bounds events/s on
a machine whose cores both do the work. Fresh database, the same seeded batches as
``bench/ingest_rest.py``, 2 warm-up requests, then 30 timed ones.

    .venv/bin/python bench/ingest_inprocess.py postgres://postgres@127.0.0.1:5432/bench_inproc

``ROOT=<another checkout>`` runs that checkout's code (same venv) for a before/after pair.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

ROOT = os.environ.get("ROOT", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
os.chdir(ROOT)


def _pg_cpu_seconds(pid: int) -> float:
    """User + system CPU of a PostgreSQL backend process (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    from bench._setup import environment, pg_database_recreate, tenant_with_key
    from bench.ingest_rest import batch

    url = sys.argv[1]
    pg_database_recreate(url)
    env = environment(database_url=url, var_dir="/tmp/var-ingest-inprocess")
    key = tenant_with_key(env, "bench")
    os.environ.update(env)
    import django

    django.setup()
    from django.test import Client

    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Api-Key {key}"}
    rng = random.Random(1)
    bodies = [batch(0, n, 1000, rng) for n in range(32)]

    def post(body: bytes) -> int:
        return client.post(
            "/api/v1/events", data=body, content_type="application/json", **headers
        ).status_code

    for body in bodies[:2]:
        assert post(body) in (200, 201)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    walls, cpus = [], []
    pg0 = _pg_cpu_seconds(backend)
    for body in bodies[2:]:
        w0, c0 = time.perf_counter(), time.process_time()
        assert post(body) == 201
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    pg_cpu_ms = 1000 * (_pg_cpu_seconds(backend) - pg0) / len(walls)
    walls.sort()
    cpus.sort()
    print(
        json.dumps(
            {
                "root": ROOT,
                "requests": len(walls),
                "wall_ms_median": round(1000 * walls[len(walls) // 2], 1),
                "wall_ms_min": round(1000 * walls[0], 1),
                "python_cpu_ms_median": round(1000 * cpus[len(cpus) // 2], 1),
                "python_cpu_ms_min": round(1000 * cpus[0], 1),
                # Ticks of 10 ms summed over all requests: a mean, not a median.
                "postgres_cpu_ms_mean": round(pg_cpu_ms, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
