"""Serving benchmark: a tenant with 100,000 items and 10,000 users behind gunicorn on 127.0.0.1.

Measures, in one run:

(a) saturation: wrk with 32 keep-alive connections, first on ``/healthz``, then
    twice on ``/api/v1/users/{random user}/recommendations?k=10`` (a Lua script
    picks the user per request): a first pass, which starts with empty
    per-process user-state caches, then (after ``--warm-seconds`` of unmeasured
    load, until each worker has met nearly every user) the steady state; the
    ratios of the throughputs;
(b) latency at a fixed offered load (open loop, default 300 requests/s): a Python
    client in another process sends on a fixed schedule over keep-alive
    connections and measures each latency from the *scheduled* send time, so a
    stalled server cannot hide queueing (no coordinated omission);
(c) the RSS of each gunicorn worker after the load (``/proc/<pid>/status``);
(d) freshness: POST one event through ``/api/v1/events``, then poll the user's
    recommendations through 4 other keep-alive connections (so other worker
    processes, which hold the user's cached state, answer too) until every one
    of them answers with changed scores; the time from the POST's answer
    (acceptance) to the last of them, repeated.

The artifact is synthetic (``mlcore.artifacts.artifact_save`` with item vectors
scattered around 200 random cluster centres, as learned embeddings are, a
random 2-block encoder in mlcore.inference's layout, and the HNSW index that
artifact_save builds for large catalogs); the events are random (Zipf-like
item popularity). Quality is not measured here, only the serving path.
``--stages`` measures instead, in process, what each step of a recommendation
costs and the RSS with the model loaded.

    VAR_DIR=/tmp/var-serving-bench DATABASE_URL=postgres://postgres@127.0.0.1:5432/serving \\
        .venv/bin/python bench/serve.py --json bench/results/serve.json

Needs ``wrk`` (``apt-get install -y wrk``) for (a).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
SLUG = "bench-serve"
DIM = 64
MAX_LEN = 50


# --------------------------------------------------------------------------- set-up
def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_core.settings")
    import django

    django.setup()


def _encoder_weights(n_items: int, rng) -> dict:  # noqa: ANN001
    import numpy as np

    def r(*shape: int, scale: float = 0.1):  # noqa: ANN202
        return rng.normal(0, scale, size=shape).astype(np.float32)

    w = {
        "item_emb": r(n_items + 1, DIM, scale=0.5),
        "pos_emb": r(MAX_LEN, DIM),
        "type_emb": r(7, DIM),
        "lnf_gamma": np.ones(DIM, np.float32),
        "lnf_beta": np.zeros(DIM, np.float32),
    }
    for b in range(2):
        p = f"block{b}_"
        for name in ("wq", "wk", "wv", "wo"):
            w[p + name] = r(DIM, DIM)
        for name in ("bq", "bk", "bv", "bo", "b2"):
            w[p + name] = np.zeros(DIM, np.float32)
        w[p + "b1"] = np.zeros(DIM, np.float32)
        w[p + "w1"], w[p + "w2"] = r(DIM, DIM), r(DIM, DIM)
        w[p + "ln1_gamma"] = w[p + "ln2_gamma"] = np.ones(DIM, np.float32)
        w[p + "ln1_beta"] = w[p + "ln2_beta"] = np.zeros(DIM, np.float32)
    return w


def setup_data(*, n_items: int, n_users: int, events_per_user: int, seed: int) -> tuple[str, list[str]]:
    """Create (or reuse) the tenant, its catalog, events, artifact and active version; return a key."""
    _django()
    import numpy as np
    from django.core.files.storage import default_storage
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from mlcore.artifacts import FORMAT_VERSION, artifact_save
    from platform_core.catalog.models import EndUser, Item
    from platform_core.events.models import Event
    from platform_core.jobs.models import ModelVersion, VersionState
    from platform_core.tenancy.models import Tenant
    from platform_core.tenancy.services import api_key_create

    tenant, _ = Tenant.objects.get_or_create(slug=SLUG, defaults={"name": SLUG, "domain": "ecommerce"})
    rng = random.Random(seed)
    item_ids = [f"i{n}" for n in range(n_items)]
    user_ids = [f"u{n}" for n in range(n_users)]
    if Item.objects.for_tenant(tenant).count() != n_items:
        t = time.perf_counter()
        Item.objects.for_tenant(tenant).delete()
        cats = [f"cat{n}" for n in range(50)]
        Item.unscoped.bulk_create(
            [
                Item(
                    tenant=tenant,
                    external_id=i,
                    attributes={
                        "category": rng.choice(cats),
                        "price": round(rng.uniform(1, 500), 2),
                        "in_stock": rng.random() > 0.05,
                    },
                )  # fmt: skip
                for i in item_ids
            ],
            batch_size=5000,
        )
        print(f"items: {n_items} in {time.perf_counter() - t:.1f}s", flush=True)
    if EndUser.objects.for_tenant(tenant).count() != n_users:
        EndUser.objects.for_tenant(tenant).delete()
        EndUser.unscoped.bulk_create(
            [EndUser(tenant=tenant, external_id=u) for u in user_ids], batch_size=5000
        )
    if Event.objects.for_tenant(tenant).count() < n_users * events_per_user:
        t = time.perf_counter()
        Event.objects.for_tenant(tenant).delete()
        users = dict(EndUser.objects.for_tenant(tenant).values_list("external_id", "pk"))
        items = dict(Item.objects.for_tenant(tenant).values_list("external_id", "pk"))
        base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        # Popularity skew: a Zipf-like draw over items.
        weights = np.asarray([1.0 / (1 + n) ** 0.8 for n in range(n_items)])
        weights /= weights.sum()
        nprng = np.random.default_rng(seed)
        batch: list[Event] = []
        n = 0
        for u in user_ids:
            picks = nprng.choice(n_items, size=events_per_user, p=weights)
            for k, pick in enumerate(picks):
                batch.append(Event(
                    tenant=tenant, event_id=f"e{n}", user_id=users[u], item_id=items[item_ids[pick]],
                    type="purchase" if rng.random() < 0.05 else "view",
                    timestamp=base + dt.timedelta(minutes=k), context={},
                ))  # fmt: skip
                n += 1
            if len(batch) >= 20_000:
                Event.unscoped.bulk_create(batch, batch_size=5000)
                batch = []
        Event.unscoped.bulk_create(batch, batch_size=5000)
        print(f"events: {n} in {time.perf_counter() - t:.1f}s", flush=True)
    # The format version in the name: an artifact of an older format is refused by the loader.
    name = f"{SLUG}/synthetic-{n_items}-clustered-v{FORMAT_VERSION}"
    path = Path(default_storage.path(name))
    if not (path / "manifest.json").exists():
        t = time.perf_counter()
        nprng = np.random.default_rng(seed)
        weights = _encoder_weights(n_items, nprng)
        # Learned item embeddings cluster (genres, categories); uniform noise would not, and would make
        # every index look worse than on real data. 200 latent clusters, items scattered around them.
        centroids = nprng.normal(0, 0.5, size=(200, DIM)).astype(np.float32)
        members = nprng.integers(0, 200, size=n_items)
        noise = nprng.normal(0, 0.2, size=(n_items, DIM)).astype(np.float32)
        weights["item_emb"][1:] = centroids[members] + noise
        artifact_save(
            path,
            algorithm="transformer",
            config={"dim": DIM, "synthetic": True},
            metrics={"transformer": {"val_ndcg@10": 0.0}},
            item_ids=item_ids,
            item_vectors=weights["item_emb"][1:],
            item_popularity=np.asarray([1.0 / (1 + n) ** 0.8 for n in range(n_items)], dtype=np.float32),
            event_types=["view", "search", "add_to_cart", "favorite", "purchase", "return"],
            encoder_weights=weights,
            encoder_config={"dim": DIM, "heads": 2, "blocks": 2, "max_len": MAX_LEN, "ln_eps": 1e-6},
            index_kind="auto",
        )
        print(f"artifact: {n_items} items in {time.perf_counter() - t:.1f}s", flush=True)
    version = ModelVersion.objects.for_tenant(tenant).filter(artifact_path=name).first()
    if version is None:
        ModelVersion.objects.for_tenant(tenant).update(state=VersionState.RETIRED)
        version = ModelVersion.unscoped.create(
            tenant=tenant,
            algorithm="transformer",
            artifact_path=name,
            state=VersionState.ACTIVE,
            gate_passed=True,
        )
    elif version.state != VersionState.ACTIVE:
        ModelVersion.objects.for_tenant(tenant).update(state=VersionState.RETIRED)
        ModelVersion.unscoped.filter(pk=version.pk).update(state=VersionState.ACTIVE)
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cur:  # fresh bulk loads have no planner statistics yet
            cur.execute("ANALYZE")
    key = api_key_create(tenant=tenant, scopes=["read", "ingest"], name="bench").raw_key
    return key, user_ids


# --------------------------------------------------------------------------- server
def start_gunicorn(*, port: int, workers: int, threads: int, env: dict[str, str]) -> subprocess.Popen:
    cmd = [
        GUNICORN, "platform_core.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", str(workers),
        "-k", "gthread", "--threads", str(threads), "--keep-alive", "75", "--log-level", "warning",
        # One listening socket per worker (SO_REUSEPORT): the kernel spreads new connections
        # over the workers; with one shared socket the first worker to wake accepts, and
        # wrk's 32 keep-alive connections often all landed on one worker (half the throughput).
        "--reuse-port",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    for _ in range(300):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("gunicorn did not start")


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def warm(port: int, key: str, users: list[str], n: int = 200) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(n):
        conn.request("GET", f"/api/v1/users/{users[i % len(users)]}/recommendations?k=10",
                     headers={"Authorization": f"Api-Key {key}"})  # fmt: skip
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise SystemExit(f"warm-up failed: {r.status} {body[:300]!r}")


# --------------------------------------------------------------------------- (a) wrk
_LUA = """
local key = "%s"
local n = %d
math.randomseed(%d)
request = function()
  local path = "/api/v1/users/u" .. math.random(0, n - 1) .. "/recommendations?k=10%s"
  return wrk.format("GET", path, {["Authorization"] = "Api-Key " .. key})
