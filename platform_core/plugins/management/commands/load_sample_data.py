"""``manage.py load_sample_data SLUG [--users N] [--seed S]``."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from platform_core.plugins.services import LoadReport, sample_data_load
from platform_core.tenancy.models import Tenant


def report_write(command: BaseCommand, report: LoadReport, seconds: float) -> None:
    command.stdout.write(
        f"users {report.users}, items {report.items}, events inserted {report.events_inserted}, "
        f"duplicates {report.events_duplicate}, rejected {report.rejected} in {seconds:.1f}s"
    )
    for reason in report.reasons[:10]:
        command.stdout.write(f"  rejected: {reason}")


class Command(BaseCommand):
    help = "Generate the tenant's domain sample data and ingest it through the API's validation."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slug", help="The tenant's slug.")
        parser.add_argument("--users", type=int, default=300, help="Number of users (default 300).")
        parser.add_argument("--seed", type=int, default=0, help="Random seed (same seed, same data).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = Tenant.objects.get(slug=options["slug"])
        except Tenant.DoesNotExist:
            raise CommandError(f"no tenant with slug {options['slug']!r}") from None
        if options["users"] < 1:
            raise CommandError("--users must be at least 1")
        started = time.perf_counter()
        report = sample_data_load(
            tenant=tenant,
            n_users=options["users"],
            seed=options["seed"],
            progress=lambda msg: self.stdout.write(f"  {msg}") if options["verbosity"] > 1 else None,
        )
        report_write(self, report, time.perf_counter() - started)
        if report.total_rejected:
            raise CommandError(f"{report.total_rejected} rows were rejected")
