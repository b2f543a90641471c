"""``manage.py create_tenant SLUG --domain DOMAIN [--name NAME]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from platform_core.common.errors import ServiceError
from platform_core.tenancy.models import Tenant
from platform_core.tenancy.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant bound to a domain plugin (a no-op if it exists with the same domain)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--domain", required=True, help="Domain plugin id, e.g. ecommerce.")
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--no-auto-create",
            action="store_true",
            help="Refuse events naming unknown users/items instead of creating them.",
        )

    def handle(
        self, *args: Any, slug: str, domain: str, name: str, no_auto_create: bool, **opts: Any
    ) -> None:
        existing = Tenant.objects.filter(slug=slug).first()
        if existing is not None:
            # Idempotent so scripts (and the README) can be run twice.
            if existing.domain != domain:
                raise CommandError(f"Tenant {slug!r} exists with domain {existing.domain!r}, not {domain!r}.")
            self.stdout.write(f"Tenant {slug!r} exists already (domain {domain}).")
            return
        try:
            tenant = tenant_create(
                slug=slug, domain=domain, name=name, auto_create_entities=not no_auto_create
            )
        except ServiceError as exc:
            raise CommandError(
                exc.message + "".join(f"\n  {k}: {'; '.join(v)}" for k, v in exc.fields.items())
            ) from exc
        self.stdout.write(self.style.SUCCESS(f"Created tenant {tenant.slug!r} (domain {tenant.domain})."))
