#!/usr/bin/env bash
# `make run`: the web server on 127.0.0.1:8000, real Celery workers and beat on
# the configured broker (the embedded filesystem broker by default), and the six
# demo tenants being trained. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
# gunicorn runs with --reuse-port (below), which would let it share a port already in use.
if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
  echo "port $PORT on $HOST is already in use: stop that server or set PORT" >&2
  exit 1
fi

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping…"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

# Two workers: training (queue "ml") in a child process that is replaced after
# each task, so its memory goes back after every training; housekeeping and
# profile jobs (queues "default", "profiles") never wait behind a training.
# The second one runs 2 prefork children (one per core): a profiles job is split
# into user ranges built in parallel, and nothing on these queues imports
# TensorFlow, so forking is safe (tests/platform_core/profiles/test_partitions.py).
.venv/bin/celery -A platform_core worker -Q ml --concurrency 1 --max-tasks-per-child 1 \
  --loglevel INFO --hostname "ml@%h" &
pids+=($!)
.venv/bin/celery -A platform_core worker -Q default,profiles --concurrency "${WORKER_CONCURRENCY:-2}" \
  --loglevel INFO --hostname "worker@%h" &
pids+=($!)
.venv/bin/celery -A platform_core beat --loglevel INFO &
pids+=($!)

# Demo tenants (one per domain), their keys, and their training and profiles.
if $PY manage.py help bootstrap_demo >/dev/null 2>&1; then
  $PY manage.py bootstrap_demo
fi

echo "web: http://$HOST:$PORT/   console: http://$HOST:$PORT/admin/   docs: http://$HOST:$PORT/api/docs/"
# gthread workers keep client connections alive; one request thread per worker, because threads
# of one process queue on the GIL (at 300 req/s p99 fell from 53-67 ms with 4 threads to 12 ms;
# docs/benchmarks.md "serving"); one BLAS thread each; a fixed glibc mmap threshold returns freed
# large buffers and at most two malloc arenas keep a worker's heap compact (docs/serving.md,
# "Memory"). --reuse-port gives each worker its own listening socket, so the
# kernel spreads connections over the workers (with one shared socket, long-lived keep-alive
# connections could all land on one worker); it also lets a second server bind the same port
# silently, hence the check at the top.
MALLOC_MMAP_THRESHOLD_=131072 MALLOC_ARENA_MAX=2 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/gunicorn platform_core.wsgi:application \
  --bind "$HOST:$PORT" --workers "${WEB_WORKERS:-2}" -k gthread --threads "${WEB_THREADS:-1}" --keep-alive 75 \
  --reuse-port --access-logfile - &
pids+=($!)
wait -n "${pids[@]}"
