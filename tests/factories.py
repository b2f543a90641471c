"""factory_boy factories shared by every test package.

``ApiKeyFactory`` goes through the real service, so a created key carries its
one-time secret as ``key.raw_key``; ``api_key_raw(tenant=...)`` is the short form.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import factory
from factory.django import DjangoModelFactory

from platform_core.catalog.models import EndUser, Item
from platform_core.events.models import Event
from platform_core.tenancy.models import ApiKey, Tenant, TenantMembership
from platform_core.tenancy.services import api_key_create

ALL_SCOPES: tuple[str, ...] = ("ingest", "read", "admin")


class TenantFactory(DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    domain = "ecommerce"
    auto_create_entities = True


class ApiKeyFactory(DjangoModelFactory):
    """A real key; ``instance.raw_key`` holds the secret shown once at creation."""

    class Meta:
        model = ApiKey

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"key-{n}")
    scopes = factory.LazyFunction(lambda: ["ingest", "read"])

    @classmethod
    def _create(cls, model_class: type[ApiKey], *args: object, **kwargs: object) -> ApiKey:
        created = api_key_create(
            tenant=kwargs["tenant"],  # type: ignore[arg-type]
            scopes=kwargs["scopes"],  # type: ignore[arg-type]
            name=kwargs.get("name", ""),  # type: ignore[arg-type]
        )
        created.api_key.raw_key = created.raw_key  # type: ignore[attr-defined]
        return created.api_key


def api_key_raw(*, tenant: Tenant, scopes: Iterable[str] = ALL_SCOPES, name: str = "test") -> str:
    """A new key's secret for ``tenant`` (what a client puts after ``Api-Key``)."""
    return api_key_create(tenant=tenant, scopes=list(scopes), name=name).raw_key


class TenantOwnedFactory(DjangoModelFactory):
    """factory_boy would use ``Model.objects``, which fails closed without a tenant
    in scope; the factory sets ``tenant`` itself, so the plain manager is safe."""

    class Meta:
        abstract = True

    @classmethod
    def _get_manager(cls, model_class: type) -> object:
        return model_class.unscoped


class EndUserFactory(TenantOwnedFactory):
    class Meta:
        model = EndUser

    tenant = factory.SubFactory(TenantFactory)
    external_id = factory.Sequence(lambda n: f"u{n}")
    attributes = factory.LazyFunction(dict)


class ItemFactory(TenantOwnedFactory):
    class Meta:
        model = Item

    tenant = factory.SubFactory(TenantFactory)
    external_id = factory.Sequence(lambda n: f"i{n}")
    attributes = factory.LazyFunction(dict)
    active = True


class EventFactory(TenantOwnedFactory):
    """An event whose user and item belong to the event's tenant."""

    class Meta:
        model = Event

    tenant = factory.SubFactory(TenantFactory)
    event_id = factory.Sequence(lambda n: f"e{n}")
    user = factory.SubFactory(EndUserFactory, tenant=factory.SelfAttribute("..tenant"))
    item = factory.SubFactory(ItemFactory, tenant=factory.SelfAttribute("..tenant"))
    type = "view"
    timestamp = factory.Sequence(lambda n: dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=n))
    value = None
    context = factory.LazyFunction(dict)


class TenantMembershipFactory(DjangoModelFactory):
    class Meta:
        model = TenantMembership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory("tests.factories.StaffUserFactory")


class StaffUserFactory(DjangoModelFactory):
    class Meta:
        model = "auth.User"
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    is_staff = True
    password = factory.django.Password("pw-for-tests")
