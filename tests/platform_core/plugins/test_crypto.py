"""Sensitive attributes: Fernet at rest, MultiFernet rotation, safe on plaintext, redacted for display."""

from __future__ import annotations

import io
import json
import logging

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings

from domains.registry import plugin_get
from platform_core.catalog.models import EndUser
from platform_core.catalog.services import enduser_bulk_upsert
from platform_core.plugins.crypto import (
    REDACTED,
    SealError,
    attributes_redact,
    attributes_rotate,
    attributes_seal,
    attributes_unseal,
    is_sealed,
)
from tests.factories import TenantFactory

HEALTH = plugin_get("healthcare")
PATIENT = {"age_band": "40-64", "sex": "female", "conditions": ["diabetes"], "allergies": ["penicillin"]}
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@override_settings(FIELD_ENCRYPTION_KEYS=[OLD])
def test_seal_encrypts_only_sensitive_fields_and_unseal_restores() -> None:
    sealed = attributes_seal(plugin=HEALTH, kind="user", attributes=PATIENT)
    assert sealed["age_band"] == "40-64" and sealed["sex"] == "female"
    assert is_sealed(sealed["conditions"]) and is_sealed(sealed["allergies"])
    assert "diabetes" not in json.dumps(sealed) and "penicillin" not in json.dumps(sealed)
    assert attributes_unseal(plugin=HEALTH, kind="user", attributes=sealed) == PATIENT
    # Sealing twice does nothing; unsealing plaintext is safe.
    assert attributes_seal(plugin=HEALTH, kind="user", attributes=sealed) == sealed
    assert attributes_unseal(plugin=HEALTH, kind="user", attributes=PATIENT) == PATIENT


def test_rotation_with_multifernet() -> None:
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        sealed = attributes_seal(plugin=HEALTH, kind="user", attributes=PATIENT)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        assert (
            attributes_unseal(plugin=HEALTH, kind="user", attributes=sealed) == PATIENT
        )  # old key still reads
        rotated = attributes_rotate(plugin=HEALTH, kind="user", attributes=sealed)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):
        assert attributes_unseal(plugin=HEALTH, kind="user", attributes=rotated) == PATIENT
        with pytest.raises(SealError, match="attribute conditions: no configured key decrypts it"):
            attributes_unseal(plugin=HEALTH, kind="user", attributes=sealed)


@override_settings(FIELD_ENCRYPTION_KEYS=[OLD])
def test_redact_masks_sensitive_values_for_lists_and_logs() -> None:
    sealed = attributes_seal(plugin=HEALTH, kind="user", attributes=PATIENT)
    assert attributes_redact(plugin=HEALTH, kind="user", attributes=sealed) == {
        "age_band": "40-64",
        "sex": "female",
        "conditions": REDACTED,
        "allergies": REDACTED,
    }


@pytest.mark.django_db
@override_settings(FIELD_ENCRYPTION_KEYS=[OLD])
def test_ingestion_stores_ciphertext_and_logs_no_value(caplog: pytest.LogCaptureFixture) -> None:
    tenant = TenantFactory(slug="clinic", domain="healthcare")
    caplog.set_level(logging.DEBUG)
    enduser_bulk_upsert(tenant=tenant, rows=[{"user_id": "p1", "attributes": PATIENT}])
    stored = EndUser.objects.for_tenant(tenant).get(external_id="p1").attributes
    assert is_sealed(stored["conditions"]) and "diabetes" not in json.dumps(stored)
    assert attributes_unseal(plugin=HEALTH, kind="user", attributes=stored) == PATIENT
    assert "diabetes" not in caplog.text and "penicillin" not in caplog.text


def test_a_development_key_is_generated_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with override_settings(FIELD_ENCRYPTION_KEYS=[], VAR_DIR=tmp_path):
        first = attributes_seal(plugin=HEALTH, kind="user", attributes=PATIENT)
        key = (tmp_path / "field_encryption_key").read_text()
        assert attributes_unseal(plugin=HEALTH, kind="user", attributes=first) == PATIENT
        assert (tmp_path / "field_encryption_key").read_text() == key
        assert oct((tmp_path / "field_encryption_key").stat().st_mode)[-3:] == "600"


@pytest.mark.django_db
def test_rotate_field_keys_reseals_stored_rows_with_the_newest_key() -> None:
    from django.core.management import call_command

    tenant = TenantFactory(slug="clinic2", domain="healthcare")
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD]):
        enduser_bulk_upsert(tenant=tenant, rows=[{"user_id": "p1", "attributes": PATIENT}])
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW, OLD]):
        call_command("rotate_field_keys", "clinic2", stdout=io.StringIO())
    stored = EndUser.objects.for_tenant(tenant).get(external_id="p1").attributes
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW]):  # the old key is gone now
        assert attributes_unseal(plugin=HEALTH, kind="user", attributes=stored) == PATIENT
