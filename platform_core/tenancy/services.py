"""Writes of the tenancy app: tenants and API keys."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from platform_core.common.errors import ErrorCode, ValidationFailed
from platform_core.tenancy.errors import TenancyError
from platform_core.tenancy.keys import key_generate, key_hash
from platform_core.tenancy.models import ApiKey, ApiKeyScope, Tenant, tenant_domain_error

VALID_SCOPES: frozenset[str] = frozenset(ApiKeyScope.values)


@dataclass(frozen=True)
class CreatedApiKey:
    """A new key and its secret; the secret exists only here, never in the database."""

    api_key: ApiKey
    raw_key: str


def tenant_field_errors(*, slug: str, domain: str, tenant_pk: int | None = None) -> dict[str, list[str]]:
    """The rules a tenant's slug and domain break, by field (empty when both are valid).

    The console's form and the services below share it, so a form that
    passes is a write that succeeds.
    """
    errors: dict[str, list[str]] = {}
    if not slug or slugify(slug) != slug:
        errors["slug"] = ["must be a slug: lowercase letters, digits, hyphens, underscores"]
    elif Tenant.objects.filter(slug=slug).exclude(pk=tenant_pk).exists():
        errors["slug"] = ["is taken"]
    domain_error = tenant_domain_error(domain)
    if domain_error:
        errors["domain"] = [domain_error]
    return errors


def _tenant_refuse(errors: dict[str, list[str]]) -> None:
    if errors.get("slug") == ["is taken"]:
        raise ValidationFailed(
            "A tenant with this slug exists already.",
            code=TenancyError.SLUG_TAKEN,
            fields=errors,
            status_code=409,
        )
    if errors:
        field, rules = next(iter(errors.items()))
        code = TenancyError.UNKNOWN_DOMAIN if set(errors) == {"domain"} else ErrorCode.VALIDATION
        raise ValidationFailed(f"Invalid tenant: {field}: {rules[0]}", code=code, fields=errors)


def tenant_create(*, slug: str, domain: str, name: str = "", auto_create_entities: bool = True) -> Tenant:
    """Create a tenant bound to a registered domain plugin.

    Raises:
        ValidationFailed: the slug is malformed or taken, or the domain is unknown.
    """
    _tenant_refuse(tenant_field_errors(slug=slug, domain=domain))
    return Tenant.objects.create(
        slug=slug, domain=domain, name=name or slug, auto_create_entities=auto_create_entities
    )


TENANT_EDITABLE: tuple[str, ...] = ("slug", "name", "domain", "auto_create_entities")


def tenant_update(*, tenant: Tenant, changes: Mapping[str, Any]) -> Tenant:
    """Change a tenant's editable fields; nothing is written unless every value is valid.

    Raises:
        ValidationFailed: a field is not editable, the slug is malformed or
            taken, or the domain names no registered plugin.
    """
    unknown = sorted(set(changes) - set(TENANT_EDITABLE))
    if unknown:
        raise ValidationFailed(
            f"Not editable: {unknown}.", fields={name: ["is not editable"] for name in unknown}
        )
    slug, domain = changes.get("slug", tenant.slug), changes.get("domain", tenant.domain)
    _tenant_refuse(tenant_field_errors(slug=slug, domain=domain, tenant_pk=tenant.pk))
    for name, value in changes.items():
        setattr(tenant, name, value)
    if changes:
        tenant.save(update_fields=list(changes))
    return tenant


def scopes_clean(scopes: Iterable[str]) -> list[str]:
    """Validated, sorted, de-duplicated scope names."""
    cleaned = sorted({s.strip() for s in scopes if s and s.strip()})
    bad = [s for s in cleaned if s not in VALID_SCOPES]
    if bad or not cleaned:
        raise ValidationFailed(
            f"Scopes must be a non-empty subset of {sorted(VALID_SCOPES)}; got {bad or 'none'}.",
            code=TenancyError.BAD_SCOPES,
            fields={"scopes": [f"must be among {sorted(VALID_SCOPES)}"]},
        )
    return cleaned


def api_key_create(*, tenant: Tenant, scopes: Iterable[str], name: str = "") -> CreatedApiKey:
    """Create an API key; the returned ``raw_key`` is the only time the secret is seen."""
    cleaned = scopes_clean(scopes)
    prefix, raw_key = key_generate()
    api_key = ApiKey.objects.create(
        tenant=tenant, name=name, prefix=prefix, secret_hash=key_hash(raw_key), scopes=cleaned
    )
    return CreatedApiKey(api_key=api_key, raw_key=raw_key)


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key (idempotent). Every process honours it within HOT_CACHE_SECONDS."""
    from platform_core.api.auth import principal_cache_clear

    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    # This process forgets at once; others within the cache's expiry.
    principal_cache_clear()
    return api_key
