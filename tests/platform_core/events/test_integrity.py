"""Events have no database FK constraints (migration events.0003): what replaces them.

A user or item deleted by any path (not only the ORM's cascade) takes its
events with it, and ingestion holds its users and items until it commits, so
a concurrent delete cannot leave events behind.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from django.db import connection, transaction

from platform_core.catalog.models import EndUser, Item
from platform_core.events.models import Event
from platform_core.events.services import event_ingest


def _batch(*rows: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "events": [
            {"event_id": e, "user_id": u, "item_id": i, "type": "view", "timestamp": "2026-01-01T12:00:00Z"}
            for e, u, i in rows
        ]
    }


def _raw_delete(table: str, pk: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [pk])


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "external_id", "left"), [(EndUser, "u1", ["e3"]), (Item, "i1", ["e2"])])
def test_a_user_or_item_deleted_outside_the_orm_takes_its_events(tenant, model, external_id, left):
    event_ingest(tenant=tenant, payload=_batch(("e1", "u1", "i1"), ("e2", "u1", "i2"), ("e3", "u2", "i1")))
    row = model.objects.for_tenant(tenant).get(external_id=external_id)
    _raw_delete(model._meta.db_table, row.pk)
    assert sorted(Event.objects.for_tenant(tenant).values_list("event_id", flat=True)) == left


def _delete_from_another_connection(user_pk: int) -> str | None:
    """Try to delete the user from a second connection without waiting; the error text, or None."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        other = sqlite3.connect(settings["NAME"], timeout=0.2)
        try:
            other.execute(f"DELETE FROM {EndUser._meta.db_table} WHERE id = ?", [user_pk])
            other.commit()
        except sqlite3.OperationalError as exc:
            return str(exc)
        finally:
            other.close()
        return None
    import psycopg2

    other = psycopg2.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        password=settings["PASSWORD"] or None,
    )
    try:
        with other.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
            cursor.execute(f"DELETE FROM {EndUser._meta.db_table} WHERE id = %s", [user_pk])
        other.commit()
    except psycopg2.errors.LockNotAvailable as exc:
        return str(exc)
    finally:
        other.close()
    return None


@pytest.mark.django_db(transaction=True)
def test_a_delete_cannot_slip_between_ingestion_and_its_commit(tenant):
    event_ingest(tenant=tenant, payload=_batch(("e1", "u1", "i1")))
    u1 = EndUser.objects.for_tenant(tenant).get(external_id="u1")
    with transaction.atomic():
        event_ingest(tenant=tenant, payload=_batch(("e2", "u1", "i1")))
        # Still open: u1 is held (PostgreSQL: FOR KEY SHARE; SQLite: the write lock).
        refused = _delete_from_another_connection(u1.pk)
        assert refused is not None and ("lock" in refused)
    # Committed: the delete goes through and takes both events with it.
    assert _delete_from_another_connection(u1.pk) is None
    assert not Event.objects.for_tenant(tenant).exists()
