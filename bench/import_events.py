"""``import_events`` of 1,000,000 generated rows into PostgreSQL vs a raw COPY of the same rows.

Measured in one run, on one database:
  * import: ``manage.py import_events`` (a child process; its peak RSS from wait4).
  * baseline "same rows": the rows the import wrote (``COPY (SELECT … FROM events_event) TO``)
    COPY'd into an empty table shaped like ``events_event`` (same columns, indexes and
    unique constraint) — the database work any importer must do.
  * baseline "same rows + FKs": the same, with the three deferred foreign keys
    ``events_event`` had (tenant, user, item) checked at commit, until migration
    ``events.0003`` replaced them by set-based locks and delete triggers.
  * baseline "raw file": the CSV file itself COPY'd into an empty table of its columns
    (no indexes): the floor for getting the bytes into PostgreSQL at all.
Ratio = baseline seconds / import seconds (1.0 = as fast as COPY).

    nice -n 5 .venv/bin/python bench/import_events.py --rows 1000000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._setup import PY, ROOT, environment, manage, pg_database_recreate  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def generate(path: Path, rows: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    purchase = rng.random(rows) < 0.1
    ts = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 60 * 86400, rows), unit="s")
    amount = np.round(rng.uniform(5, 300, rows), 2)
    frame = pd.DataFrame(
        {
            "event_id": [f"ev-{n}" for n in range(rows)],
            "user_id": "u" + pd.Series(rng.integers(0, 50_000, rows)).astype(str),
            "item_id": "i" + pd.Series(rng.integers(0, 10_000, rows)).astype(str),
            "type": np.where(purchase, "purchase", "view"),
            "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "value": np.where(purchase, amount.astype(str), ""),
            "context_amount": np.where(purchase, amount.astype(str), ""),
            "context_quantity": np.where(purchase, rng.integers(1, 4, rows).astype(str), ""),
        }
    )
    frame.to_csv(path, index=False)


def timed_child(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in bytes, stdout of a child process."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {text[-2000:]}")
    return seconds, usage.ru_maxrss * 1024, text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/foundation_bench_import")
    args = parser.parse_args()
    import psycopg2

    work = Path(tempfile.mkdtemp(prefix="bench-import-"))
    csv_path = work / "events.csv"
    # In a child process: Linux carries a process's peak RSS across fork+exec,
    # so a parent holding the generated frame would inflate the import's ru_maxrss.
    subprocess.run(
        [
            PY,
            "-c",
            f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bench.import_events import generate; "
            f"from pathlib import Path; generate(Path({str(csv_path)!r}), {args.rows})",
        ],
        check=True,
    )
    pg_database_recreate(args.pg_url)
    env = environment(database_url=args.pg_url, var_dir=str(work / "var"))
    manage(env, "migrate", "--noinput")
    manage(env, "create_tenant", "bench", "--domain", "ecommerce")
    cmd = [PY, "manage.py", "import_events", "bench", str(csv_path), "--no-progress", "--json"]
    import_s, rss, out = timed_child(cmd, env)
    result = json.loads(out.strip().splitlines()[-1])
    again_s, _, out2 = timed_child(cmd, env)
    again = json.loads(out2.strip().splitlines()[-1])

    conn = psycopg2.connect(args.pg_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        # Baseline 1: the same rows into an empty events-shaped table: same columns, indexes and
        # unique constraint (LIKE … INCLUDING ALL), and (1b) also the same three foreign keys,
        # deferred like Django's, in one transaction timed to its commit (when they are checked).
        buf = io.StringIO()
        cur.copy_expert(
            "COPY (SELECT tenant_id, event_id, user_id, item_id, type, timestamp, value, context, received_at "
            "FROM events_event) TO STDOUT",
            buf,
        )
        columns = "tenant_id, event_id, user_id, item_id, type, timestamp, value, context, received_at"
        baselines = {}
        for label, with_fks in (("same_rows", False), ("same_rows_fks", True)):
            cur.execute("CREATE TABLE bench_copy_events (LIKE events_event INCLUDING ALL)")
            if with_fks:
                for col, target in (
                    ("tenant_id", "tenancy_tenant"),
                    ("user_id", "catalog_enduser"),
                    ("item_id", "catalog_item"),
                ):
                    cur.execute(
                        f"ALTER TABLE bench_copy_events ADD FOREIGN KEY ({col}) REFERENCES {target} (id) "
                        "DEFERRABLE INITIALLY DEFERRED"
                    )
            buf.seek(0)
            t0 = time.perf_counter()
            cur.execute("BEGIN")
            cur.copy_expert(f"COPY bench_copy_events ({columns}) FROM STDIN", buf)
            cur.execute("COMMIT")
            baselines[label] = time.perf_counter() - t0
            cur.execute("DROP TABLE bench_copy_events")
        same_rows_s = baselines["same_rows"]
        same_rows_fks_s = baselines["same_rows_fks"]
        # Baseline 2: the raw file into an empty table of its columns, no indexes.
        cur.execute(
            "CREATE TABLE bench_copy_raw (event_id text, user_id text, item_id text, type text, "
            "timestamp timestamptz, value double precision, context_amount double precision, context_quantity int)"
        )
        t0 = time.perf_counter()
        with open(csv_path) as fh:
            cur.copy_expert("COPY bench_copy_raw FROM STDIN WITH (FORMAT csv, HEADER true)", fh)
        raw_s = time.perf_counter() - t0
        cur.execute("DROP TABLE bench_copy_raw")
    conn.close()
    figures = {
        "rows": args.rows,
        "import_seconds": round(import_s, 2),
        "import_rows_per_s": round(args.rows / import_s),
        "import_peak_rss_mb": round(rss / 2**20),
        "result": result,
        "second_run_seconds": round(again_s, 2),
        "second_run": {k: again[k] for k in ("inserted", "duplicates", "rejected")},
        "copy_same_rows_seconds": round(same_rows_s, 2),
        "copy_same_rows_fks_seconds": round(same_rows_fks_s, 2),
        "copy_raw_file_seconds": round(raw_s, 2),
        "ratio_vs_copy_same_rows": round(same_rows_s / import_s, 2),
        "ratio_vs_copy_same_rows_fks": round(same_rows_fks_s / import_s, 2),
        "ratio_vs_copy_raw_file": round(raw_s / import_s, 2),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "import_events.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    for p in sorted(work.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    work.rmdir()


if __name__ == "__main__":
    main()
