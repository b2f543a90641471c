import pytest

from platform_core.catalog.models import EndUser
from platform_core.events.models import Event
from platform_core.tenancy.keys import key_hash
from tests.factories import ApiKeyFactory, EventFactory

pytestmark = pytest.mark.django_db


def test_event_factory_keeps_user_and_item_in_the_events_tenant():
    event = EventFactory()
    assert event.user.tenant_id == event.tenant_id == event.item.tenant_id
    assert Event.objects.for_tenant(event.tenant).count() == 1
    assert EndUser.objects.for_tenant(event.tenant).count() == 1


def test_api_key_factory_exposes_the_secret_once_and_stores_only_its_hash():
    key = ApiKeyFactory(scopes=["read"])
    assert key.raw_key.startswith(key.prefix + ".")
    key.refresh_from_db()
    assert key.secret_hash == key_hash(key.raw_key)
    assert key.raw_key not in str(key.__dict__.get("secret_hash"))
