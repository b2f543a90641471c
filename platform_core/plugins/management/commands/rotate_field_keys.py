"""``manage.py rotate_field_keys [SLUG ...]``: re-encrypt sensitive values with the newest key.

Attributes here; other apps' sealed values (event contexts) through ``field_keys_rotating``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from platform_core.plugins.crypto import SealError
from platform_core.plugins.services import sensitive_attributes_rotate
from platform_core.plugins.signals import field_keys_rotating
from platform_core.tenancy.models import Tenant


class Command(BaseCommand):
    help = (
        "Re-encrypt sensitive attributes and event-context fields with the first key of FIELD_ENCRYPTION_KEYS "
        "(all tenants, or the slugs given). Keep the old key listed until this has run."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slugs", nargs="*", help="Tenants to rotate (default: all).")

    def handle(self, *args: Any, **options: Any) -> None:
        tenants = Tenant.objects.all()
        if options["slugs"]:
            tenants = tenants.filter(slug__in=options["slugs"])
            missing = set(options["slugs"]) - set(tenants.values_list("slug", flat=True))
            if missing:
                raise CommandError(f"no tenant with slug {sorted(missing)}")
        for tenant in tenants:
            try:
                n = sensitive_attributes_rotate(tenant=tenant)
                answers = field_keys_rotating.send(sender=Tenant, tenant=tenant)
                n += sum(count for _, count in answers if isinstance(count, int))
            except SealError as exc:
                raise CommandError(f"{tenant.slug}: {exc}") from exc
            self.stdout.write(f"{tenant.slug}: {n} rows re-encrypted")
