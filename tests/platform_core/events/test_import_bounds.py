"""manage.py import_events applies the API's id and context rules: bad rows are named and not written."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from platform_core.catalog.models import EndUser, Item
from platform_core.events.models import Event

pytestmark = pytest.mark.django_db


def test_rows_with_ids_the_api_refuses_are_rejected_by_field_and_rule(tenant, tmp_path, settings):
    settings.ATTRIBUTE_MAX_VALUE_BYTES = 50
    path = tmp_path / "events.csv"
    path.write_text(
        "event_id,user_id,item_id,type,timestamp,context_query\n"
        "e1,u1,i1,view,2026-01-01T10:00:00Z,\n"
        "e2,a/b,i1,view,2026-01-01T10:00:00Z,\n"
        "e3,u1,..,view,2026-01-01T10:00:00Z,\n"
        "e4,u\x01x,i1,view,2026-01-01T10:00:00Z,\n"
        "e\x7f5,u1,i1,view,2026-01-01T10:00:00Z,\n"
        "ev/6,u1,i2,view,2026-01-01T10:00:00Z,\n"
        f"e7,u1,,search,2026-01-01T10:00:00Z,{'q' * 51}\n"
    )
    out = StringIO()
    call_command("import_events", tenant.slug, str(path), "--no-progress", "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert (result["rows"], result["inserted"], result["rejected"]) == (7, 2, 5)
    assert result["reasons"] == [
        "row 2: user_id: must not contain '/' (an id must fit in one URL path segment)",
        "row 3: item_id: must not be '.' or '..' (HTTP clients remove such path segments)",
        "row 4: user_id: must not contain control characters (U+0000 to U+001F, U+007F to U+009F)",
        "row 5: event_id: must not contain control characters (U+0000 to U+001F, U+007F to U+009F)",
        "row 7: context.query: must be at most 50 bytes as UTF-8",
    ]
    assert sorted(Event.objects.for_tenant(tenant).values_list("event_id", flat=True)) == ["e1", "ev/6"]
    assert list(EndUser.objects.for_tenant(tenant).values_list("external_id", flat=True)) == ["u1"]
    assert sorted(Item.objects.for_tenant(tenant).values_list("external_id", flat=True)) == ["i1", "i2"]
