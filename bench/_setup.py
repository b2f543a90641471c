"""Shared set-up of the ingestion benchmarks: a database, a tenant and a key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable


def pg_database_ensure(url: str) -> None:
    """Create the PostgreSQL database of ``url`` if it is missing (trust auth on 127.0.0.1)."""
    import psycopg2

    base, _, name = url.rpartition("/")
    conn = psycopg2.connect(base + "/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def pg_database_recreate(url: str) -> None:
    import psycopg2

    base, _, name = url.rpartition("/")
    conn = psycopg2.connect(base + "/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout


def environment(*, database_url: str | None, var_dir: str) -> dict[str, str]:
    env = dict(os.environ, VAR_DIR=var_dir, DJANGO_SETTINGS_MODULE="platform_core.settings")
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def tenant_with_key(env: dict[str, str], slug: str) -> str:
    """Migrate, create ``slug`` (ecommerce) and return a fresh ingest key."""
    manage(env, "migrate", "--noinput")
    manage(env, "create_tenant", slug, "--domain", "ecommerce")
    return manage(env, "create_api_key", slug, "--scopes", "ingest,read").strip().splitlines()[-1]
