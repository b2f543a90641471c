"""``manage.py create_api_key SLUG --scopes ingest,read[,admin] [--name NAME]``: the secret is the last line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from platform_core.common.errors import ServiceError
from platform_core.tenancy.selectors import tenant_get_by_slug
from platform_core.tenancy.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a tenant. Prints the secret once, alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--scopes", required=True, help="Comma-separated: ingest,read,admin.")
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, slug: str, scopes: str, name: str, **opts: Any) -> None:
        try:
            tenant = tenant_get_by_slug(slug=slug)
            created = api_key_create(tenant=tenant, scopes=scopes.split(","), name=name)
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        key = created.api_key
        self.stderr.write(
            f"API key {key.prefix} for tenant {tenant.slug!r}, scopes {','.join(key.scopes)}. "
            "Store the secret now: it is not shown again."
        )
        self.stdout.write(created.raw_key)
