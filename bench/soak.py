"""Soak: mixed traffic at a fraction of measured saturation for a long run, with one retrain in the middle.

What it does, in one run on PostgreSQL (a broker and a shared cache as configured, Redis in the
documented command):

1. set-up: a synthetic ecommerce tenant (``bench-soak``: catalog, users, Zipf-like events and an
   active synthetic artifact, as ``bench/serve.py`` builds them, smaller so a retrain takes minutes);
2. starts gunicorn (2 workers, as ``make run``) and real Celery workers (``ml``; ``default`` and
   ``profiles``) and beat, as ``scripts/run.sh`` does;
3. saturation: a closed loop of the mix below over ``--connections`` keep-alive connections for
   ``--saturation-seconds``; the completed requests per second;
4. the soak: an open loop at ``--load`` × saturation for ``--minutes`` (latency measured from each
   request's *scheduled* send time, so a stalled server cannot hide queueing), with the mix
   ≈ 30 % ingestion (``POST /events``, one event), 60 % recommendations, 10 % the rest (similar
   items, popular, the profile, the user, feedback on a served list); one retrain is requested
   through ``POST /models/train`` at the half-way mark and followed to its end;
5. every ``--sample-seconds`` the RSS of each web worker (``/proc/<pid>/status``).

Goals (issue #11): no errors (every answer 2xx), web RSS growth ≤ 5 % between the end of the
warm-up and the end, p99 stable (per window, reported). Exit status 1 when a goal is missed.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/soak CELERY_BROKER_URL=redis://127.0.0.1:6379/9 \\
    CACHE_URL=redis://127.0.0.1:6379/10 VAR_DIR=/tmp/var-soak \\
        .venv/bin/python bench/soak.py --json bench/results/soak.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import serve  # noqa: E402

CELERY = str(ROOT / ".venv" / "bin" / "celery")
# (kind, share): ≈ 30 % ingestion, 60 % recommendations, 10 % the rest.
MIX = [
    ("ingest", 0.30),
    ("recommend", 0.60),
    ("similar", 0.03),
    ("popular", 0.02),
    ("profile", 0.02),
    ("user", 0.015),
    ("feedback", 0.015),
]


# --------------------------------------------------------------------------- traffic
class Traffic:
    """One keep-alive connection's requests of the mix; remembers a served list for feedback."""

    def __init__(self, *, port: int, key: str, n_users: int, n_items: int, seed: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
        self.rng = random.Random(seed)
        self.seed = seed
        self.n_users, self.n_items = n_users, n_items
        self.last_list: tuple[str, str] | None = None
        self.sent = 0
        kinds, weights = zip(*MIX, strict=True)
        self.kinds, self.cum = kinds, [sum(weights[: i + 1]) for i in range(len(weights))]

    def _pick(self) -> str:
        x = self.rng.random() * self.cum[-1]
        return next(k for k, c in zip(self.kinds, self.cum, strict=True) if x <= c)

    def _call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        payload = json.dumps(body) if body is not None else None
        try:
            self.conn.request(method, path, body=payload, headers=self.headers)
            r = self.conn.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()  # a new connection on the next request
            return 0, b""

    def one(self) -> tuple[str, int]:
        """Send one request of the mix; return its kind and status (0 = connection error)."""
        kind = self._pick()
        user = f"u{self.rng.randrange(self.n_users)}"
        item = f"i{self.rng.randrange(self.n_items)}"
        self.sent += 1
        if kind == "feedback" and self.last_list is None:
            kind = "recommend"
        if kind == "ingest":
            event = {
                "event_id": f"soak-{self.seed}-{self.sent}-{time.time_ns()}",
                "user_id": user,
                "item_id": item,
                "type": "purchase" if self.rng.random() < 0.05 else "view",
                "timestamp": dt.datetime.now(dt.UTC).isoformat(),
            }
            status, _ = self._call("POST", "/api/v1/events", {"events": [event]})
        elif kind == "recommend":
            status, body = self._call("GET", f"/api/v1/users/{user}/recommendations?k=10")
            if status == 200:
                data = json.loads(body)
                if data.get("items"):
                    self.last_list = (data["recommendation_id"], data["items"][0]["item_id"])
        elif kind == "similar":
            status, _ = self._call("GET", f"/api/v1/items/{item}/similar?k=10")
        elif kind == "popular":
            status, _ = self._call("GET", "/api/v1/popular?k=10&window=30d")
        elif kind == "profile":
            status, _ = self._call("GET", f"/api/v1/users/{user}/profile")
            status = 200 if status == 404 else status  # no profile built yet is a valid answer
        elif kind == "user":
            status, _ = self._call("GET", f"/api/v1/users/{user}")
        else:
            rec_id, fb_item = self.last_list
            status, _ = self._call(
                "POST",
                "/api/v1/feedback",
                {"recommendation_id": rec_id, "item_id": fb_item, "action": "click"},
            )
        return kind, status


def _closed_loop(port: int, key: str, n_users: int, n_items: int, seconds: float, conns: int,
                 seed: int, q: mp.Queue) -> None:  # fmt: skip
    done = [0]
    errors: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def run(i: int) -> None:
        t = Traffic(port=port, key=key, n_users=n_users, n_items=n_items, seed=seed * 1000 + i)
        while time.perf_counter() < stop:
            kind, status = t.one()
            with lock:
                done[0] += 1
                if not 200 <= status < 300:
                    errors[f"{kind} {status}"] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(conns)]
    start = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    q.put({"done": done[0], "elapsed": time.perf_counter() - start, "errors": dict(errors)})


