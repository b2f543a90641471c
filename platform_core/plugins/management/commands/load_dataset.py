"""``manage.py load_dataset SLUG NAME PATH [--limit N]``: a public data set through the API's validation."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from platform_core.common.errors import ValidationFailed
from platform_core.plugins.management.commands.load_sample_data import report_write
from platform_core.plugins.services import dataset_load
from platform_core.tenancy.models import Tenant


class Command(BaseCommand):
    help = "Read a public data set with the tenant's domain adapter (e.g. ecommerce: taobao-userbehavior) and ingest it."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slug", help="The tenant's slug.")
        parser.add_argument(
            "name", help="The data set adapter, e.g. taobao-userbehavior (see `manage.py domains`)."
        )
        parser.add_argument("path", help="The data set's folder or file.")
        parser.add_argument("--limit", type=int, default=None, help="About this many events (whole users).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = Tenant.objects.get(slug=options["slug"])
        except Tenant.DoesNotExist:
            raise CommandError(f"no tenant with slug {options['slug']!r}") from None
        started = time.perf_counter()
        try:
            report = dataset_load(
                tenant=tenant,
                name=options["name"],
                path=options["path"],
                limit=options["limit"],
                progress=lambda msg: self.stdout.write(f"  {msg}") if options["verbosity"] > 1 else None,
            )
        except ValidationFailed as exc:
            raise CommandError(exc.message) from exc
        report_write(self, report, time.perf_counter() - started)
