"""``manage.py import_events SLUG FILE``: stream a CSV / CSV.gz / Parquet file of events into a tenant."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from platform_core.common.errors import ServiceError
from platform_core.events.importer import event_import
from platform_core.tenancy.selectors import tenant_get_by_slug


class Command(BaseCommand):
    help = (
        "Import events from CSV, CSV.gz or Parquet (columns user_id,item_id,type,timestamp; optional "
        "event_id,value,context_*). Idempotent: running it twice inserts nothing the second time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("file")
        parser.add_argument("--chunksize", type=int, default=50_000, help="Rows per chunk (bounds memory).")
        parser.add_argument(
            "--show-rejected", type=int, default=20, help="How many rejected rows to describe."
        )
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            tenant = tenant_get_by_slug(slug=opts["slug"])
            with tqdm(
                unit=" rows", unit_scale=True, disable=opts["no_progress"], file=self.stderr._out
            ) as bar:
                result = event_import(
                    tenant=tenant,
                    path=opts["file"],
                    chunksize=opts["chunksize"],
                    max_reasons=opts["show_rejected"],
                    on_chunk=bar.update,
                )
        except ServiceError as exc:
            detail = "".join(f"\n  {k}: {'; '.join(v)}" for k, v in exc.fields.items())
            raise CommandError(exc.message + detail) from exc
        if opts["json"]:
            self.stdout.write(json.dumps(result.as_dict()))
            return
        self.stdout.write(
            f"rows {result.rows}  inserted {result.inserted}  duplicates {result.duplicates}  "
            f"rejected {result.rejected}  users created {result.users_created}  items created {result.items_created}"
        )
        for reason in result.reasons:
            self.stdout.write(f"  rejected {reason}")
        if result.rejected > len(result.reasons):
            self.stdout.write(f"  … and {result.rejected - len(result.reasons)} more rejected rows")
