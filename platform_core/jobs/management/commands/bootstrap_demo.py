"""``manage.py bootstrap_demo``: six demo tenants (one per domain), an admin login, keys, training.

Run by ``make run`` (scripts/run.sh). A second run reuses what exists: only
hashes of API keys are stored, so the demo credentials are kept in a 0600
file under VAR_DIR and printed again from there.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from platform_core.common.errors import ServiceError
from platform_core.jobs.models import ACTIVE_STATUSES, JobKind, JobStatus, TrainingJob
from platform_core.jobs.selectors import model_version_active
from platform_core.jobs.services import tenant_schedule_ensure, training_job_request
from platform_core.tenancy.keys import key_hash, key_prefix
from platform_core.tenancy.models import ApiKey, Tenant

CREDENTIALS_FILE = "demo-credentials.json"


def _credentials_path() -> Path:
    return Path(settings.VAR_DIR) / CREDENTIALS_FILE


def _credentials_read() -> dict[str, Any]:
    path = _credentials_path()
    if not path.exists():
        return {"admin": {}, "keys": {}}
    return json.loads(path.read_text())


def _credentials_write(data: dict[str, Any]) -> None:
    path = _credentials_path()
    tmp = path.with_suffix(".tmp")
    # Created 0600 from the start: the secrets are never readable by others, not even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)
    path.chmod(0o600)


def _key_valid(raw: str | None) -> bool:
    if not raw:
        return False
    prefix = key_prefix(raw)
    return ApiKey.objects.filter(prefix=prefix, secret_hash=key_hash(raw), revoked_at__isnull=True).exists()


def demo_slug(domain_id: str) -> str:
    return f"demo-{domain_id.replace('_', '-')}"


class Command(BaseCommand):
    help = "Create one demo tenant per domain with sample data, an admin login and API keys; queue training."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=int(os.environ.get("DEMO_USERS", "300")))
        parser.add_argument(
            "--max-minutes", type=float, default=float(os.environ.get("DEMO_TRAIN_MAX_MINUTES", "2"))
        )
        parser.add_argument("--no-train", action="store_true", help="create data and keys only")
        parser.add_argument("--domains", nargs="*", help="only these domain ids")

    def handle(self, *args: Any, **opts: Any) -> None:
        from domains.registry import plugin_list

        creds = _credentials_read()
        creds.setdefault("keys", {})
        admin = self._admin(creds)
        rows = []
        for plugin in plugin_list():
            if opts["domains"] and plugin.id not in opts["domains"]:
                continue
            tenant = self._tenant(plugin, opts["users"])
            raw = creds["keys"].get(tenant.slug)
            if not _key_valid(raw):
                from platform_core.tenancy.services import api_key_create

                raw = api_key_create(tenant=tenant, scopes=["ingest", "read", "admin"], name="demo").raw_key
                creds["keys"][tenant.slug] = raw
            _credentials_write(creds)
            tenant_schedule_ensure(tenant=tenant)
            queued = [] if opts["no_train"] else self._queue(tenant, opts["max_minutes"])
            rows.append((tenant, raw, queued))
        _credentials_write(creds)
        self._print(admin, rows)

    def _admin(self, creds: dict[str, Any]) -> dict[str, str]:
        user_model = get_user_model()
        username = os.environ.get("DEMO_ADMIN_USER", "admin")
        saved = creds.get("admin") or {}
        user = user_model.objects.filter(username=username).first()
        if (
            user is not None
            and saved.get("username") == username
            and user.check_password(saved.get("password", ""))
        ):
            return saved
        password = secrets.token_urlsafe(12)
        if user is None:
            user_model.objects.create_superuser(
                username=username, email=f"{username}@example.com", password=password
            )
        else:
            # The stored password was lost (credentials file deleted): set a new one and keep it.
            user.set_password(password)
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["password", "is_staff", "is_superuser"])
        creds["admin"] = {"username": username, "password": password}
        _credentials_write(creds)
        return creds["admin"]

    def _tenant(self, plugin: Any, n_users: int) -> Tenant:
        from platform_core.events.models import Event
        from platform_core.plugins.services import sample_data_load
        from platform_core.tenancy.services import tenant_create

        slug = demo_slug(plugin.id)
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            with transaction.atomic():
                tenant = tenant_create(slug=slug, domain=plugin.id, name=f"Demo {plugin.label or plugin.id}")
        if not Event.objects.for_tenant(tenant).exists():
            self.stdout.write(f"{slug}: loading {plugin.id} sample data ({n_users} users)…")
            report = sample_data_load(tenant=tenant, n_users=n_users, seed=0)
            self.stdout.write(
                f"{slug}: {report.users} users, {report.items} items, {report.events_inserted} events loaded"
            )
        return tenant

    def _queue(self, tenant: Tenant, max_minutes: float) -> list[str]:
        """Queue training unless the tenant was trained or a job is on its way; profiles unless built once."""
        queued: list[str] = []
        jobs = TrainingJob.objects.for_tenant(tenant)
        wants = {
            # A version that failed the gate is still a result: no retraining on every start.
            JobKind.TRAIN: model_version_active(tenant=tenant) is None
            and not jobs.filter(kind=JobKind.TRAIN, status=JobStatus.SUCCEEDED).exists(),
            JobKind.PROFILES: not jobs.filter(kind=JobKind.PROFILES, status=JobStatus.SUCCEEDED).exists(),
        }
        for kind in (JobKind.PROFILES, JobKind.TRAIN):
            if not wants[kind] or jobs.filter(kind=kind, status__in=ACTIVE_STATUSES).exists():
                continue
            config = {"max_minutes": max_minutes} if kind == JobKind.TRAIN else None
            try:
                job = training_job_request(
                    tenant=tenant, kind=kind, config=config, requested_by="bootstrap_demo"
                )
                queued.append(f"{kind} #{job.pk}")
            except ServiceError as exc:
                self.stderr.write(f"{tenant.slug}: {exc.message}")
        return queued

    def _print(self, admin: dict[str, str], rows: list[tuple[Tenant, str, list[str]]]) -> None:
        line = "=" * 78
        self.stdout.write(line)
        self.stdout.write(
            f"Console login: {admin['username']} / {admin['password']}   (kept in {_credentials_path()})"
        )
        self.stdout.write("API keys (header  Authorization: Api-Key <key>), scopes ingest, read, admin:")
        for tenant, raw, queued in rows:
            status = ", ".join(queued) if queued else _status(tenant)
            self.stdout.write(f"  {tenant.slug:<20} {tenant.domain:<13} {raw}")
            self.stdout.write(f"  {'':<20} {'':<13} {status}")
        self.stdout.write(
            "Training runs on the Celery worker; follow it in the console under Jobs › Training jobs."
        )
        self.stdout.write(line)


def _status(tenant: Tenant) -> str:
    active = model_version_active(tenant=tenant)
    if active is not None:
        return f"model version {active.pk} active ({active.algorithm})"
    from platform_core.jobs.selectors import model_version_list

    latest = model_version_list(tenant=tenant).first()
    if latest is not None:
        return f"model version {latest.pk} is a {latest.state}: {latest.gate_reason}"
    job = TrainingJob.objects.for_tenant(tenant).filter(kind=JobKind.TRAIN).first()
    return f"training job {job.pk}: {job.status}" if job else "not trained"
