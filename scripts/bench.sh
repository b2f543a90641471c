#!/usr/bin/env bash
# `make bench`: the quick benchmarks (a few minutes on 2 cores). The full runs
# whose figures are in docs/benchmarks.md take longer; their commands are there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export VAR_DIR=${VAR_DIR:-/tmp/platform-bench}
mkdir -p bench/results

echo "== domain plugins: sample data, rerank, profile features"
$PY -m bench.domains

echo "== serving: cost of each step in process (100k items)"
$PY bench/serve.py --stages --json bench/results/serve-stages.json
if ! command -v wrk >/dev/null 2>&1; then
  # The full serving run (docs/benchmarks.md "serving": saturation, open loop, RSS, freshness) drives gunicorn with wrk.
  echo "note: bench/serve.py without --stages needs wrk: apt-get install -y wrk (Debian/Ubuntu)"
fi

echo "== REST ingestion on SQLite (gunicorn, keep-alive clients)"
$PY bench/ingest_rest.py --sqlite --batches 10

echo "== profiles: build_profiles for 10,000 users"
$PY bench/profiles.py --users 10000 --json bench/results/profiles.json

echo "== mlcore: all models on a generated interactions file"
$PY - <<'PYEOF'
import gzip, random
rng = random.Random(0)
with gzip.open("bench/results/synthetic.csv.gz", "wt") as f:
    f.write("user_id,item_id,timestamp\n")
    for u in range(2000):
        start = rng.randrange(300)
        for t in range(rng.randrange(5, 30)):
            f.write(f"u{u},i{(start + t * 7 + rng.randrange(3)) % 500},{t}\n")
PYEOF
$PY -m mlcore.bench --interactions bench/results/synthetic.csv.gz --max-minutes 3 --json bench/results/mlcore-synthetic.json
