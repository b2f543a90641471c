"""``manage.py train SLUG [--wait]``: start a training job and (optionally) follow it."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from platform_core.common.errors import ServiceError
from platform_core.jobs.models import FINAL_STATUSES, JobKind, JobStatus, TrainingJob
from platform_core.tenancy.models import Tenant


def job_follow(
    command: BaseCommand, job: TrainingJob, *, poll: float = 1.0, timeout: float | None = None
) -> TrainingJob:
    """Print the job's progress as it changes until it finishes."""
    last = None
    started = time.monotonic()
    while True:
        job.refresh_from_db()
        p = job.progress or {}
        line = f"[job {job.pk}] {job.status}"
        if p:
            line += f" {p.get('stage') or ''}"
            if p.get("epochs"):
                line += f" {p.get('epoch')}/{p.get('epochs')}"
            if p.get("loss") is not None:
                line += f" loss={p['loss']:.4f}"
            if p.get("metric") is not None:
                line += f" metric={p['metric']:.4f}"
            if p.get("eta_seconds") is not None:
                line += f" eta={int(p['eta_seconds'])}s"
            if p.get("message"):
                line += f" — {p['message']}"
        if line != last:
            command.stdout.write(line)
            last = line
        if job.status in FINAL_STATUSES:
            return job
        if timeout is not None and time.monotonic() - started > timeout:
            raise CommandError(f"job {job.pk} still {job.status} after {timeout:.0f}s")
        time.sleep(poll)


def job_report(command: BaseCommand, job: TrainingJob) -> None:
    """Print the outcome; CommandError (exit 1) unless the job succeeded."""
    if job.status != JobStatus.SUCCEEDED:
        raise CommandError(f"job {job.pk} {job.status}: {job.error.splitlines()[0] if job.error else ''}")
    result = job.result or {}
    if job.kind == JobKind.TRAIN:
        state = "promoted (active)" if result.get("promoted") else "kept as candidate"
        command.stdout.write(
            command.style.SUCCESS(
                f"job {job.pk} succeeded: model version {result.get('model_version')} {state}; gate: {result.get('gate')}"
            )
        )
    else:
        command.stdout.write(command.style.SUCCESS(f"job {job.pk} succeeded: {result}"))


class Command(BaseCommand):
    help = "Train a tenant's model on a Celery worker (or --inline here); --wait follows it and fails if it fails."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--wait", action="store_true", help="follow progress; exit 1 if the job fails")
        parser.add_argument(
            "--inline", action="store_true", help="run in this process instead of on a worker"
        )
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--max-minutes", type=float)
        parser.add_argument("--timeout", type=float, help="give up waiting after this many seconds")

    def handle(self, *args: Any, **opts: Any) -> None:
        from platform_core.jobs.services import training_job_request

        tenant = Tenant.objects.filter(slug=opts["slug"]).first()
        if tenant is None:
            raise CommandError(f"no tenant with slug {opts['slug']!r}")
        config = {
            k: v
            for k, v in (("epochs", opts["epochs"]), ("max_minutes", opts["max_minutes"]))
            if v is not None
        }
        try:
            job = training_job_request(
                tenant=tenant, config=config, requested_by="manage.py train", enqueue=not opts["inline"]
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"job {job.pk} queued for tenant {tenant.slug}")
        if opts["inline"]:
            from platform_core.jobs.training import training_job_run

            training_job_run(job_id=job.pk, worker="inline")
            job = job_follow(self, job)
            job_report(self, job)
        elif opts["wait"]:
            job = job_follow(self, job, timeout=opts["timeout"])
            job_report(self, job)
