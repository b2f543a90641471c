"""Celery tasks of the profiles app."""

from __future__ import annotations

from celery import shared_task

from platform_core.common.errors import NotFound


@shared_task(name="profiles.refresh_users", time_limit=300, soft_time_limit=270, acks_late=True)
def refresh_users(tenant_id: int, user_pks: list[int]) -> int:
    """Recompute the profiles of some users after new events (debounced by the caller).

    Internal pks only: task arguments are kept with the results, and an erased
    user's external id must not stay there.
    """
    from django.utils import timezone

    from platform_core.common.scoping import tenant_scope
    from platform_core.profiles.services import profile_outbox_done, profile_refresh_user
    from platform_core.tenancy.models import Tenant

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    started = timezone.now()  # a request written after this is served by its own task
    done = 0
    with tenant_scope(tenant):
        for pk in user_pks:
            try:
                profile_refresh_user(tenant=tenant, user_pk=pk)
                done += 1
            except NotFound:
                continue  # erased since the request
        profile_outbox_done(tenant=tenant, user_pks=user_pks, before=started)
    return done


@shared_task(name="profiles.outbox_drain", time_limit=120, soft_time_limit=100)
def outbox_drain() -> int:
    """Beat: send again the profile refreshes whose task never ran (broker down at ingestion)."""
    from platform_core.profiles.services import profile_outbox_drain

    return profile_outbox_drain()
