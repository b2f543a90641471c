"""manage.py import_events: CSV / CSV.gz / Parquet, idempotent, rejects with reasons."""

from __future__ import annotations

import gzip
import json
from io import StringIO

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from platform_core.catalog.models import EndUser, Item
from platform_core.events.models import Event

pytestmark = pytest.mark.django_db

CSV = """user_id,item_id,type,timestamp,value,context_amount,context_quantity
u1,i1,view,2026-01-01T10:00:00Z,,,
u1,i2,purchase,2026-01-01T10:05:00+02:00,30,30.0,2
u2,i1,view,2026-01-02T08:00:00Z,,,
u2,,view,2026-01-02T09:00:00Z,,,
u3,i3,teleport,2026-01-02T09:00:00Z,,,
,i1,view,2026-01-02T09:00:00Z,,,
u4,i4,view,not-a-date,,,
u5,i5,purchase,2026-01-03T09:00:00Z,x,,
"""


def run(slug: str, path, *extra: str) -> dict:
    out = StringIO()
    call_command("import_events", slug, str(path), "--no-progress", "--json", *extra, stdout=out)
    return json.loads(out.getvalue())


def test_csv_import_reports_counts_and_reasons_and_is_idempotent(tenant, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(CSV)
    first = run(tenant.slug, path, "--chunksize", "3")
    # rows 1-3 good; row 4 view without item (domain rule); row 5 unknown type; row 6 no user;
    # row 7 bad timestamp; row 8 bad value and purchase without context
    assert (first["rows"], first["inserted"], first["duplicates"], first["rejected"]) == (8, 3, 0, 5)
    assert [r.split(":")[0] for r in first["reasons"]] == ["row 4", "row 5", "row 6", "row 7", "row 8"]
    assert "item_id" in first["reasons"][0] and "type" in first["reasons"][1]
    assert "timestamp" in first["reasons"][3] and "value" in first["reasons"][4]
    assert (first["users_created"], first["items_created"]) == (2, 2)
    purchase = Event.objects.for_tenant(tenant).get(type="purchase")
    assert purchase.context == {"amount": 30.0, "quantity": 2} and purchase.value == 30.0
    assert purchase.timestamp.isoformat() == "2026-01-01T08:05:00+00:00"
    ids = sorted(Event.objects.for_tenant(tenant).values_list("event_id", flat=True))
    second = run(tenant.slug, path)
    assert (second["inserted"], second["duplicates"], second["rejected"]) == (0, 3, 5)
    assert sorted(Event.objects.for_tenant(tenant).values_list("event_id", flat=True)) == ids


def test_gzip_and_parquet_with_event_ids(tenant, other_tenant, tmp_path):
    frame = pd.DataFrame(
        {
            "event_id": ["a", "b", "a"],
            "user_id": ["u1", "u2", "u1"],
            "item_id": ["i1", "i1", "i1"],
            "type": ["view", "view", "view"],
            "timestamp": pd.to_datetime(["2026-01-01T00:00:00Z"] * 3, utc=True),
        }
    )
    gz = tmp_path / "e.csv.gz"
    with gzip.open(gz, "wt") as fh:
        frame.assign(timestamp=frame.timestamp.map(lambda t: t.isoformat())).to_csv(fh, index=False)
    result = run(tenant.slug, gz)
    assert (result["inserted"], result["duplicates"]) == (2, 1)  # "a" twice in one file
    parquet = tmp_path / "e.parquet"
    frame.to_parquet(parquet)
    assert run(tenant.slug, parquet)["inserted"] == 0
    assert run(other_tenant.slug, parquet)["inserted"] == 2  # ids are per tenant
    assert Event.objects.for_tenant(tenant).count() == 2 == Event.objects.for_tenant(other_tenant).count()


def test_tenant_without_auto_create_rejects_unknown_entities(tenant, tmp_path):
    tenant.auto_create_entities = False
    tenant.save(update_fields=["auto_create_entities"])
    EndUser.unscoped.create(tenant=tenant, external_id="u1")
    Item.unscoped.create(tenant=tenant, external_id="i1")
    path = tmp_path / "e.csv"
    path.write_text(
        "user_id,item_id,type,timestamp\nu1,i1,view,2026-01-01T00:00:00Z\nu9,i1,view,2026-01-01T00:00:00Z\n"
    )
    result = run(tenant.slug, path)
    assert (result["inserted"], result["rejected"]) == (1, 1)
    assert result["reasons"][0].startswith("row 2: ")


def test_bad_columns_and_unknown_tenant_fail_clearly(tenant, tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("user,item_id,type,timestamp\nu1,i1,view,2026-01-01T00:00:00Z\n")
    with pytest.raises(CommandError, match="user_id: is a required column"):
        run(tenant.slug, path)
    with pytest.raises(CommandError, match="No tenant"):
        run("nope", path)
    assert Event.objects.for_tenant(tenant).count() == 0
