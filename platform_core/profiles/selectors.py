"""Reads of the profiles app."""

from __future__ import annotations

from django.db.models import QuerySet

from platform_core.common.errors import NotFound
from platform_core.profiles.models import UserProfile
from platform_core.tenancy.models import Tenant


def profile_get_for_tenant(*, tenant: Tenant, external_id: str) -> UserProfile:
    """The profile of the tenant's user ``external_id``; another tenant's user is reported as missing."""
    profile = (
        UserProfile.objects.for_tenant(tenant)
        .select_related("user")
        .filter(user__external_id=external_id)
        .first()
    )
    if profile is None:
        raise NotFound(f"No profile for user {external_id!r}.")
    return profile


def profile_list(*, tenant: Tenant, segment: str | None = None) -> QuerySet[UserProfile]:
    qs = UserProfile.objects.for_tenant(tenant).select_related("user")
    return qs.filter(segment=segment) if segment else qs