def _open_loop(port: int, key: str, n_users: int, n_items: int, rate: float, seconds: float,
               conns: int, seed: int, t0: float, q: mp.Queue) -> None:  # fmt: skip
    """Send on a fixed schedule; latencies (ms) and errors per minute from ``t0``."""
    n = int(rate * seconds)
    lock = threading.Lock()
    nxt = [0]
    lat: dict[int, list[float]] = defaultdict(list)
    errors: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def run(i: int) -> None:
        t = Traffic(port=port, key=key, n_users=n_users, n_items=n_items, seed=seed * 1000 + i)
        while True:
            with lock:
                if nxt[0] >= n:
                    return
                due = t0 + nxt[0] / rate
                nxt[0] += 1
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            kind, status = t.one()
            took = (time.time() - due) * 1000
            minute = int((due - t0) // 60)
            with lock:
                lat[minute].append(took)
                if not 200 <= status < 300:
                    errors[minute][f"{kind} {status}"] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(conns)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    q.put({"latencies": dict(lat), "errors": {m: dict(e) for m, e in errors.items()}})


# --------------------------------------------------------------------------- processes
def start_workers(env: dict[str, str], logdir: Path) -> list[subprocess.Popen]:
    """The ml worker, the default/profiles worker and beat, as scripts/run.sh starts them."""
    cmds = [
        [CELERY, "-A", "platform_core", "worker", "-Q", "ml", "--concurrency", "1",
         "--max-tasks-per-child", "1", "--hostname", "soak-ml@%h", "--loglevel", "INFO"],
        [CELERY, "-A", "platform_core", "worker", "-Q", "default,profiles", "--concurrency", "1",
         "--hostname", "soak-worker@%h", "--loglevel", "INFO"],
        [CELERY, "-A", "platform_core", "beat", "--loglevel", "INFO",
         "-s", str(logdir / "beat-schedule")],
    ]  # fmt: skip
    procs = []
    for i, cmd in enumerate(cmds):
        log = open(logdir / f"celery-{i}.log", "w")  # noqa: SIM115 - lives as long as the process
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))  # fmt: skip
    return procs


