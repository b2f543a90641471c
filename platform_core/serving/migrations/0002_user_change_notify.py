"""Notify web processes when a user's events or attributes change (PostgreSQL only).

Statement-level triggers send ``pg_notify('serving_user_changes',
'<tenant id>:<user pk>,<user pk>,…')`` (at most 500 users a message, under
the 8,000-byte payload limit) for every statement that inserts, updates or
deletes events or updates or deletes users. PostgreSQL delivers the messages
when the transaction commits, and drops them if it rolls back. Each web
process's listener (``platform_core/serving/user_state.py``) drops those users
from its cache. SQLite has no notifications: the cache is off there.
"""

from django.db import migrations

CHANNEL = "serving_user_changes"
_CHUNK = 500

# (trigger/function name, table, operation, transition tables, SELECT of (tenant, user pk) pairs)
_TRIGGERS = [
    ("serving_notify_event_insert", "events_event", "INSERT", "NEW TABLE AS changed",
     "SELECT tenant_id, user_id AS pk FROM changed"),
    ("serving_notify_event_update", "events_event", "UPDATE", "OLD TABLE AS was NEW TABLE AS changed",
     "SELECT tenant_id, user_id AS pk FROM changed UNION SELECT tenant_id, user_id FROM was"),
    ("serving_notify_event_delete", "events_event", "DELETE", "OLD TABLE AS was",
     "SELECT tenant_id, user_id AS pk FROM was"),
    ("serving_notify_user_update", "catalog_enduser", "UPDATE", "NEW TABLE AS changed",
     "SELECT tenant_id, id AS pk FROM changed"),
    ("serving_notify_user_delete", "catalog_enduser", "DELETE", "OLD TABLE AS was",
     "SELECT tenant_id, id AS pk FROM was"),
]  # fmt: skip


def _function_sql(name: str, pairs: str) -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "DECLARE msg text; BEGIN "
        "FOR msg IN SELECT c.tenant_id::text || ':' || string_agg(c.pk::text, ',') FROM ("
        f"SELECT tenant_id, pk, (row_number() OVER (PARTITION BY tenant_id ORDER BY pk) - 1) / {_CHUNK} AS chunk "
        f"FROM (SELECT DISTINCT tenant_id, pk FROM ({pairs}) p) d) c GROUP BY c.tenant_id, c.chunk "
        f"LOOP PERFORM pg_notify('{CHANNEL}', msg); END LOOP; RETURN NULL; END $$"
    )


def _create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table, operation, referencing, pairs in _TRIGGERS:
        schema_editor.execute(_function_sql(name, pairs))
        schema_editor.execute(
            f"CREATE TRIGGER {name} AFTER {operation} ON {table} REFERENCING {referencing} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )


def _drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table, _operation, _referencing, _pairs in _TRIGGERS:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}()")


class Migration(migrations.Migration):
    dependencies = [
        ("serving", "0001_initial"),
        ("events", "0003_events_no_db_fk"),
        ("catalog", "0001_initial"),
    ]

    operations = [migrations.RunPython(_create, _drop)]
