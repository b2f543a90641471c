"""Event-context fields a domain marks sensitive: encrypted at rest, plaintext only with permission."""

from __future__ import annotations

import datetime as dt
import io
import json
from unittest.mock import ANY

import pytest
from django.contrib.auth.models import Permission, User

from domains.registry import plugin_get
from platform_core.events.importer import event_import
from platform_core.events.models import Event
from platform_core.plugins.crypto import REDACTED, SEALED_KEY, context_unseal, features_unseal, is_sealed
from platform_core.profiles.models import UserProfile
from platform_core.profiles.services import profile_build_bulk
from platform_core.serving.candidates import user_history_get
from platform_core.tenancy.models import TenantMembership
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

DIAGNOSIS = {"code": "E11.9", "system": "icd10", "condition": "diabetes"}
LAB = {"code": "4548-4", "value": 7.9, "unit": "%", "abnormal": True}


@pytest.fixture
def clinic():
    return TenantFactory(slug="clinic", domain="healthcare")


@pytest.fixture
def ingested(clinic, api_client_for):
    events = [
        {"event_id": "d1", "user_id": "p1", "type": "diagnosis", "timestamp": "2026-01-01T00:00:00Z"},
        {"event_id": "l1", "user_id": "p1", "type": "lab_result", "timestamp": "2026-01-02T00:00:00Z"},
        {"event_id": "v1", "user_id": "p1", "type": "visit", "timestamp": "2026-01-03T00:00:00Z"},
    ]
    events[0]["context"], events[1]["context"] = DIAGNOSIS, LAB
    events[2]["context"] = {"department": "cardiology", "kind": "outpatient"}
    r = api_client_for(clinic, scopes=["ingest"]).post("/api/v1/events", {"events": events}, format="json")
    assert r.status_code == 201, r.json()
    return clinic


def _stored(tenant, event_id: str) -> dict:
    return Event.objects.for_tenant(tenant).get(event_id=event_id).context


def test_declared_fields_are_encrypted_at_rest_and_the_rest_is_not(ingested):
    diagnosis, lab = _stored(ingested, "d1"), _stored(ingested, "l1")
    # One token per event; the fields keep their names, masked.
    assert diagnosis == {"code": REDACTED, "system": "icd10", "condition": REDACTED, SEALED_KEY: ANY}
    assert lab == {"code": REDACTED, "value": REDACTED, "unit": "%", "abnormal": REDACTED, SEALED_KEY: ANY}
    assert is_sealed(diagnosis[SEALED_KEY]) and is_sealed(lab[SEALED_KEY])
    raw = json.dumps([diagnosis, lab])
    assert "E11.9" not in raw and "diabetes" not in raw and "7.9" not in raw
    assert diagnosis["system"] == "icd10" and lab["unit"] == "%"
    assert _stored(ingested, "v1") == {"department": "cardiology", "kind": "outpatient"}


def test_the_api_masks_them_for_read_keys_and_shows_them_to_admin_keys(ingested, api_client_for):
    def contexts(scopes):
        body = api_client_for(ingested, scopes=scopes).get("/api/v1/events", {"user_id": "p1"}).json()
        return {e["event_id"]: e["context"] for e in body["results"]}

    masked = contexts(["read"])
    assert masked["d1"] == {"code": REDACTED, "system": "icd10", "condition": REDACTED}
    assert masked["l1"] == {"code": REDACTED, "value": REDACTED, "unit": "%", "abnormal": REDACTED}
    shown = contexts(["admin"])
    assert shown["d1"] == DIAGNOSIS and shown["l1"] == LAB


def test_the_console_masks_them_unless_staff_hold_the_permission(ingested, client):
    user = User.objects.create_user("nurse", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_event"))
    TenantMembership.objects.create(tenant=ingested, user=user)
    client.force_login(user)
    pk = Event.objects.for_tenant(ingested).get(event_id="d1").pk
    page = client.get(f"/admin/events/event/{pk}/change/").content.decode()
    assert REDACTED in page and "E11.9" not in page and "fernet:" not in page
    user.user_permissions.add(Permission.objects.get(codename="view_sensitive_context"))
    user = User.objects.get(pk=user.pk)  # permissions are cached on the instance
    client.force_login(user)
    page = client.get(f"/admin/events/event/{pk}/change/").content.decode()
    assert "E11.9" in page and "diabetes" in page


def test_profiles_and_serving_read_them_in_plaintext(ingested):
    profile_build_bulk(tenant=ingested)
    stored = UserProfile.objects.for_tenant(ingested).get(user__external_id="p1").features
    features = features_unseal(plugin=plugin_get("healthcare"), features=stored)
    assert features["conditions"] == ["diabetes"] and features["diagnosis_codes"] == ["E11.9"]
    assert features["abnormal_labs"] == 1
    _, history = user_history_get(tenant=ingested, plugin=plugin_get("healthcare"), external_id="p1")
    by_type = {r.type: dict(r.context) for r in history.records}
    assert by_type["diagnosis"] == DIAGNOSIS and by_type["lab_result"] == LAB


def test_file_import_encrypts_them_too(clinic, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "event_id,user_id,item_id,type,timestamp,context_code,context_system,context_condition\n"
        "d9,p9,,diagnosis,2026-01-01T00:00:00Z,I10,icd10,hypertension\n"
    )
    result = event_import(tenant=clinic, path=path)
    assert result.inserted == 1, result
    context = _stored(clinic, "d9")
    assert context["code"] == context["condition"] == REDACTED and context["system"] == "icd10"
    assert "I10" not in json.dumps(context)
    assert context_unseal(context=context)["code"] == "I10"


def test_rotate_field_keys_re_encrypts_event_contexts(clinic, api_client_for, settings):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    body = {"event_id": "d1", "user_id": "p1", "type": "diagnosis", "timestamp": "2026-01-01T00:00:00Z"}
    api_client_for(clinic, scopes=["ingest"]).post(
        "/api/v1/events", {**body, "context": DIAGNOSIS}, format="json"
    )
    # An event stored before its fields were marked sensitive is sealed by the rotation too.
    Event.objects.for_tenant(clinic).create(
        tenant=clinic,
        event_id="legacy",
        user=Event.objects.for_tenant(clinic).get().user,
        type="diagnosis",
        timestamp=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        context=DIAGNOSIS,
    )
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    out = io.StringIO()
    call_command("rotate_field_keys", "clinic", stdout=out)
    assert "clinic: 3 rows re-encrypted" in out.getvalue()  # one user + two events
    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key is gone: the events still open
    assert context_unseal(context=_stored(clinic, "d1")) == DIAGNOSIS
    legacy = _stored(clinic, "legacy")
    assert "E11.9" not in json.dumps(legacy) and context_unseal(context=legacy) == DIAGNOSIS