def _api(port: int, key: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = conn.getresponse()
    raw = r.read()
    return r.status, json.loads(raw) if raw else {}


def follow_retrain(port: int, admin_key: str, at: float, out: dict) -> None:
    """At ``at`` (epoch seconds) request a retrain, then poll the job until it ends."""
    time.sleep(max(0.0, at - time.time()))
    _, before = _api(port, admin_key, "GET", "/api/v1/models")
    status, job = _api(port, admin_key, "POST", "/api/v1/models/train", {"config": {"max_minutes": 3}})
    out.update(requested_at=time.time(), request_status=status, active_before=before.get("active_version_id"))
    if status != 202:
        out["error"] = job
        return
    while True:
        time.sleep(5)
        _, job = _api(port, admin_key, "GET", f"/api/v1/jobs/{job['job_id']}")
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
    _, after = _api(port, admin_key, "GET", "/api/v1/models")
    out.update(finished_at=time.time(), status=job["status"], duration_seconds=job["duration_seconds"],
               error=job["error"], gate=job["result"].get("gate", ""))  # fmt: skip
    newest = after["results"][0]["version_id"] if after.get("results") else None
    if job["status"] == "succeeded" and newest is not None and newest != after.get("active_version_id"):
        # The synthetic events have no structure to learn, so the gate may keep the old version; the
        # soak is about the swap under traffic, so promote by hand (the console's action) and say so.
        status, _ = _api(port, admin_key, "POST", f"/api/v1/models/{newest}/promote")
        out.update(promoted_by_hand=status == 200, promote_status=status)
        _, after = _api(port, admin_key, "GET", "/api/v1/models")
    out["active_after"] = after.get("active_version_id")


def _rss(pids: list[int]) -> list[float]:
    """Each web worker's RSS in MB (NaN for one that is gone: a restarted worker is a finding)."""
    out = []
    for pid in pids:
        try:
            out.append(serve.rss_mb(pid))
        except OSError:
            out.append(float("nan"))
    return out


# --------------------------------------------------------------------------- report
def summarise(res: list[dict], rss: list[tuple[float, list[float]]], args: argparse.Namespace,
              t0: float) -> dict:  # fmt: skip
    lat: dict[int, list[float]] = defaultdict(list)
    errors: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in res:
        for m, v in r["latencies"].items():
            lat[int(m)].extend(v)
        for m, e in r["errors"].items():
            for k, c in e.items():
                errors[int(m)][k] += c
    minutes = []
    for m in sorted(lat):
        v = lat[m]
        minutes.append({"minute": m, "requests": len(v), "rps": round(len(v) / 60, 1),
                        "p50_ms": round(serve.pct(v, 50), 2), "p99_ms": round(serve.pct(v, 99), 2),
                        "errors": dict(errors.get(m, {}))})  # fmt: skip
    windows = []
    span = max(1, args.window_minutes)
    for w in range(0, args.minutes, span):
        v = [x for m in range(w, w + span) for x in lat.get(m, [])]
        if v:
            windows.append({"minutes": f"{w}-{w + span}", "p50_ms": round(serve.pct(v, 50), 2),
                            "p99_ms": round(serve.pct(v, 99), 2)})  # fmt: skip
    after_warm = [s for s in rss if s[0] - t0 >= args.warmup_minutes * 60]
    start_rss = sum(after_warm[0][1]) if after_warm else float("nan")
    end_rss = sum(rss[-1][1]) if rss else float("nan")
    n_errors = sum(sum(e.values()) for e in errors.values())
    measured = [w["p99_ms"] for w in windows[1:]] or [w["p99_ms"] for w in windows]
    return {
        "requests": sum(len(v) for v in lat.values()),
        "errors": n_errors,
        "errors_by_kind": {k: c for e in errors.values() for k, c in e.items()},
        "rss_mb_after_warmup": round(start_rss, 1),
        "rss_mb_end": round(end_rss, 1),
        "rss_growth_pct": round(100 * (end_rss - start_rss) / start_rss, 2),
        "p99_windows_ms": windows,
        "p99_max_over_min_after_warmup": round(max(measured) / min(measured), 2) if measured else None,
        "minutes": minutes,
        "rss_samples": [(round(t - t0, 1), [round(x, 1) for x in v]) for t, v in rss],
    }


def main() -> None:  # noqa: PLR0915 - one straight run: set-up, saturation, soak, report
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=int, default=30)
    ap.add_argument("--warmup-minutes", type=int, default=5)
    ap.add_argument("--window-minutes", type=int, default=5, help="p99 is reported per window")
    ap.add_argument("--load", type=float, default=0.7, help="fraction of the measured saturation")
    ap.add_argument("--saturation-seconds", type=int, default=30)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--clients", type=int, default=2, help="client processes")
    ap.add_argument("--items", type=int, default=5_000)
    ap.add_argument("--users", type=int, default=3_000)
    ap.add_argument("--events-per-user", type=int, default=20)
    ap.add_argument("--port", type=int, default=8431)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sample-seconds", type=int, default=15)
    ap.add_argument("--no-retrain", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit("bench/soak.py runs on PostgreSQL: set DATABASE_URL (see the docstring)")
    from bench._setup import pg_database_ensure

    pg_database_ensure(url)
    serve.SLUG = "bench-soak"
    key, _ = serve.setup_data(
        n_items=args.items, n_users=args.users, events_per_user=args.events_per_user, seed=5
    )
    from platform_core.tenancy.models import Tenant
    from platform_core.tenancy.services import api_key_create

    admin_key = api_key_create(
        tenant=Tenant.objects.get(slug=serve.SLUG), scopes=["admin"], name="soak"
    ).raw_key
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="platform_core.settings",
               API_THROTTLE_RATE="100000000/min", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MALLOC_MMAP_THRESHOLD_="131072", MALLOC_ARENA_MAX="2")  # fmt: skip
    logdir = Path(tempfile.mkdtemp(prefix="soak-"))
    workers = start_workers(env, logdir)
    server = serve.start_gunicorn(port=args.port, workers=args.workers, threads=1, env=env)
    result: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "logs": str(logdir)}
    ctx = mp.get_context("spawn")
    try:
        pids = serve.worker_pids(server.pid)
        for _ in range(args.workers):
            serve.warm(args.port, key, [f"u{n}" for n in range(args.users)])
        q: mp.Queue = ctx.Queue()
        per = max(1, args.connections // args.clients)
        procs = [ctx.Process(target=_closed_loop, args=(args.port, key, args.users, args.items,
                                                        args.saturation_seconds, per, c + 1, q))
                 for c in range(args.clients)]  # fmt: skip
        for p in procs:
            p.start()
        sat = [q.get() for _ in procs]
        for p in procs:
            p.join()
        sat_rps = sum(s["done"] / s["elapsed"] for s in sat)
        rate = sat_rps * args.load
        result["saturation"] = {"rps": round(sat_rps, 1), "offered_rps": round(rate, 1),
                                "errors": [s["errors"] for s in sat]}  # fmt: skip
        print(f"saturation {sat_rps:.0f} req/s; soak at {rate:.0f} req/s for {args.minutes} min", flush=True)
        t0 = time.time() + 2
        seconds = args.minutes * 60
        procs = [ctx.Process(target=_open_loop, args=(args.port, key, args.users, args.items,
                                                      rate / args.clients, seconds, per, 100 + c, t0, q))
                 for c in range(args.clients)]  # fmt: skip
        for p in procs:
            p.start()
        retrain: dict = {}
        follower = None
        if not args.no_retrain:
            follower = threading.Thread(
                target=follow_retrain, args=(args.port, admin_key, t0 + seconds / 2, retrain), daemon=True
            )
            follower.start()
        rss: list[tuple[float, list[float]]] = []
        while any(p.is_alive() for p in procs) and q.empty():
            rss.append((time.time(), _rss(pids)))
            print(f"t+{time.time() - t0:5.0f}s web RSS {rss[-1][1]} MB", flush=True)
            time.sleep(args.sample_seconds)
        res = [q.get() for _ in procs]
        rss.append((time.time(), _rss(pids)))
        for p in procs:
            p.join()
        if follower is not None:
            follower.join(timeout=600)
        result["worker_pids_unchanged"] = sorted(serve.worker_pids(server.pid)) == sorted(pids)
        result["retrain"] = {k: (round(v - t0, 1) if k.endswith("_at") else v) for k, v in retrain.items()}
        result.update(summarise(res, rss, args, t0))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        for w in workers:
            os.killpg(w.pid, signal.SIGTERM)
        server.wait(30)
        for w in workers:
            w.wait(60)
    ok = (result["errors"] == 0 and result["rss_growth_pct"] <= 5 and result["worker_pids_unchanged"]
          and (args.no_retrain or result["retrain"].get("status") == "succeeded"))  # fmt: skip
    result["goals_met"] = ok
    brief = {k: v for k, v in result.items() if k not in ("minutes", "rss_samples")}
    print(json.dumps(brief, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