end
"""


def wrk(url: str, *, connections: int, seconds: int, script: str | None = None) -> dict:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    lat = dict(re.findall(r"^\s+(50|90|99)%\s+([\d.]+\w+)", out, re.M))
    return {"rps": rps, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else "", "latency": lat, "raw": out}  # fmt: skip


# --------------------------------------------------------------------------- (b) open loop
def _open_loop(
    port: int, key: str, n_users: int, rate: float, seconds: float, conns: int, q: mp.Queue
) -> None:
    schedule = [i / rate for i in range(int(rate * seconds))]
    lock = threading.Lock()
    nxt = [0]
    lat: list[float] = []
    errors = [0]
    start = time.perf_counter() + 0.5

    def run() -> None:
        rng = random.Random(threading.get_ident())
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                if nxt[0] >= len(schedule):
                    return
                due = start + schedule[nxt[0]]
                nxt[0] += 1
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            conn.request("GET", f"/api/v1/users/u{rng.randrange(n_users)}/recommendations?k=10",
                         headers={"Authorization": f"Api-Key {key}"})  # fmt: skip
            r = conn.getresponse()
            r.read()
            done = time.perf_counter()
            with lock:
                lat.append(done - due)
                if r.status != 200:
                    errors[0] += 1

    threads = [threading.Thread(target=run) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    q.put({"latencies": lat, "errors": errors[0], "elapsed": elapsed})


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


# --------------------------------------------------------------------------- (d) freshness
def freshness(
    port: int, key: str, users: list[str], item_count: int, trials: int, readers: int = 4
) -> list[float]:
    """Seconds from an event's 201 until recommendations through *every* reader connection reflect it.

    The event goes through one keep-alive connection, the reads through
    ``readers`` others, which gunicorn's workers accepted independently, so
    the reads reach other processes than the one that took the event (their
    cached user state must be dropped by the database's notification). Each
    reader has served the user just before the event, so it holds the state.
    """
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
    writer = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(readers)]
    rng = random.Random(7)
    out: list[float] = []

    def scores(conn: http.client.HTTPConnection, user: str) -> list[float]:
        conn.request("GET", f"/api/v1/users/{user}/recommendations?k=10", headers=headers)
        r = conn.getresponse()
        return [i["score"] for i in json.loads(r.read())["items"]]

    for n in range(trials):
        user = rng.choice(users)
        before = [scores(c, user) for c in conns]
        event = {"event_id": f"fresh-{time.time_ns()}-{n}", "user_id": user, "item_id": f"i{rng.randrange(item_count)}",
                 "type": "view", "timestamp": dt.datetime.now(dt.UTC).isoformat()}  # fmt: skip
        writer.request("POST", "/api/v1/events", body=json.dumps({"events": [event]}), headers=headers)
        r = writer.getresponse()
        r.read()
        if r.status not in (200, 201):
            raise SystemExit(f"event refused: {r.status}")
        accepted = time.perf_counter()
        pending = set(range(readers))
        while pending:
            for i in list(pending):
                if scores(conns[i], user) != before[i]:
                    pending.discard(i)
            if time.perf_counter() - accepted > 10:
                break
        out.append(time.perf_counter() - accepted if not pending else float("inf"))
    return out


# --------------------------------------------------------------------------- stages
def stages(n: int = 200) -> dict:
    """In-process cost of each step of a recommendation (min and median over ``n`` calls), and RSS."""
    _django()
    import numpy as np
    from django.test import Client

    from platform_core.plugins.selectors import tenant_plugin_get
    from platform_core.serving import candidates as cand
    from platform_core.serving import selectors as sel
    from platform_core.serving.catalog_snapshot import catalog_snapshot_wait
    from platform_core.serving.explanations import leave_one_out
    from platform_core.serving.model_cache import serving_model_get
    from platform_core.serving.user_state import user_state_live
    from platform_core.tenancy.models import Tenant
    from platform_core.tenancy.services import api_key_create

    out: dict = {"rss_mb": {"django": round(rss_mb(os.getpid()), 1)}}
    tenant = Tenant.objects.get(slug=SLUG)
    plugin = tenant_plugin_get(tenant=tenant)
    model = serving_model_get(tenant=tenant)
    out["rss_mb"]["with_model"] = round(rss_mb(os.getpid()), 1)
    catalog_snapshot_wait(tenant_id=tenant.pk)  # built in a thread: measure lookups once it is in place
    out["rss_mb"]["with_catalog_snapshot"] = round(rss_mb(os.getpid()), 1)
    client = Client(HTTP_AUTHORIZATION=f"Api-Key {api_key_create(tenant=tenant, scopes=['read']).raw_key}")
    _, hist = cand.user_history_get(tenant=tenant, plugin=plugin, external_id="u1")
    seq = sel._user_sequence(history=hist, model=model, plugin=plugin)
    events = seq.events(hist)
    query = model.artifact.encoder.embed([e.item_id for e in events], [e.type for e in events])
    idx, _ = model.artifact.index.search(query, 40)
    ids = [model.artifact.item_ids[i] for i in idx]
    steps = {
        "user + history (1 query)": lambda i: cand.user_history_get(
            tenant=tenant, plugin=plugin, external_id=f"u{i % 500}"
        ),
        f"encoder embed ({len(events)} events)": lambda i: model.artifact.encoder.embed(
            [e.item_id for e in events], [e.type for e in events]
        ),
        f"{model.artifact.index.kind} index search k=40": lambda i: model.artifact.index.search(query, 40),
        "brute-force scan (for comparison)": lambda i: np.argpartition(-(model.vectors @ query), 40)[:40],
        "item attributes, 40 (process snapshot)": lambda i: cand.item_attributes_get(
            tenant=tenant, plugin=plugin, item_ids=ids
        ),
        "item attributes, 40 (one query, no snapshot)": lambda i: cand._active_item_attributes(
            tenant_id=tenant.pk, item_ids=ids
        ),
        "leave-one-out (explain=true)": lambda i: leave_one_out(
            encoder=model.artifact.encoder, sequence=events, max_len=model.artifact.encoder.max_len
        ),
        # u1000… are read once each (from the database); u0…u49 again and again (cached
        # user state and kept list where that cache is live, i.e. on PostgreSQL). "list
        # computed": each call asks for another k than the user's kept list (11, 10, 11, …).
        "recommendation_list (selector), user read from the database": lambda i: sel.recommendation_list(
            tenant=tenant, external_id=f"u{1000 + i}", k=10
        ),
        "recommendation_list (selector), cached user state, list computed": lambda i: sel.recommendation_list(
            tenant=tenant, external_id=f"u{i % 50}", k=11 - (i // 50) % 2
        ),
        "recommendation_list (selector), kept list": lambda i: sel.recommendation_list(
            tenant=tenant, external_id=f"u{i % 50}", k=10
        ),
        "GET recommendations (Django test client), user read from the database": lambda i: client.get(
            f"/api/v1/users/u{2000 + i}/recommendations?k=10"
        ),
        "GET recommendations (Django test client), kept list": lambda i: client.get(
            f"/api/v1/users/u{i % 50}/recommendations?k=10"
        ),
        "GET /healthz (Django test client)": lambda i: client.get("/healthz"),
    }
    out["user_state_cache_live"] = user_state_live(wait=10.0)
    for i in range(50):
        sel.recommendation_list(tenant=tenant, external_id=f"u{i}", k=10)
    out["stages_ms"] = {}
    for label, fn in steps.items():
        times = []
        for i in range(n):
            t = time.perf_counter()
            fn(i)
            times.append((time.perf_counter() - t) * 1000)
        out["stages_ms"][label] = {"min": round(min(times), 3), "p50": round(pct(times, 50), 3)}
    out["rss_mb"]["after"] = round(rss_mb(os.getpid()), 1)
    return out


# --------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--events-per-user", type=int, default=20)
    ap.add_argument("--port", type=int, default=8004)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument(
        "--warm-seconds", type=int, default=60,
        help="unmeasured recommendations load between the first pass and the steady state",
    )  # fmt: skip
    ap.add_argument("--rate", type=float, default=300.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--freshness-trials", type=int, default=50)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--stages", action="store_true", help="only the in-process cost of each step (no server)")
    args = ap.parse_args()
    if not args.stages and shutil.which("wrk") is None:
        raise SystemExit(
            "bench/serve.py needs wrk for (a): install it with `apt-get install -y wrk` "
            "(Debian/Ubuntu; `brew install wrk` on macOS), or run with --stages for the in-process figures."
        )

    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        from bench._setup import pg_database_ensure

        pg_database_ensure(url)
    key, users = setup_data(
        n_items=args.items, n_users=args.users, events_per_user=args.events_per_user, seed=1
    )
    if args.stages:
        result = stages()
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2))
        return
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="platform_core.settings",
        API_THROTTLE_RATE="100000000/min",
        # One BLAS thread per worker: more would fight the gunicorn workers for 2 cores (and cost memory).
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        # As scripts/run.sh: a fixed glibc mmap threshold, so freed large buffers (a catalog
        # snapshot's build) go back to the system instead of staying in the heap (≈ 10 MB a worker).
        MALLOC_MMAP_THRESHOLD_="131072",
        MALLOC_ARENA_MAX="2",  # as scripts/run.sh: the listener and loader threads get no heaps of their own
    )
    server = start_gunicorn(port=args.port, workers=args.workers, threads=args.threads, env=env)
    result: dict = {
        "items": args.items,
        "users": args.users,
        "workers": args.workers,
        "threads": args.threads,
    }
    try:
        pids = worker_pids(server.pid)
        for _ in range(args.workers):
            warm(args.port, key, users)
        base = f"http://127.0.0.1:{args.port}"
        tmp = tempfile.mkdtemp()
        script = Path(tmp) / "recs.lua"
        script.write_text(_LUA % (key, args.users, 1, ""))
        health = wrk(f"{base}/healthz", connections=args.connections, seconds=args.seconds)
        # Twice: the first pass starts with empty per-process user-state caches (each
        # worker meets most users for the first time), the second is the steady state.
        recs_first = wrk(f"{base}/", connections=args.connections, seconds=args.seconds, script=str(script))
        script_steady = Path(tmp) / "recs_steady.lua"  # another random sequence of users
        script_steady.write_text(_LUA % (key, args.users, 3, ""))
        if args.warm_seconds > 0:
            # Until each worker has met nearly every user (≈ 3 requests per user per worker), as a
            # server whose active users fit its cache is after a while; not measured.
            wrk(f"{base}/", connections=args.connections, seconds=args.warm_seconds, script=str(script))
        recs = wrk(f"{base}/", connections=args.connections, seconds=args.seconds, script=str(script_steady))
        script_x = Path(tmp) / "recs_explain.lua"
        script_x.write_text(_LUA % (key, args.users, 2, "&explain=true"))
        recs_x = wrk(f"{base}/", connections=args.connections, seconds=args.seconds, script=str(script_x))
        shutil.rmtree(tmp)
        result["saturation"] = {
            "healthz_rps": health["rps"], "recommendations_rps": recs["rps"],
            "ratio": round(recs["rps"] / health["rps"], 3),
            "recommendations_first_pass_rps": recs_first["rps"],
            "ratio_first_pass": round(recs_first["rps"] / health["rps"], 3),
            "recommendations_explain_rps": recs_x["rps"],
            "ratio_explain": round(recs_x["rps"] / health["rps"], 3),
            "non_2xx": health["non_2xx"] + recs_first["non_2xx"] + recs["non_2xx"] + recs_x["non_2xx"],
            "wrk_latency": {"healthz": health["latency"], "recommendations": recs["latency"],
                            "recommendations_explain": recs_x["latency"]},
        }  # fmt: skip
        print(health["raw"], recs_first["raw"], recs["raw"], recs_x["raw"], sep="\n", flush=True)
        q: mp.Queue = mp.get_context("spawn").Queue()
        client = mp.get_context("spawn").Process(
            target=_open_loop, args=(args.port, key, args.users, args.rate, args.seconds, 16, q)
        )
        client.start()
        res = q.get()
        client.join()
        lat_ms = [x * 1000 for x in res["latencies"]]
        result["open_loop"] = {
            "offered_rps": args.rate, "achieved_rps": round(len(lat_ms) / res["elapsed"], 1),
            "requests": len(lat_ms), "errors": res["errors"],
            "p50_ms": round(pct(lat_ms, 50), 2), "p90_ms": round(pct(lat_ms, 90), 2),
            "p99_ms": round(pct(lat_ms, 99), 2), "max_ms": round(max(lat_ms), 2),
        }  # fmt: skip
        result["worker_rss_mb"] = [round(rss_mb(p), 1) for p in pids]
        fresh = [x * 1000 for x in freshness(args.port, key, users, args.items, args.freshness_trials)]
        result["freshness_ms"] = {"trials": len(fresh), "p50": round(pct(fresh, 50), 2),
                                  "p95": round(pct(fresh, 95), 2), "max": round(max(fresh), 2)}  # fmt: skip
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
