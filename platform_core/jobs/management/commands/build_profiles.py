"""``manage.py build_profiles SLUG``: rebuild every profile of a tenant (here, or --queue on the workers)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from platform_core.common.errors import ServiceError
from platform_core.jobs.management.commands.train import job_follow, job_report
from platform_core.jobs.models import JobKind
from platform_core.tenancy.models import Tenant


class Command(BaseCommand):
    help = "Rebuild a tenant's user profiles (recorded as a profiles job); --queue runs it on a worker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--queue", action="store_true", help="enqueue on the 'profiles' queue instead")
        parser.add_argument("--wait", action="store_true", help="with --queue: follow the job")

    def handle(self, *args: Any, **opts: Any) -> None:
        from platform_core.jobs.services import training_job_request

        tenant = Tenant.objects.filter(slug=opts["slug"]).first()
        if tenant is None:
            raise CommandError(f"no tenant with slug {opts['slug']!r}")
        try:
            job = training_job_request(
                tenant=tenant,
                kind=JobKind.PROFILES,
                requested_by="manage.py build_profiles",
                enqueue=opts["queue"],
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        if opts["queue"]:
            self.stdout.write(f"profiles job {job.pk} queued for tenant {tenant.slug}")
            if opts["wait"]:
                job_report(self, job_follow(self, job))
            return
        from platform_core.profiles.partitions import profile_job_run_inline

        # In this process, its user ranges one after another; --queue spreads them over the workers.
        job_report(self, profile_job_run_inline(job_id=job.pk, worker="inline"))
