"""Training benchmark: time from ``train`` to an active version per demo tenant, and the worker's peak RSS.

For each tenant (default: the six ``demo-*`` tenants of ``bootstrap_demo``) it
requests a training exactly as ``manage.py train SLUG`` does, waits for the job
on the running Celery worker(s), and reports: seconds from the request to the
job's end and to the version being active (if the gate promoted it), the
training's own duration, the primary and popularity validation metrics, and
the peak RSS of the worker process that trained (``ru_maxrss`` of the pool
child, reported by mlcore in the job's result).

    # a worker must be running on the same VAR_DIR / broker:
    VAR_DIR=/tmp/var-jobs .venv/bin/celery -A platform_core worker -Q default,ml,profiles -c 1 &
    VAR_DIR=/tmp/var-jobs .venv/bin/python bench/train.py --max-minutes 2 --json bench/results/train.json

``--report`` only summarises the latest finished training job of each tenant
(e.g. the ones ``make run`` started) without starting new ones.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
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
    parser.add_argument("slugs", nargs="*", help="tenants (default: every demo-* tenant)")
    parser.add_argument("--max-minutes", type=float, default=2.0)
    parser.add_argument("--report", action="store_true", help="summarise the latest training jobs only")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import django

    django.setup()
    from platform_core.jobs.models import FINAL_STATUSES, JobKind, TrainingJob
    from platform_core.jobs.services import training_job_request
    from platform_core.tenancy.models import Tenant

    tenants = (
        list(Tenant.objects.filter(slug__in=args.slugs))
        if args.slugs
        else list(Tenant.objects.filter(slug__startswith="demo-").order_by("slug"))
    )
    rows = []
    for tenant in tenants:
        if args.report:
            job = (
                TrainingJob.objects.for_tenant(tenant)
                .filter(kind=JobKind.TRAIN, status__in=FINAL_STATUSES)
                .order_by("-created_at")
                .first()
            )
            if job is None:
                continue
        else:
            job = training_job_request(
                tenant=tenant, config={"max_minutes": args.max_minutes}, requested_by="bench/train.py"
            )
            deadline = time.monotonic() + args.timeout
            while job.status not in FINAL_STATUSES and time.monotonic() < deadline:
                time.sleep(1)
                job.refresh_from_db()
        rows.append(_row(tenant, job))
        print(_line(rows[-1]), flush=True)
    result = {
        "benchmark": "train",
        "command": "VAR_DIR=/tmp/var-jobs .venv/bin/python bench/train.py " + " ".join(sys.argv[1:]),
        "cpus": os.cpu_count(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "tenants": rows,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def _row(tenant, job) -> dict:
    from platform_core.jobs.models import ModelVersion

    r = job.result or {}
    version = ModelVersion.objects.for_tenant(tenant).filter(job=job).first()
    metrics = r.get("metrics") or {}
    metric = r.get("metric") or "val_ndcg@10"
    return {
        "tenant": tenant.slug,
        "status": job.status,
        "request_to_end_s": round((job.finished_at - job.created_at).total_seconds(), 1)
        if job.finished_at
        else None,
        "queue_wait_s": round((job.started_at - job.created_at).total_seconds(), 1)
        if job.started_at
        else None,
        "train_s": round(job.duration_seconds, 1) if job.duration_seconds is not None else None,
        "request_to_active_s": round((version.activated_at - job.created_at).total_seconds(), 1)
        if version and version.activated_at
        else None,
        "promoted": bool(r.get("promoted")),
        "metric": metric,
        "primary": (metrics.get("transformer") or {}).get(metric),
        "popularity": (metrics.get("popularity") or {}).get(metric),
        "itemknn": (metrics.get("itemknn") or {}).get(metric),
        "events": r.get("n_events"),
        "users": r.get("n_users"),
        "items": r.get("n_items"),
        "worker_peak_rss_mb": r.get("peak_rss_mb"),
        "error": (job.error or "").splitlines()[0] if job.error else "",
    }


def _line(row: dict) -> str:
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    return (
        f"{row['tenant']:<18} {row['status']:<9} train {row['train_s']}s, request→active {row['request_to_active_s']}s, "
        f"{row['metric']} transformer {fmt(row['primary'])} popularity {fmt(row['popularity'])}, "
        f"peak RSS {row['worker_peak_rss_mb']} MB {row['error']}"
    )


if __name__ == "__main__":
    main()
